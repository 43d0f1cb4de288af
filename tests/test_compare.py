"""The precision comparison (shiftrnn.flow.compare) and re-quantization (golden.requantize):
the variants, the compare table, files and plots; the multiplier must-show."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import golden
import golden.requantize as Q
from estimate import EnergyEstimate, HardwareEstimate, PnrFigures, resolve_device
from estimate.design import Audit, SynthFigures, design_energy
from estimate.energy import datapath_energy
from golden.evaluation import golden_bpc, text_tokens
from golden.manifest import Manifest
from shiftrnn.flow import compare as C
from shiftrnn.flow.compare_report import COMPARE_SCHEMA, format_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _model(method="ternary", n=4, seed=3, **kw):
    return golden.Model.random("gru", method, n, n, output_size=n, input_kind="token", seed=seed,
                               **kw)


def _matrices(model):
    mats = [q for lay in model.layers for q in (lay.w_ih, lay.w_hh)]
    return mats + ([model.head.w] if model.head is not None else [])


# ------------------------------------------------------------------------ no tools
def test_int8_model_is_8bit_fixed_point():
    src = _model("ternary", n=8)
    q = Q.int8_model(src)
    assert q.method == "pow2-ternary" and q.method_params == {"i": 0, "f": 7}
    for a, b in zip(_matrices(src), _matrices(q), strict=True):
        assert np.abs(b.codes).max() <= 127 and b.C == 1 and b.shift == -7
        assert np.abs(a.values - b.values).max() <= 2.0**-8 + 1e-12  # half a code step
    assert q.formats == src.formats and q.nonlinearity == src.nonlinearity


def test_int8_model_integer_part_fits_largest_weight():
    # weights up to 3.5 need 2 integer bits: 127 * 2**-5 = 3.97 >= 3.5 > 127 * 2**-6 = 1.98
    rng = np.random.default_rng(5)
    w = {"weight_ih": rng.uniform(-3.5, 3.5, (12, 4)), "weight_hh": rng.uniform(-1, 1, (12, 4)),
         "bias_ih": np.zeros(12), "bias_hh": np.zeros(12)}
    w["weight_ih"][0, 0] = 3.5
    head = {"weight": rng.uniform(-1, 1, (4, 4)), "bias": np.zeros(4)}
    src = golden.Model.from_float("gru", [w], head, method="pow2-ternary", input_kind="token",
                                  method_params={"i": 2, "f": 1})
    q = Q.int8_model(src)
    assert q.method_params == {"i": 2, "f": 5}
    for a, b in zip(_matrices(src), _matrices(q), strict=True):
        np.testing.assert_array_equal(a.values, b.values)  # k/2 is exact in 8 bits


def test_requantize_same_method_is_identity_and_keeps_meta():
    src = _model("ternary", n=6)
    src = dataclasses.replace(src, meta={"vocab": list("abcdef")})
    again = Q.requantize(src, "ternary")
    for k, v in src.arrays().items():
        np.testing.assert_array_equal(again.arrays()[k], v, err_msg=k)
    b = Q.requantize(src, "binary")
    assert b.method == "binary" and b.meta["vocab"] == list("abcdef")
    assert all(set(np.unique(q.codes)) <= {-1, 1} for q in _matrices(b))
    assert b.formats == src.formats and b.scale_terms == src.scale_terms
    e = Q.requantize(src, "exponential")
    assert e.method_params == {"kmin": -8, "kmax": 0}


def test_requantize_copies_fixed_biases():
    src = _model("ternary", n=4, bias_mode="fixed")
    b = Q.requantize(src, "exponential")
    for new, old in zip(b.layers, src.layers, strict=True):
        np.testing.assert_array_equal(new.b_ih.ints, old.b_ih.ints)
        assert new.b_hh.frac == old.b_hh.frac
    np.testing.assert_array_equal(b.head.b.ints, src.head.b.ints)


def test_fitted_params_keep_small_weights_alive():
    src = _model("ternary", n=64)  # Glorot bounds of 64-wide matrices are below 0.25
    wmax = Q.max_weight(src)
    assert 0 < wmax < 0.25
    assert Q.fitted_params(src, "ternary") == {} and Q.fitted_params(src, "binary") == {}
    p2 = Q.fitted_params(src, "pow2-ternary")
    assert p2["i"] == 0 and 2.0 ** -p2["f"] == pytest.approx(wmax / 2, rel=0.5)
    ex = Q.fitted_params(src, "exponential")
    assert ex["kmax"] - ex["kmin"] == 8 and 2.0 ** (ex["kmax"] - 1) < wmax <= 2.0 ** ex["kmax"]
    # golden's default pow2-ternary (f=1: levels 0, +-0.5) zeroes these weights; the fit does not
    zeroed = Q.requantize(src, "pow2-ternary")
    assert all(not q.codes.any() for q in _matrices(zeroed))
    fitted = Q.requantize(src, "pow2-ternary", p2)
    assert all(q.codes.any() for q in _matrices(fitted))
    with pytest.raises(ValueError, match="unknown method"):
        Q.fitted_params(src, "float")


def test_text_tokens():
    m = _model(n=4)
    toks = text_tokens("hello world", m)
    np.testing.assert_array_equal(toks, np.frombuffer(b"hello world", np.uint8) % 4)
    vec = golden.Model.random("gru", "ternary", 4, 4, output_size=4, input_kind="vector")
    with pytest.raises(ValueError, match="token-input model"):
        text_tokens("hello", vec)
    voc = dataclasses.replace(m, meta={"vocab": list("helo")})
    with pytest.raises(ValueError, match="not in the model's vocabulary.*corpus format 'ptb'"):
        text_tokens("hello world", voc)


def test_resolve_device():
    assert resolve_device("ice40") == "up5k"
    assert resolve_device("ecp5") == "ecp5-25k"
    assert resolve_device("generic") is None and resolve_device("xilinx7") is None
    assert resolve_device("ice40", "hx8k") == "hx8k"
    with pytest.raises(ValueError, match="unknown target 'vivado'"):
        resolve_device("vivado")
    with pytest.raises(ValueError, match="unknown ice40 device 'ecp5-25k'"):
        resolve_device("ice40", "ecp5-25k")
    with pytest.raises(ValueError, match="area only"):
        resolve_device("xilinx7", "up5k")


def test_compare_rejects_bad_arguments(tmp_path):
    m = _model()
    with pytest.raises(ValueError, match="lanes must be in 1..4"):
        C.compare(m, 5, tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        C.compare(m, 1, tmp_path / "a", methods=("ternery",), progress=False)
    with pytest.raises(ValueError, match="unknown target"):
        C.compare(m, 1, tmp_path / "a", target="asic", progress=False)
    with pytest.raises(ValueError, match="unknown method 'float'"):
        C.compare(m, 1, tmp_path / "a", method_params={"float": {}}, progress=False)
    with pytest.raises(ValueError, match="unknown"):
        C.compare(m, 1, tmp_path / "a", method_params={"exponential": {"f": 2}},
                  progress=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        C.compare(m, 1, busy, progress=False)
    vec = golden.Model.random("gru", "ternary", 4, 4, output_size=4, input_kind="vector")
    with pytest.raises(ValueError, match="character language model"):
        C.compare(vec, 1, tmp_path / "v", tokens=np.zeros(10, np.int64), progress=False)
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    assert not (tmp_path / "a").exists()


def _row(method, kind, datapath, energy_pj, *, lut=None, ff=0, dsp=0, muls=0, fits=None,
         fmax=None, message="", cycles=7, time=None, bpc=None) -> C.CompareRow:
    """A compare row as compare() records it (figures from the tools)."""
    from estimate.synth import MulCell

    hardware = None
    if lut is not None:
        mul = tuple(MulCell(f"m{i}", "$mul", 8, 8, 16, False) for i in range(muls))
        synth = SynthFigures("ice40", lut, ff, 0, dsp, 0, lut + ff, {}, mul, "0", 0.0, True)
        pnr = None if fits is None else PnrFigures("up5k", fits, fmax, message, {}, True, "0",
                                                   0.0, True)
        hardware = HardwareEstimate("ice40", synth, Audit(muls, dsp, not muls, False, True),
                                    pnr, cycles, time, None if time is None else 1 / time)
    return C.CompareRow(method, kind, datapath, "model", {}, None, hardware,
                        EnergyEstimate(method, energy_pj, {}), 1.0, 1.0, bpc, None, None)


def test_format_table_marks_missing_figures():
    rows = [
        _row("float32", "float32", None, 4000.0),
        _row("int8-mult", "int8-mult", "mult", 700.0, lut=10, ff=2, dsp=3, muls=3, fits=False,
             message="does not fit up5k: ...", bpc=3.25),
        _row("ternary", "shiftadd", "shiftadd", 100.0, lut=1234, ff=5, fits=True, fmax=50.0,
             cycles=10, time=2e-7),
    ]
    text = format_table(rows, "ice40", "up5k")
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["method", "datapath", "LUT"] and "fmax (up5k)" in lines[0]
    assert "does not fit" in lines[3] and "1,234" in lines[4] and "200 ns" in lines[4]
    assert lines[2].split()[2:7] == ["-", "-", "-", "-", "-"]
    assert lines[0].split()[4:7] == ["DSP", "BRAM", "$mul"] and lines[3].split()[4:7] == \
        ["3", "0", "3"]
    md = format_table(rows, "generic", None, markdown=True)
    assert md.startswith("| method | datapath | cells |") and md.count("\n") == 5
    assert md.splitlines()[3].split(" | ")[4:7] == ["-", "-", "3"]  # generic: no DSP/BRAM


# ----------------------------------------------------------------------- with tools
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """GRU 4 -> 4 (token LM), lanes 2, on ice40/up5k: float32, int8 and ternary."""
    base = tmp_path_factory.mktemp("compare-small")
    model = _model("ternary", n=4)
    tokens = text_tokens("the quick brown fox jumps over the lazy dog. " * 40, model)
    res = C.compare(model, 2, base / "out", tokens=tokens, target="ice40", progress=False,
                    methods=("ternary",), cache_dir=base / "cache", corpus="the fox")
    return model, tokens, res


def test_quick_ternary_has_no_dsp_int8_has_dsp(small):
    _, _, res = small
    tern, int8 = res.row("ternary"), res.row("int8-mult")
    assert tern.dsp == 0 and tern.mul_cells == 0
    assert int8.dsp > 0 and int8.mul_cells > 0
    mans = [json.loads((res.out_dir / r.design_dir / "manifest.json").read_text())
            for r in (tern, int8)]
    assert [m["config"]["lanes"] for m in mans] == [2, 2]
    assert [m["config"]["datapath"] for m in mans] == ["shiftadd", "mult"]
    assert tern.cycles_per_timestep == int8.cycles_per_timestep


def test_rows_come_from_tools_and_the_energy_table(small):
    model, tokens, res = small
    assert [r.method for r in res.rows] == ["float32", "int8-mult", "ternary"]
    f32, int8, tern = res.row("float32"), res.row("int8-mult"), res.row("ternary")
    assert f32.lut is None and f32.design_dir is None and f32.fmax_mhz is None
    own = design_energy(model, Manifest.read(res.out_dir / tern.design_dir))
    assert f32.energy_pj == pytest.approx(own["float32"].per_timestep_pj)
    assert tern.energy_pj == pytest.approx(own["design"].per_timestep_pj)
    assert tern.energy.counts["weight_memory_bits"] == sum(
        m.bits for m in Manifest.read(res.out_dir / tern.design_dir).memories)
    i8 = datapath_energy(Q.int8_model(model).op_counts(), "int8-mult")
    assert int8.energy_pj == pytest.approx(i8.per_timestep_pj)
    assert tern.weights == "model" and int8.weights == "int8"
    for r in res.rows[1:]:
        assert r.lut == r.hardware.synth.lut > 0 and r.hardware.pnr.device == "up5k"
        if r.fits:
            assert r.time_per_timestep_s == pytest.approx(
                r.cycles_per_timestep / (r.fmax_mhz * 1e6))
        else:
            assert "does not fit" in r.pnr_message and r.time_per_timestep_s is None
    assert tern.fits and tern.fmax_mhz > 0
    assert tern.bpc == pytest.approx(golden_bpc(model, tokens, "int"))
    assert f32.bpc == pytest.approx(golden_bpc(model, tokens, "float"))
    assert tern.accuracy_path == "golden integer path"


def test_files_and_plots(small):
    _, _, res = small
    data = json.loads(res.json_path.read_text())
    assert data["schema"] == COMPARE_SCHEMA and data["config"]["lanes"] == 2
    assert [r["method"] for r in data["rows"]] == [r.method for r in res.rows]
    tern = data["rows"][2]
    assert tern["energy_per_sequence_pj"] == pytest.approx(256 * tern["energy_pj"])
    assert tern["design_dir"] == "rtl/ternary" and tern["lut"] == res.row("ternary").lut
    md = res.md_path.read_text()
    assert "| method | datapath | LUT |" in md and "int8-mult" in md
    assert f"BPC on the fox ({res.config['corpus_tokens']} characters)" in md
    assert set(res.plots) == {"energy", "area_throughput"}
    assert res.plots["energy"].name == "energy_vs_accuracy.png"
    for p in res.plots.values():
        assert p.read_bytes()[:8] == PNG_MAGIC and p.parent == res.out_dir
    assert "ternary" in res.table and "fmax (up5k)" in res.table


@pytest.mark.slow
def test_gru64_ternary_has_no_dsp_int8_uses_dsp(tmp_path):
    """The must-show at full size: GRU hidden 64, token input 64, the same lanes (area only)."""
    model = golden.Model.random("gru", "ternary", 64, 64, output_size=64, input_kind="token",
                                seed=1)
    res = C.compare(model, 4, tmp_path / "out", target="ice40", place=False, progress=False,
                    methods=("ternary",))
    tern, int8 = res.row("ternary"), res.row("int8-mult")
    assert tern.dsp == 0 and tern.mul_cells == 0 and tern.lut > 0
    assert int8.dsp > 0 and int8.mul_cells > 0
    assert tern.cycles_per_timestep == int8.cycles_per_timestep
    assert res.plots["energy"].name == "energy_per_step.png"
