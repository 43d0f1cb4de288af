"""The cocotb bench on Icarus Verilog: a second simulator, 4-state, two language modes.

Every generated design is plain Verilog-2005 and must behave the same under ``iverilog -g2005``
and under SystemVerilog rules (``-g2012``, the default of cocotb's Icarus runner); the bench also
requires every port to be 0 or 1 (never X or Z) in every cycle after reset deasserts, which only a
4-state simulator can see. Skipped, with the fix in one line, where Icarus is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import golden
import hw
import sim
from sim.waves import icarus_dump_module

try:
    sim.find_icarus()
except sim.ToolchainError as e:
    pytest.skip(str(e), allow_module_level=True)

FIXTURE = Path(__file__).parent / "data" / "sim" / "runsum"

#: name -> (cell, method, input kind, head outputs, layers, lanes or None for unrolled)
DESIGNS = {
    "gru_token_folded": ("gru", "ternary", "token", 5, 1, 2),
    "lstm_vector_folded": ("lstm", "pow2-ternary", "vector", 3, 1, 3),
    "gru_token_unrolled": ("gru", "exponential", "token", None, 2, None),
}

@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("icarus")
    out = {}
    for i, (name, (cell, method, kind, head, layers, lanes)) in enumerate(DESIGNS.items()):
        m = golden.Model.random(cell, method, 5, 7, output_size=head, layers=layers,
                                input_kind=kind, seed=40 + i)
        out[name] = hw.generate(m, out_dir=root / name, lanes=lanes, unrolled=lanes is None,
                                force=True)
    return out


def copy_fixture(dst: Path) -> Path:
    d = dst / "runsum"
    d.mkdir()
    for f in FIXTURE.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    return d


def check_clean_pass(res: sim.VerifyResult, design: Path) -> None:
    assert res.passed, res.summary()
    manifest = sim.Design(design).manifest
    assert res.cycles_per_timestep == manifest.cycles_per_timestep
    assert res.latency == manifest.latency
    for name, rep in res.tests.items():
        assert rep["protocol_problems"] == [], (name, rep["protocol_problems"])
    assert res.simulator == "icarus"


@pytest.mark.parametrize("standard", ["2005", "2012"])
@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_generated_design_on_icarus(designs, tmp_path, name, standard):
    d = designs[name]
    res = sim.verify(d, sequences=4, length=8, seed=11, simulator="icarus", standard=standard,
                     work_dir=tmp_path / "run")
    check_clean_pass(res, d)
    assert f"icarus -g{standard}" in res.summary()


@pytest.mark.parametrize("standard", ["2005", "2012"])
def test_fixture_on_icarus_both_modes(tmp_path, standard):
    """The hand-written fixture drives its ports from flip-flops: clean in both modes."""
    d = copy_fixture(tmp_path)
    res = sim.verify(d, sequences=5, length=10, seed=2, simulator="icarus", standard=standard,
                     work_dir=tmp_path / "run")
    check_clean_pass(res, d)
    assert res.tests["reset"]["reset_log"][-1] == {"rst": 0, "s_axis_tready": 1,
                                                    "m_axis_tvalid": 0}


def test_x_on_a_port_after_reset_fails(tmp_path):
    d = copy_fixture(tmp_path)
    v = d / "runsum.v"
    text = v.read_text()
    old = "            m_axis_tuser <= 1'b0;\n"
    assert text.count(old) == 1
    v.write_text(text.replace(old, "            m_axis_tuser <= 1'bx;\n"))
    res = sim.verify(d, sequences=3, length=6, seed=0, simulator="icarus",
                     work_dir=tmp_path / "run")
    assert not res.passed
    assert "m_axis_tuser is X/Z (X) in cycle" in res.message, res.message


def test_language_mode_is_applied(tmp_path):
    """-g2005 really is Verilog-2005: a SystemVerilog cast does not compile."""
    d = copy_fixture(tmp_path)
    v = d / "runsum.v"
    v.write_text(v.read_text().replace("cnt <= CNT0;", "cnt <= CW'(CPT - 2);"))
    res = sim.verify(d, sequences=2, length=4, seed=0, simulator="icarus", standard="2012",
                     tests=("timing",), work_dir=tmp_path / "a")
    assert res.passed, res.summary()
    with pytest.raises(sim.build.BuildError, match="Size cast requires SystemVerilog"):
        sim.verify(d, simulator="icarus", standard="2005", work_dir=tmp_path / "b")


def test_icarus_waves_fst(designs, tmp_path):
    d = designs["gru_token_folded"]
    design = sim.Design(d)
    dump = icarus_dump_module(design.verilog, design.top, "debug", "w.fst")
    assert f"$dumpvars(1, {design.top});" in dump
    assert f"$dumpvars(0, {design.top}.core.mac0.issuing);" in dump
    assert f"$dumpvars(0, {design.top}.core.bank0.h__v__6);" in dump and "sums__" not in dump
    sizes = {}
    for mode in ("debug", "full"):
        res = sim.verify(d, sequences=2, length=4, seed=0, simulator="icarus", waves=mode,
                         tests=("timing",), work_dir=tmp_path / mode,
                         waves_path=tmp_path / f"{mode}.fst")
        assert res.passed, res.summary()
        assert res.waves == tmp_path / f"{mode}.fst"
        sizes[mode] = res.waves.stat().st_size
    assert 0 < sizes["debug"] < sizes["full"]


def test_argument_errors(designs):
    d = designs["gru_token_folded"]
    with pytest.raises(ValueError, match="standard applies to simulator='icarus' only"):
        sim.verify(d, standard="2012")
    with pytest.raises(ValueError, match="standard must be one of 2005, 2012"):
        sim.verify(d, simulator="icarus", standard="1995")
    with pytest.raises(ValueError, match="simulator must be one of verilator, icarus"):
        sim.verify(d, simulator="xcelium")
