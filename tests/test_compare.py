"""shiftrnn.compare: the variants, the compare table, files and plots; the multiplier must-show."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import golden
from estimate import baseline_energy, energy_from_ops
from shiftrnn import compare as C
from train.data import golden_bpc

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
    q = C.int8_model(src)
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
    q = C.int8_model(src)
    assert q.method_params == {"i": 2, "f": 5}
    for a, b in zip(_matrices(src), _matrices(q), strict=True):
        np.testing.assert_array_equal(a.values, b.values)  # k/2 is exact in 8 bits


def test_requantize_same_method_is_identity_and_keeps_meta():
    src = _model("ternary", n=6)
    src = dataclasses.replace(src, meta={"vocab": list("abcdef")})
    again = C.requantize(src, "ternary")
    for k, v in src.arrays().items():
        np.testing.assert_array_equal(again.arrays()[k], v, err_msg=k)
    b = C.requantize(src, "binary")
    assert b.method == "binary" and b.meta["vocab"] == list("abcdef")
    assert all(set(np.unique(q.codes)) <= {-1, 1} for q in _matrices(b))
    assert b.formats == src.formats and b.scale_terms == src.scale_terms
    e = C.requantize(src, "exponential")
    assert e.method_params == {"kmin": -8, "kmax": 0}


def test_requantize_copies_fixed_biases():
    src = _model("ternary", n=4, bias_mode="fixed")
    b = C.requantize(src, "exponential")
    for new, old in zip(b.layers, src.layers, strict=True):
        np.testing.assert_array_equal(new.b_ih.ints, old.b_ih.ints)
        assert new.b_hh.frac == old.b_hh.frac
    np.testing.assert_array_equal(b.head.b.ints, src.head.b.ints)


def test_fitted_params_keep_small_weights_alive():
    src = _model("ternary", n=64)  # Glorot bounds of 64-wide matrices are below 0.25
    wmax = C.max_weight(src)
    assert 0 < wmax < 0.25
    assert C.fitted_params(src, "ternary") == {} and C.fitted_params(src, "binary") == {}
    p2 = C.fitted_params(src, "pow2-ternary")
    assert p2["i"] == 0 and 2.0 ** -p2["f"] == pytest.approx(wmax / 2, rel=0.5)
    ex = C.fitted_params(src, "exponential")
    assert ex["kmax"] - ex["kmin"] == 8 and 2.0 ** (ex["kmax"] - 1) < wmax <= 2.0 ** ex["kmax"]
    # golden's default pow2-ternary (f=1: levels 0, +-0.5) zeroes these weights; the fit does not
    zeroed = C.requantize(src, "pow2-ternary")
    assert all(not q.codes.any() for q in _matrices(zeroed))
    fitted = C.requantize(src, "pow2-ternary", p2)
    assert all(q.codes.any() for q in _matrices(fitted))
    with pytest.raises(ValueError, match="unknown method"):
        C.fitted_params(src, "float")


def test_corpus_tokens(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("hello world")
    m = _model(n=4)
    toks = C.corpus_tokens(m, text)
    np.testing.assert_array_equal(toks, np.frombuffer(b"hello world", np.uint8) % 4)
    with pytest.raises(FileNotFoundError, match="not found"):
        C.corpus_tokens(m, tmp_path / "missing.txt")
    vec = golden.Model.random("gru", "ternary", 4, 4, output_size=4, input_kind="vector")
    with pytest.raises(ValueError, match="character language model"):
        C.corpus_tokens(vec, text)
    voc = dataclasses.replace(m, meta={"vocab": list("helo")})
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        C.corpus_tokens(voc, text)


def test_resolve_device():
    assert C.resolve_device("ice40") == "up5k"
    assert C.resolve_device("ecp5") == "ecp5-25k"
    assert C.resolve_device("generic") is None and C.resolve_device("xilinx7") is None
    assert C.resolve_device("ice40", "hx8k") == "hx8k"
    with pytest.raises(ValueError, match="unknown target 'vivado'"):
        C.resolve_device("vivado")
    with pytest.raises(ValueError, match="unknown ice40 device 'ecp5-25k'"):
        C.resolve_device("ice40", "ecp5-25k")
    with pytest.raises(ValueError, match="area only"):
        C.resolve_device("xilinx7", "up5k")


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
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    assert not (tmp_path / "a").exists()


def test_format_table_marks_missing_figures():
    rows = [
        {"method": "float32", "kind": "float32", "datapath": None, "energy_pj": 4000.0},
        {"method": "int8-mult", "kind": "int8-mult", "datapath": "mult", "lut": 10, "ff": 2,
         "dsp": 3, "bram": 0, "mul_cells": 3, "fits": False,
         "pnr_message": "does not fit up5k: ...", "cycles_per_timestep": 7, "energy_pj": 700.0,
         "bpc": 3.25},
        {"method": "ternary", "kind": "shiftadd", "datapath": "shiftadd", "lut": 1234, "ff": 5,
         "dsp": 0, "bram": 0, "fits": True, "fmax_mhz": 50.0, "cycles_per_timestep": 10,
         "time_per_timestep_s": 2e-7, "energy_pj": 100.0},
    ]
    text = C.format_table(rows, "ice40", "up5k")
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["method", "datapath", "LUT"] and "fmax (up5k)" in lines[0]
    assert "does not fit" in lines[3] and "1,234" in lines[4] and "200 ns" in lines[4]
    assert lines[2].split()[2:7] == ["-", "-", "-", "-", "-"]
    assert lines[0].split()[4:7] == ["DSP", "BRAM", "$mul"] and lines[3].split()[4:7] == \
        ["3", "0", "3"]
    md = C.format_table(rows, "generic", None, markdown=True)
    assert md.startswith("| method | datapath | cells |") and md.count("\n") == 5
    assert md.splitlines()[3].split(" | ")[4:7] == ["-", "-", "3"]  # generic: no DSP/BRAM


# ----------------------------------------------------------------------- with tools
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """GRU 4 -> 4 (token LM), lanes 2, on ice40/up5k: float32, int8 and ternary."""
    base = tmp_path_factory.mktemp("compare-small")
    corpus = base / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    model = _model("ternary", n=4)
    res = C.compare(model, 2, base / "out", corpus=corpus, target="ice40", progress=False,
                    methods=("ternary",), cache_dir=base / "cache")
    return model, corpus, res


def test_quick_ternary_has_no_dsp_int8_has_dsp(small):
    _, _, res = small
    tern, int8 = res.row("ternary"), res.row("int8-mult")
    assert tern["dsp"] == 0 and tern["mul_cells"] == 0
    assert int8["dsp"] > 0 and int8["mul_cells"] > 0
    mans = [json.loads((Path(r["design_dir"]) / "manifest.json").read_text())
            for r in (tern, int8)]
    assert [m["config"]["lanes"] for m in mans] == [2, 2]
    assert [m["config"]["datapath"] for m in mans] == ["shiftadd", "mult"]
    assert tern["cycles_per_timestep"] == int8["cycles_per_timestep"]


def test_rows_come_from_tools_and_the_energy_table(small):
    model, corpus, res = small
    assert [r["method"] for r in res.rows] == ["float32", "int8-mult", "ternary"]
    f32, int8, tern = res.row("float32"), res.row("int8-mult"), res.row("ternary")
    assert f32["lut"] is None and f32["design_dir"] is None and f32["fmax_mhz"] is None
    ops = model.op_counts()
    assert f32["energy_pj"] == pytest.approx(baseline_energy(ops, "float32").per_timestep_pj)
    assert tern["energy_pj"] == pytest.approx(energy_from_ops(ops).per_timestep_pj)
    i8ops = C.int8_model(model).op_counts()
    assert int8["energy_pj"] == pytest.approx(
        baseline_energy(i8ops, "int8-mult").per_timestep_pj)
    assert tern["energy_per_sequence_pj"] == pytest.approx(256 * tern["energy_pj"])
    assert tern["weights"] == "model" and int8["weights"] == "int8"
    for r in res.rows[1:]:
        h = r["hardware"]
        assert r["lut"] == h["synth"]["lut"] > 0 and h["pnr"]["device"] == "up5k"
        if r["fits"]:
            assert r["time_per_timestep_s"] == pytest.approx(
                r["cycles_per_timestep"] / (r["fmax_mhz"] * 1e6))
        else:
            assert "does not fit" in r["pnr_message"] and r["time_per_timestep_s"] is None
    assert tern["fits"] and tern["fmax_mhz"] > 0
    toks = C.corpus_tokens(model, corpus)
    assert tern["bpc"] == pytest.approx(golden_bpc(model, toks, "int"))
    assert f32["bpc"] == pytest.approx(golden_bpc(model, toks, "float"))
    assert tern["accuracy_path"] == "golden integer path"


def test_files_and_plots(small):
    _, _, res = small
    data = json.loads(res.json_path.read_text())
    assert data["schema"] == C.COMPARE_SCHEMA and data["config"]["lanes"] == 2
    assert [r["method"] for r in data["rows"]] == [r["method"] for r in res.rows]
    md = res.md_path.read_text()
    assert "| method | datapath | LUT |" in md and "int8-mult" in md
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
    assert tern["dsp"] == 0 and tern["mul_cells"] == 0 and tern["lut"] > 0
    assert int8["dsp"] > 0 and int8["mul_cells"] > 0
    assert tern["cycles_per_timestep"] == int8["cycles_per_timestep"]
    assert res.plots["energy"].name == "energy_per_step.png"
