"""Generated Verilog: Verilator -Wall lint, the multiplier-free proof in yosys, the manifest and
the ``generate`` command."""

from __future__ import annotations

import json
import re

import pytest

import golden
import hw
from estimate import synthesize
from golden.manifest import Manifest
from shiftrnn.cli import main
from sim import lint

SIZES = [(5, 7), (3, 4)]


def make(tmp_path, cell, method, lanes, *, inp=5, hid=7, datapath="shiftadd", kind="token"):
    model = golden.Model.random(cell, method, inp, hid, output_size=3, input_kind=kind, seed=2)
    kw = {"unrolled": True} if lanes == "u" else {"lanes": lanes}
    name = f"{cell}_{method}_{lanes}_{datapath}".replace("-", "_")
    return hw.generate(model, out_dir=tmp_path / name, datapath=datapath, **kw)


def verilog(design):
    man = Manifest.read(design)
    return design / man.verilog, man.top, design / man.lint_waiver, man


@pytest.mark.parametrize("lanes", [1, 3, "u"])
@pytest.mark.parametrize("method", golden.METHODS)
@pytest.mark.parametrize("cell", list(golden.CELLS))
def test_lint_clean(tmp_path, cell, method, lanes):
    v, top, waiver, man = verilog(make(tmp_path, cell, method, lanes, kind="vector"))
    assert lint(v, top, waiver=waiver) == []
    assert "(* src" not in v.read_text(), "no source-location attributes"
    assert man.cycles_per_timestep > 0 and man.model_hash


def test_lint_waiver_is_narrow(tmp_path):
    """Only yosys-backend idioms are waived; a real problem (here an undriven port) still fails."""
    assert set(hw.LINT_WAIVED) <= {"WIDTHEXPAND", "WIDTHTRUNC", "CASEOVERLAP", "PROCASSINIT",
                                   "UNUSEDSIGNAL", "DECLFILENAME"}
    v, top, waiver, _ = verilog(make(tmp_path, "rnn", "ternary", 2))
    text = v.read_text()
    head = text.index(");", text.index(f"module {top}(")) + 2
    bad = tmp_path / v.name  # same file name, so the waiver's file pattern still applies
    v.rename(tmp_path / "good.v")
    bad.write_text(text[:head] + "\n  wire probe_undriven;\n  wire probe = probe_undriven;"
                   + text[head:])
    problems = lint(bad, top, waiver=waiver)
    assert any("UNDRIVEN" in p for p in problems), problems



@pytest.mark.parametrize("lanes", [2, "u"])
def test_tables_are_roms(tmp_path, lanes):
    """The exact nonlinearity's 10-bit tables and the unrolled token table are ROMs read by
    index (hw.arith.rom): no one-hot case patterns as wide as a table, Verilog that grows with a
    table's length (as one-hot cases, each 1024-entry table alone would be 1 MB), lint clean."""
    model = golden.Model.random("lstm", "ternary", 40, 4, output_size=3, seed=2,
                                nonlinearity=golden.Nonlinearity("exact"))
    kw = {"unrolled": True} if lanes == "u" else {"lanes": lanes}
    v, top, waiver, _ = verilog(hw.generate(model, out_dir=tmp_path / "d", **kw))
    text = v.read_text()
    tables = re.findall(r"reg \[(\d+):0\] \S+ +\[(\d+):0\];", text)
    assert sum(depth == "1023" for _, depth in tables) == 5 * (2 if lanes == 2 else 4)
    assert not re.search(r"'b[01?]{64}", text), "a one-hot case pattern as wide as a table"
    assert len(text) < 1_000_000
    assert lint(v, top, waiver=waiver) == []

@pytest.mark.slow
@pytest.mark.parametrize("lanes", [3, "u"])
@pytest.mark.parametrize("method", golden.METHODS)
@pytest.mark.parametrize("cell", list(golden.CELLS))
def test_no_multipliers_generic(tmp_path, cell, method, lanes):
    v, top, _, _ = verilog(make(tmp_path, cell, method, lanes, inp=3, hid=4))
    r = synthesize(v, top, "generic")
    assert r.mul_cells == (), r.mul_cells


@pytest.mark.slow
@pytest.mark.parametrize("cell,target", [("rnn", "ice40"), ("gru", "ice40"), ("lstm", "ice40"),
                                         ("gru", "xilinx7")])
def test_no_dsp_on_fpga_targets(tmp_path, cell, target):
    """Zero DSPs with DSP inference on (xilinx7 only for the GRU: it is the slowest flow)."""
    v, top, _, _ = verilog(make(tmp_path, cell, "ternary", 2, inp=3, hid=3))
    r = synthesize(v, top, target)
    assert r.dsp == 0 and r.mul_cells == (), (target, r.dsp, r.mul_cells)


@pytest.mark.slow
def test_mult_baseline_uses_dsps(tmp_path):
    """Positive control: the same architecture with ``*`` maps onto DSP blocks."""
    v, top, _, _ = verilog(make(tmp_path, "gru", "pow2-ternary", 2, inp=3, hid=3,
                                datapath="mult"))
    for target in ("ice40", "xilinx7"):
        r = synthesize(v, top, target)
        assert r.dsp > 0 and r.mul_cells, (target, r.dsp)


def test_generate_refuses_overwrite_and_is_atomic(tmp_path):
    model = golden.Model.random("gru", "ternary", 4, 5, seed=1)
    d = hw.generate(model, out_dir=tmp_path / "d", lanes=2)
    before = (d / "d.v").read_text()
    with pytest.raises(FileExistsError):
        hw.generate(model, out_dir=d, lanes=1)
    assert (d / "d.v").read_text() == before
    hw.generate(model, out_dir=d, lanes=1, force=True)
    assert json.loads((d / "manifest.json").read_text())["config"]["lanes"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"], "no temporary folders left"


def test_cli_generate(tmp_path, capsys):
    mfile = tmp_path / "m.npz"
    golden.Model.random("lstm", "exponential", 4, 6, output_size=2, seed=1).save(mfile)
    out = tmp_path / "rtl" / "lstm1"
    assert main(["generate", str(mfile), "--lanes", "2", "--out", str(out)]) == 0
    assert "cycles/timestep" in capsys.readouterr().out
    man = json.loads((out / "manifest.json").read_text())
    assert man["cycles_per_timestep"] == hw.timing(golden.load(mfile), lanes=2,
                                                   unrolled=False).cycles_per_timestep
    assert golden.load(out / "model.npz").hash() == man["model_hash"]
    assert main(["generate", str(mfile), "--lanes", "2", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["generate", str(mfile), "--lanes", "2", "--no-skip", "--out",
                 str(tmp_path / "dense")]) == 0
    dense = Manifest.read(tmp_path / "dense")
    # exponential weights have no zeros: the default builds every phase dense as well
    assert not dense.config.skip_zeros and not man["config"]["skip_zeros"]
    assert dense.cycle_formula == man["cycle_formula"]
    assert "columns (layer0, head)" in dense.cycle_formula
    assert dense.cycles_per_timestep == hw.timing(golden.load(mfile), lanes=2, unrolled=False,
                                                  skip=False).cycles_per_timestep
    assert main(["generate", str(mfile), "--lanes", "9", "--out", str(tmp_path / "x")]) == 2
    assert "1..6" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "nope.npz"), "--unrolled", "--out",
                 str(tmp_path / "y")]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
