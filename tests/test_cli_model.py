"""``shiftrnn random-model | import | info | run``: happy paths and clear one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import golden
from golden import Fixed, Model, Nonlinearity
from shiftrnn.cli import main
from shiftrnn.cmd_model import parse_format


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, *fragments: str) -> None:
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, (f, err)


RANDOM = ["random-model", "--cell", "gru", "--method", "ternary", "--input", 6, "--hidden", 4,
          "--seed", 3]


# ----------------------------------------------------------------------------- random-model
def test_random_model_matches_api(capsys, tmp_path):
    out = tmp_path / "m.npz"
    rc, stdout, _ = run_cli(capsys, *RANDOM, "--output", 2, "--layers", 2, "--out", out)
    assert rc == 0 and str(out) in stdout
    m = golden.load(out)
    assert m.hash() == Model.random("gru", "ternary", 6, 4, output_size=2, layers=2,
                                    input_kind="token", seed=3).hash()


def test_random_model_every_option(capsys, tmp_path):
    out = tmp_path / "m.npz"
    rc, _, _ = run_cli(capsys, "random-model", "--cell", "lstm", "--method", "exponential",
                       "--input", 5, "--hidden", 3, "--nonlinearity", "lut", "--input-kind",
                       "vector", "--format", "x=10.6", "gate=9.8", "--format", "c=S12.7",
                       "--format", "h=S9.7", "--scale-terms", 1, "--method-param", "kmin=-5",
                       "--seed", 1, "--out", out)
    assert rc == 0
    m = golden.load(out)
    assert (m.cell, m.method, m.input_kind, m.scale_terms) == ("lstm", "exponential", "vector", 1)
    assert m.nonlinearity == Nonlinearity("lut") and m.method_params == {"kmin": -5}
    assert m.formats["x"] == Fixed(10, 6) and m.formats["gate"] == Fixed(9, 8, signed=False)
    assert m.formats["c"] == Fixed(12, 7) and m.formats["h"] == Fixed(9, 7)
    assert m.formats["pre"] == golden.DEFAULT_FORMATS["pre"]


def test_random_model_refuses_to_overwrite(capsys, tmp_path):
    out = tmp_path / "m.npz"
    out.write_bytes(b"precious")
    rc, _, err = run_cli(capsys, *RANDOM, "--out", out)
    assert_one_line_error(rc, err, str(out), "--force")
    assert out.read_bytes() == b"precious"
    rc, _, _ = run_cli(capsys, *RANDOM, "--out", out, "--force")
    assert rc == 0 and golden.load(out).cell == "gru"


@pytest.mark.parametrize(
    "extra,fragments",
    [
        (["--format", "q=8.8"], ["--format 'q=8.8'", "x, h, c, pre, gate, act, out"]),
        (["--format", "h=8"], ["--format 'h=8'", "BITS.FRAC"]),
        (["--format", "h=70.3"], ["--format 'h=70.3'", "1..62"]),
        (["--format", "gate=S8.7"], ["formats.gate", "unsigned"]),
        (["--format", "c=U12.8"], ["formats.c", "must be signed"]),
        (["--method-param", "kmin=-3"], ["--method-param", "ternary", "unknown ['kmin']"]),
        (["--method-param", "W0"], ["--method-param 'W0'", "KEY=NUMBER"]),
    ],
)
def test_random_model_bad_input(capsys, tmp_path, extra, fragments):
    out = tmp_path / "m.npz"
    rc, _, err = run_cli(capsys, *RANDOM, *extra, "--out", out)
    assert_one_line_error(rc, err, *fragments)
    assert not out.exists()


def test_argparse_rejects_bad_choices(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["random-model", "--cell", "tcn", "--method", "ternary", "--input", "2",
              "--hidden", "2", "--seed", "0", "--out", str(tmp_path / "m.npz")])
    assert e.value.code == 2
    assert "invalid choice: 'tcn'" in capsys.readouterr().err


def test_parse_format_defaults_signedness():
    assert parse_format("gate=8.7") == ("gate", Fixed(8, 7, signed=False))
    assert parse_format("act=U8.6") == ("act", Fixed(8, 6, signed=False))
    assert parse_format("out=16.-2") == ("out", Fixed(16, -2))


# ----------------------------------------------------------------------------------- import
@pytest.mark.torch
def test_import_happy_path(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    from golden.importer import from_state_dict, load_torch

    torch.manual_seed(0)
    torch.save(torch.nn.LSTM(5, 3, num_layers=2).state_dict(), tmp_path / "w.pt")
    out = tmp_path / "m.npz"
    rc, stdout, _ = run_cli(capsys, "import", tmp_path / "w.pt", "--cell", "lstm", "--method",
                            "pow2-ternary", "--nonlinearity", "plan", "--out", out)
    assert rc == 0 and "lstm pow2-ternary" in stdout
    m = golden.load(out)
    want = from_state_dict(load_torch(tmp_path / "w.pt"), "lstm", "pow2-ternary",
                           nonlinearity=Nonlinearity("plan"))
    assert [np.array_equal(a.w_hh.codes, b.w_hh.codes) for a, b in zip(m.layers, want.layers,
                                                                       strict=True)] == [1, 1]
    assert m.meta["source"] == str(tmp_path / "w.pt") and m.input_kind == "vector"


@pytest.mark.torch
def test_import_bad_input(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.LSTM(5, 3).state_dict(), tmp_path / "w.pt")
    out = tmp_path / "m.npz"
    rc, _, err = run_cli(capsys, "import", tmp_path / "w.pt", "--cell", "gru", "--method",
                         "ternary", "--out", out)
    assert_one_line_error(rc, err, "w.pt", "'weight_hh_l0'", "(12, 3)")
    assert not out.exists()
    rc, _, err = run_cli(capsys, "import", tmp_path / "nope.pt", "--cell", "gru", "--method",
                         "ternary", "--out", out)
    assert_one_line_error(rc, err, "nope.pt", "no such file")
    out.write_bytes(b"x")
    rc, _, err = run_cli(capsys, "import", tmp_path / "w.pt", "--cell", "lstm", "--method",
                         "ternary", "--out", out)
    assert_one_line_error(rc, err, "exists", "--force")
    assert out.read_bytes() == b"x"


# ------------------------------------------------------------------------------------- info
def test_info_human_and_json(capsys, tmp_path):
    m = Model.random("gru", "exponential", 5, 4, output_size=2, layers=2, seed=1,
                     nonlinearity=Nonlinearity("exact"))
    path = m.save(tmp_path / "m.npz")
    rc, out, _ = run_cli(capsys, "info", path)
    assert rc == 0
    for fragment in (m.hash(), "gru, 2 layer(s)", "token input 5, hidden 4, output 2",
                     "exponential", "x=S8.5", "gate=U8.7", m.nonlinearity.describe(),
                     "acc_ih", "acc_hh", "head", "ops per step", "sigmoid 16, tanh 8"):
        assert fragment in out, fragment
    rc, out, _ = run_cli(capsys, "info", path, "--json")
    info = json.loads(out)
    assert rc == 0 and info["hash"] == m.hash() and info["cell"] == "gru"
    assert info["widths"] == json.loads(json.dumps(m.widths()))
    assert info["ops_per_step"] == json.loads(json.dumps(m.op_counts()))
    assert info["formats"]["gate"] == "U8.7" and info["output_size"] == 2


def test_info_names_the_scale_constants_per_gate(capsys, tmp_path):
    """One constant per matrix, one per gate (per-gate scales) or 'per row', as the hardware
    would apply them."""
    rng = np.random.default_rng(3)
    H, V = 4, 5
    layer = {"weight_ih": rng.normal(0, .4, (3 * H, V)), "weight_hh": rng.normal(0, .4, (3 * H, H)),
             "bias_ih": rng.normal(0, .4, 3 * H), "bias_hh": rng.normal(0, .4, 3 * H)}
    tp = {"weight_ih_l0": {"row_scales": np.repeat([0.25, 0.5, 0.75], H)},
          "weight_hh_l0": {"row_scales": rng.uniform(0.1, 0.6, 3 * H)}}
    m = Model.from_float("gru", [layer], None, method="ternary", tensor_params=tp)
    rc, out, _ = run_cli(capsys, "info", m.save(tmp_path / "m.npz"), "--json")
    sc = json.loads(out)["scales"][0]
    assert rc == 0 and sc["w_ih"]["C"] == m.layers[0].w_ih.block_multipliers(3)
    assert len(set(sc["w_ih"]["C"])) == 3 and sc["w_hh"]["C"] == "per row"


def test_info_bad_file(capsys, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    rc, _, err = run_cli(capsys, "info", tmp_path / "bad.npz")
    assert_one_line_error(rc, err, "bad.npz", "not a readable .npz")
    rc, _, err = run_cli(capsys, "info", tmp_path / "none.npz")
    assert_one_line_error(rc, err, "none.npz", "no such model file")


# -------------------------------------------------------------------------------------- run
@pytest.fixture
def token_model(tmp_path) -> tuple[Model, object]:
    m = Model.random("lstm", "ternary", 7, 4, output_size=3, seed=5)
    return m, m.save(tmp_path / "m.npz")


def test_run_int_and_float(capsys, tmp_path, token_model, rng):
    m, path = token_model
    x = rng.integers(0, 7, size=(3, 5))
    np.save(tmp_path / "x.npy", x)
    rc, stdout, _ = run_cli(capsys, "run", path, "--inputs", tmp_path / "x.npy", "--out",
                            tmp_path / "y.npz")
    assert rc == 0 and "y.npz" in stdout
    r = m.run(x)
    with np.load(tmp_path / "y.npz") as y:
        assert sorted(y.files) == ["hidden", "hidden_int", "logits", "logits_int", "output_int"]
        assert np.array_equal(y["hidden_int"], r.hidden_int[-1])
        assert np.array_equal(y["output_int"], r.output_int)
        assert np.array_equal(y["logits_int"], r.logits_int)
        assert np.array_equal(y["hidden"], r.h) and np.array_equal(y["logits"], r.logits)
    rc, _, _ = run_cli(capsys, "run", path, "--inputs", tmp_path / "x.npy", "--out",
                       tmp_path / "f.npz", "--mode", "float")
    with np.load(tmp_path / "f.npz") as y:
        assert sorted(y.files) == ["hidden", "logits"]
        assert np.array_equal(y["logits"], m.run(x, mode="float").logits)


def test_run_vector_model_without_head(capsys, tmp_path, rng):
    m = Model.random("rnn", "binary", 3, 2, input_kind="vector", seed=0)
    path = m.save(tmp_path / "m.npz")
    x = rng.normal(size=(2, 4, 3))
    np.save(tmp_path / "x.npy", x)
    rc, _, _ = run_cli(capsys, "run", path, "--inputs", tmp_path / "x.npy", "--out",
                       tmp_path / "y.npz")
    with np.load(tmp_path / "y.npz") as y:
        assert rc == 0 and sorted(y.files) == ["hidden", "hidden_int", "output_int"]
        assert np.array_equal(y["hidden_int"], m.run(x).hidden_int[-1])
    # the on-wire formats.x integers (what s_axis_tdata carries) are taken as they are
    wire = m.quantize_inputs(x)
    np.save(tmp_path / "w.npy", wire)
    rc, _, _ = run_cli(capsys, "run", path, "--inputs", tmp_path / "w.npy", "--out",
                       tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as y:
        assert rc == 0 and np.array_equal(y["output_int"], m.run_int(wire).output_int)
    fx = m.formats["x"]
    np.save(tmp_path / "big.npy", np.full((1, 2, 3), fx.max_int + 1))
    rc, _, err = run_cli(capsys, "run", path, "--inputs", tmp_path / "big.npy", "--out",
                         tmp_path / "b.npz")
    assert rc == 2 and "big.npy" in err and "outside formats.x" in err


def test_run_bad_input_and_no_overwrite(capsys, tmp_path, token_model, rng):
    _, path = token_model
    y = tmp_path / "y.npz"
    y.write_bytes(b"old")
    np.save(tmp_path / "x.npy", rng.integers(0, 7, size=(2, 3)))
    rc, _, err = run_cli(capsys, "run", path, "--inputs", tmp_path / "x.npy", "--out", y)
    assert_one_line_error(rc, err, "y.npz exists", "--force")
    assert y.read_bytes() == b"old"
    out = tmp_path / "new.npz"
    np.save(tmp_path / "bad.npy", np.array([[0, 8, 1], [2, 3, 4]]))  # 3-bit field: 0..7
    rc, _, err = run_cli(capsys, "run", path, "--inputs", tmp_path / "bad.npy", "--out", out)
    assert_one_line_error(rc, err, "bad.npy", "token indices must lie in [0, 8)")
    np.save(tmp_path / "shape.npy", rng.normal(size=(2, 3, 7)))
    rc, _, err = run_cli(capsys, "run", path, "--inputs", tmp_path / "shape.npy", "--out", out)
    assert_one_line_error(rc, err, "shape.npy", "(batch, time)", "token input")
    rc, _, err = run_cli(capsys, "run", path, "--inputs", tmp_path / "none.npy", "--out", out)
    assert_one_line_error(rc, err, "none.npy", "none.npy: no such file")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    rc, _, err = run_cli(capsys, "run", path, "--inputs", tmp_path / "junk.npy", "--out", out)
    assert_one_line_error(rc, err, "junk.npy", "not a readable .npy")
    assert not out.exists()
    rc, _, _ = run_cli(capsys, "run", path, "--inputs", tmp_path / "x.npy", "--out", y,
                       "--force")
    assert rc == 0 and y.read_bytes() != b"old"
