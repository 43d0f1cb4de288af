"""``shiftrnn verify`` and ``shiftrnn simulate`` end to end (real Verilator, real cocotb)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import golden
import hw
from shiftrnn.cli import main

FIXTURE = Path(__file__).parent / "data" / "sim" / "runsum"


@pytest.fixture
def runsum(tmp_path):
    d = tmp_path / "rtl_out" / "runsum"
    shutil.copytree(FIXTURE, d)
    return d


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """Token-input LSTM with a head over a 6-character vocabulary, folded."""
    m = golden.Model.random("lstm", "ternary", 6, 5, output_size=6, input_kind="token", seed=2)
    m.meta["vocab"] = list("abcd e")
    return hw.generate(m, out_dir=tmp_path_factory.mktemp("rtl") / "lm", lanes=2)


def test_verify_pass_and_waves(runsum, capsys):
    rc = main(["verify", str(runsum), "--sequences", "3", "--length", "6", "--seed", "4",
               "--waves"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("PASS runsum")
    assert "cycles/timestep 3 (manifest 3)" in out and "seed 4" in out
    vcd = runsum / "runsum.vcd"
    assert vcd.is_file() and "s_axis_tvalid" in vcd.read_text()[:200_000]


def test_verify_fail_exits_nonzero(runsum, capsys):
    v = runsum / "runsum.v"
    v.write_text(v.read_text().replace("step = 8'd64;", "step = 8'd62;"))
    rc = main(["verify", str(runsum), "--sequences", "4", "--length", "8"])
    out = capsys.readouterr().out
    assert rc == 1
    assert out.startswith("FAIL runsum") and "differ from golden" in out


def test_verify_missing_design(tmp_path, capsys):
    rc = main(["verify", str(tmp_path / "nope")])
    assert rc == 2
    assert "no such design folder" in capsys.readouterr().err


def test_simulate_inputs_and_out(runsum, tmp_path, capsys):
    x = np.random.default_rng(0).uniform(-2.5, 2.5, size=(5, 9, 3))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "o.npz"
    rc = main(["simulate", str(runsum), "--inputs", str(tmp_path / "x.npy"), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "bit-exact vs golden" in text and "timesteps/s" in text and "toggles:" in text
    model = golden.load(runsum / "model.npz")
    with np.load(out) as z:
        assert np.array_equal(z["outputs"], model.run(x).output_int)
        assert int(z["cycles"]) == 5 * 9 * 3 + 1
    rc = main(["simulate", str(runsum), "--inputs", str(tmp_path / "x.npy"), "--out", str(out)])
    assert rc == 2 and "--force" in capsys.readouterr().err


def test_simulate_corpus_needs_token_model(runsum, tmp_path, capsys):
    (tmp_path / "c.txt").write_text("hello")
    rc = main(["simulate", str(runsum), "--corpus", str(tmp_path / "c.txt")])
    assert rc == 2 and "token-input model" in capsys.readouterr().err


def test_simulate_corpus_bpc(lm, tmp_path, capsys):
    """simulate reads text as eval does: the same streams, so the RTL's BPC is eval's int BPC."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("abc dea bad cab " * 40)
    rc = main(["simulate", str(lm), "--corpus", str(corpus), "--max-timesteps", "300"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "first 301 characters: 300 characters in 1 streams of 300" in text
    assert "bit-exact" in text
    rtl_bpc = float(text.split("BPC ")[1].split()[0])
    assert main(["eval", str(lm / "model.npz"), "--corpus", str(corpus), "--max-timesteps",
                 "300", "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["int"] == pytest.approx(rtl_bpc, abs=1e-4)
    corpus.write_text("abc xyz")
    rc = main(["simulate", str(lm), "--corpus", str(corpus)])
    err = capsys.readouterr().err
    assert rc == 2 and "not in the model's vocabulary" in err and "corpus format 'ptb'" in err
