"""``shiftrnn estimate`` and ``shiftrnn compare``: happy paths and bad inputs (one line, exit 2)."""

from __future__ import annotations

import json

import pytest

import golden
import hw
from shiftrnn.cli import main


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A small GRU design folder and model file; the estimate cache in a temporary folder."""
    base = tmp_path_factory.mktemp("cli-estimate")
    model = golden.Model.random("gru", "ternary", 4, 4, output_size=4, input_kind="token",
                                seed=7)
    model.save(base / "m.npz")
    design = hw.generate(model, out_dir=base / "rtl" / "g4", lanes=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHIFTRNN_CACHE", str(base / "cache"))
        yield base, design


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("shiftrnn ") and "error:" in err, err
    for w in words:
        assert w in err, err
    return err


def test_estimate_generic_then_refuses_to_overwrite(env, capsys):
    _, design = env
    assert main(["estimate", str(design), "--target", "generic", "--length", "10"]) == 0
    out = capsys.readouterr().out
    assert "multiplier audit: 0 $mul/$macc cell(s), 0 DSP -- multiplier-free" in out
    assert "place and route: none for target generic" in out
    path = design / "estimate_generic.json"
    rep = json.loads(path.read_text())
    assert rep["schema"] == "shiftrnn-estimate/1" and rep["device"] is None
    assert rep["hardware"]["audit"]["passed"] and rep["hardware"]["synth"]["cells_total"] > 0
    e = rep["energy"]
    assert e["length"] == 10
    assert e["design"]["per_sequence_pj"] == pytest.approx(10 * e["design"]["per_timestep_pj"])
    assert e["ratio_int8_mult"] > 1 and e["ratio_float32"] > e["ratio_int8_mult"]
    before = path.read_bytes()
    assert main(["estimate", str(design), "--target", "generic"]) == 2
    _one_line_error(capsys, "exists", "--force")
    assert path.read_bytes() == before
    assert main(["estimate", str(design), "--target", "generic", "--force", "--length", "3"]) == 0
    assert json.loads(path.read_text())["energy"]["length"] == 3


def test_estimate_ice40_json(env, capsys):
    _, design = env
    assert main(["estimate", str(design), "--target", "ice40", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep == json.loads((design / "estimate_ice40.json").read_text())
    p, hwr = rep["hardware"]["pnr"], rep["hardware"]
    assert rep["device"] == "up5k" and p["wrap_io"] and p["fits"] and p["fmax_mhz"] > 0
    assert hwr["synth"]["dsp"] == 0 and hwr["synth"]["mul_cells"] == []
    assert hwr["time_per_timestep_s"] == pytest.approx(
        hwr["cycles_per_timestep"] / (p["fmax_mhz"] * 1e6))


def test_estimate_bad_inputs(env, capsys, tmp_path):
    base, design = env
    assert main(["estimate", str(tmp_path / "nope"), "--target", "ice40"]) == 2
    _one_line_error(capsys, "no such design folder", "shiftrnn generate")
    assert main(["estimate", str(tmp_path), "--target", "ice40"]) == 2
    _one_line_error(capsys, "manifest.json: missing")
    assert main(["estimate", str(design), "--target", "vivado"]) == 2
    _one_line_error(capsys, "unknown target 'vivado'", "ice40")
    assert main(["estimate", str(design), "--target", "ice40", "--device", "xc7"]) == 2
    _one_line_error(capsys, "unknown ice40 device 'xc7'")
    assert main(["estimate", str(design), "--target", "xilinx7", "--device", "up5k"]) == 2
    _one_line_error(capsys, "area only")
    assert not (design / "estimate_vivado.json").exists()
    assert not (design / "estimate_xilinx7.json").exists()


def test_compare_cli_and_no_overwrite(env, capsys):
    base, _ = env
    out = base / "cmp"
    args = ["compare", str(base / "m.npz"), "--lanes", "1", "--out", str(out), "--target",
            "generic", "--methods", "binary,ternary,pow2-ternary", "--method-param",
            "pow2-ternary:f=2", "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    for word in ("float32", "int8-mult", "binary", "ternary", "cells", "compare.json"):
        assert word in text
    data = json.loads((out / "compare.json").read_text())
    assert [r["method"] for r in data["rows"]] == ["float32", "int8-mult", "binary", "ternary",
                                                   "pow2-ternary"]
    assert data["config"]["device"] is None and data["rows"][2]["weights"] == "requantized"
    assert data["rows"][4]["method_params"] == {"i": 0, "f": 2}
    assert (out / "area_vs_throughput.png").is_file() and (out / "energy_per_step.png").is_file()
    before = (out / "compare.json").read_bytes()
    assert main(args) == 2
    _one_line_error(capsys, "exists", "--force")
    assert (out / "compare.json").read_bytes() == before
    assert main([*args, "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "shiftrnn-compare/2"


def test_compare_bad_inputs(env, capsys, tmp_path):
    base, _ = env
    model = str(base / "m.npz")
    assert main(["compare", model, "--lanes", "1", "--out", str(tmp_path / "a"), "--target",
                 "asic"]) == 2
    _one_line_error(capsys, "unknown target 'asic'")
    assert main(["compare", model, "--lanes", "9", "--out", str(tmp_path / "a")]) == 2
    _one_line_error(capsys, "lanes must be in 1..4")
    assert main(["compare", model, "--lanes", "1", "--out", str(tmp_path / "a"), "--methods",
                 "ternary,quaternary"]) == 2
    _one_line_error(capsys, "unknown method(s) ['quaternary']")
    assert main(["compare", model, "--lanes", "1", "--out", str(tmp_path / "a"),
                 "--method-param", "pow2-ternary=3"]) == 2
    _one_line_error(capsys, "expected METHOD:KEY=VALUE")
    assert main(["compare", model, "--lanes", "1", "--out", str(tmp_path / "a"),
                 "--method-param", "exponential:kmin=x"]) == 2
    _one_line_error(capsys, "not a number")
    assert main(["compare", str(tmp_path / "none.npz"), "--lanes", "1", "--out",
                 str(tmp_path / "a")]) == 2
    _one_line_error(capsys)
    assert main(["compare", model, "--lanes", "1", "--out", str(tmp_path / "a"), "--corpus",
                 str(tmp_path / "missing.txt")]) == 2
    _one_line_error(capsys, "corpus file", "not found")
    assert not (tmp_path / "a").exists()
