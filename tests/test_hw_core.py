"""The generated datapath against golden in Amaranth's simulator: every cell, method, input kind,
nonlinearity and datapath, folded and unrolled, bit-exact, with the cycle formula checked."""

from __future__ import annotations

import numpy as np
import pytest

import golden
import hw
import hw.state
from hw.pysim import run_pysim
from hw.timing import HEAD_STAGES, MAC_DEPTH, cell_stages

LANES = [{"lanes": 1}, {"lanes": 3}, {"unrolled": True}]


def odd_model(cell, method, kind, **kw):
    """Odd sizes (input 5, hidden 7, output 3): partial lane groups, non-power-of-two rows."""
    return golden.Model.random(cell, method, 5, 7, output_size=3 if kind == "token" else None,
                               layers=1 if kind == "token" else 2, input_kind=kind, seed=3, **kw)


def stimulus(model, batch, time, seed):
    rng = np.random.default_rng(seed)
    if model.input_kind == "token":
        return rng.integers(0, model.input_size, (batch, time))
    return model.formats["x"].from_float(rng.normal(0, 1.5, (batch, time, model.input_size)))


def check(model, x, **kw):
    got, accepted, _ = run_pysim(model, x, **kw)
    ref = model.run_int(x).output_int
    bad = np.argwhere(got != ref)
    assert bad.size == 0, (f"{len(bad)} mismatches, first at {bad[0].tolist()}: "
                           f"hw {got[tuple(bad[0])]} golden {ref[tuple(bad[0])]}")
    cpt = hw.timing(model, lanes=kw.get("lanes"), unrolled=kw.get("unrolled", False))
    assert set(np.diff(accepted).tolist()) == {cpt.cycles_per_timestep}


@pytest.mark.parametrize("kw", LANES, ids=["lanes1", "lanes3", "unrolled"])
@pytest.mark.parametrize("kind", ["token", "vector"])
@pytest.mark.parametrize("method", golden.METHODS)
@pytest.mark.parametrize("cell", list(golden.CELLS))
def test_core_matches_golden(cell, method, kind, kw):
    model = odd_model(cell, method, kind)
    check(model, stimulus(model, 2, 4, seed=7), **kw)


@pytest.mark.parametrize("datapath", hw.DATAPATHS)
@pytest.mark.parametrize("kind", ["plan", "lut", "exact"])
@pytest.mark.parametrize("cell", list(golden.CELLS))
def test_nonlinearities_and_datapaths(cell, kind, datapath):
    model = golden.Model.random(
        cell, "pow2-ternary", 4, 5, output_size=3, layers=2, input_kind="vector", seed=5,
        nonlinearity=golden.Nonlinearity(kind), method_params={"i": 1, "f": 2},
        bias_mode="fixed" if datapath == "mult" else "quantized")
    x = stimulus(model, 3, 5, seed=8)
    check(model, x, lanes=2, datapath=datapath)
    check(model, x, unrolled=True, datapath=datapath)


def test_saturating_inputs_and_state_reset():
    """Inputs pinned at the format's extremes; every sequence restarts from zero state."""
    model = odd_model("lstm", "exponential", "vector")
    fx = model.formats["x"]
    x = np.where(np.random.default_rng(9).random((3, 6, 5)) < 0.5, fx.min_int, fx.max_int)
    check(model, x, lanes=4)


@pytest.mark.parametrize("lanes", [1, 3])
@pytest.mark.parametrize("kind", ["token", "vector"])
@pytest.mark.parametrize("cell", list(golden.CELLS))
def test_ram_read_ports(monkeypatch, cell, kind, lanes):
    """Every bank a phase writes read through RAM copies (hw.state.RamSelect, used from
    RAM_READS_FROM on): same results and cycles, sequences restarting from zero state."""
    monkeypatch.setattr(hw.state, "RAM_READS_FROM", 0)
    model = odd_model(cell, "ternary", kind)
    check(model, stimulus(model, 2, 4, seed=7), lanes=lanes)


def test_head_with_more_groups_than_the_layer():
    """The group counter also counts the folded head's groups (here 9 > the layer's 4)."""
    model = golden.Model.random("rnn", "ternary", 6, 4, output_size=9, seed=4)
    check(model, stimulus(model, 2, 3, seed=10), lanes=1)


def test_timing_formula_examples():
    m = odd_model("gru", "ternary", "token")
    dense = hw.timing(m, lanes=3, unrolled=False, skip=False)
    stages, head = len(cell_stages(m)), len(HEAD_STAGES)
    # accept + layer: ceil(7/3) groups of 7 columns + pipeline; head: one group of 7 columns
    assert dense.cycles_per_timestep == (1 + (3 * 7 + MAC_DEPTH + stages - 1)
                                         + (7 + MAC_DEPTH + head - 1))
    assert hw.timing(m, lanes=3, unrolled=False).cycles_per_timestep < dense.cycles_per_timestep
    # unrolled: the largest row has at most 7 terms (3 adder levels: two registers)
    assert hw.timing(m, lanes=None, unrolled=True).cycles_per_timestep == (
        1 + (2 + stages) + (2 + head))


def test_lanes_are_validated():
    m = odd_model("rnn", "binary", "token")
    with pytest.raises(ValueError, match="lanes must be"):
        hw.RecurrentCore(model=m, lanes=8)
    with pytest.raises(ValueError, match="datapath"):
        hw.RecurrentCore(model=m, lanes=2, datapath="dsp")
