"""Zero skipping and the cycle model: hw.timing against the weights and against simulation.

The cycle count of a folded design is a function of its weights; these tests build weights with
known zero patterns (random sparsity, an all-zero row, an all-zero matrix, every nonzero in one
lane), check the plan against a count made here from the codes, and measure the cycles in
Amaranth's simulator (and, marked slow, on Verilator through the cocotb bench and the fast path).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import golden
import hw
import sim
from hw.pysim import run_pysim
from hw.timing import HEAD_STAGES, MAC_DEPTH, cell_stages, plan_phases


def with_codes(model: golden.Model, *, w_hh=None, w_ih=None, head=None) -> golden.Model:
    """The model with some code matrices replaced (scales and biases kept)."""
    lay = model.layers[0]
    lay = dataclasses.replace(
        lay, w_hh=lay.w_hh if w_hh is None else dataclasses.replace(lay.w_hh, codes=w_hh),
        w_ih=lay.w_ih if w_ih is None else dataclasses.replace(lay.w_ih, codes=w_ih))
    hd = model.head
    if head is not None:
        hd = dataclasses.replace(hd, w=dataclasses.replace(hd.w, codes=head))
    return dataclasses.replace(model, layers=[lay, *model.layers[1:]], head=hd)


def sparse(rng, shape, p_zero: float) -> np.ndarray:
    """Ternary codes with the given fraction of zeros."""
    return np.where(rng.random(shape) < p_zero, 0, rng.choice([-1, 1], shape)).astype(np.int64)


def base(cell="gru", kind="token", hidden=7, out=5, layers=1, seed=1):
    return golden.Model.random(cell, "ternary", 6, hidden, output_size=out, input_kind=kind,
                               layers=layers, seed=seed)


def expected_cycles(model, lanes):
    """The documented formula, counted here from the codes: per phase, the sum over groups of
    the largest number of nonzero entries of one lane slot (at least 1), plus the pipeline."""
    total = 1
    for plan in plan_phases(model, lanes=lanes, unrolled=False):
        is_head = plan.name == "head"
        if is_head:
            mats = [model.head.w.codes]
        else:
            lay = model.layers[int(plan.name[5:])]
            mats = [lay.w_hh.codes] if model.input_kind == "token" and plan.name == "layer0" \
                else [lay.w_ih.codes, lay.w_hh.codes]
        steps = 0
        for grp in plan.groups:
            rows = [r for g in range(plan.gates) for k in grp if k is not None
                    for r in [g * plan.hidden + k if not is_head else k]]
            steps += max([1] + [sum(int(np.count_nonzero(m[r])) for m in mats) for r in rows])
        stages = len(HEAD_STAGES if is_head else cell_stages(model))
        total += steps + MAC_DEPTH + stages - 1
    return total


def check(model, lanes, *, skip=True, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, model.input_size, (2, 4)) if model.input_kind == "token" else
         model.formats["x"].from_float(rng.normal(0, 1.5, (2, 4, model.input_size))))
    got, accepted, _ = run_pysim(model, x, lanes=lanes, skip=skip)
    assert np.array_equal(got, model.run_int(x).output_int)
    cpt = hw.timing(model, lanes=lanes, unrolled=False, skip=skip).cycles_per_timestep
    assert set(np.diff(accepted).tolist()) == {cpt}
    return cpt


@pytest.mark.parametrize("p_zero", [0.2, 0.6, 0.95])
@pytest.mark.parametrize("cell,kind", [("gru", "token"), ("lstm", "vector"), ("rnn", "vector")])
def test_random_sparsity(cell, kind, p_zero):
    rng = np.random.default_rng(int(p_zero * 100))
    m = base(cell, kind)
    G, H = m.gates * m.hidden_size, m.hidden_size
    m = with_codes(m, w_hh=sparse(rng, (G, H), p_zero), head=sparse(rng, (5, H), p_zero),
                   w_ih=sparse(rng, (G, m.input_size), p_zero))
    cpt = check(m, 2)
    assert cpt == expected_cycles(m, 2)


def test_all_zero_row_and_all_zero_matrix():
    rng = np.random.default_rng(3)
    m = base()
    w = sparse(rng, (21, 7), 0.4)
    w[[2, 9, 16]] = 0  # unit 2: every gate row zero
    head = sparse(rng, (5, 7), 0.4)
    head[4] = 0
    m1 = with_codes(m, w_hh=w, head=head)
    assert check(m1, 3) == expected_cycles(m1, 3)
    m0 = with_codes(m, w_hh=np.zeros((21, 7), np.int64), head=np.zeros((5, 7), np.int64))
    cpt = check(m0, 3)
    # every group takes one step (no entries): groups + pipeline only
    plans = plan_phases(m0, lanes=3, unrolled=False)
    assert all(set(p.steps) == {1} for p in plans)
    assert cpt == expected_cycles(m0, 3)


def test_one_lane_holds_every_nonzero():
    """Unit 4 alone has nonzeros: the plan puts it first, every other group costs one step."""
    m = base(hidden=8)
    w = np.zeros((24, 8), np.int64)
    w[[4, 12, 20]] = 1
    m = with_codes(m, w_hh=w)
    plan = plan_phases(m, lanes=2, unrolled=False)[0]
    assert 4 in plan.groups[0]
    assert plan.steps == (8, 1, 1, 1)
    assert check(m, 2) == expected_cycles(m, 2)


def test_skipping_against_dense():
    """The same weights, dense: every group streams every column; results are equal."""
    m = base("gru", "vector", layers=2, out=None)
    dense = check(m, 3, skip=False)
    H, cols = m.hidden_size, m.input_size + m.hidden_size
    groups = math.ceil(H / 3)
    stages = len(cell_stages(m))
    assert dense == 1 + (groups * cols + MAC_DEPTH + stages - 1) + (
        groups * 2 * H + MAC_DEPTH + stages - 1)
    assert check(m, 3) < dense


def test_phase_without_zeros_stays_dense():
    """A phase whose zeros would save no step keeps the dense codes (same cycles, no column
    index); the other phases still skip. The design stays exact."""
    rng = np.random.default_rng(5)
    m = base()
    full_head = rng.choice([-1, 1], (5, 7)).astype(np.int64)
    m = with_codes(m, w_hh=sparse(rng, (21, 7), 0.6), head=full_head)
    plans = plan_phases(m, lanes=3, unrolled=False)
    assert [p.skip for p in plans] == [True, False]
    assert check(m, 3) == expected_cycles(m, 3)
    expo = golden.Model.random("lstm", "exponential", 4, 6, output_size=3, seed=2)
    assert not any(p.skip for p in plan_phases(expo, lanes=2, unrolled=False))
    assert hw.timing(expo, lanes=2, unrolled=False).cycles_per_timestep == hw.timing(
        expo, lanes=2, unrolled=False, skip=False).cycles_per_timestep
    assert check(expo, 2) == expected_cycles(expo, 2)


def test_balanced_groups():
    """Units sorted by cost and cut into groups: the sum of group maxima is minimal."""
    m = base(hidden=6)
    w = np.zeros((18, 6), np.int64)
    for k, n in enumerate([1, 5, 2, 6, 3, 4]):  # unit k has n nonzeros in its first gate row
        w[k, :n] = 1
    plan = plan_phases(with_codes(m, w_hh=w), lanes=2, unrolled=False)[0]
    assert plan.groups == ((3, 1), (5, 4), (2, 0))
    assert plan.steps == (6, 4, 2)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["sparse", "zero_rows", "one_lane"])
def test_cycles_on_verilator(tmp_path, case):
    """The cocotb bench (gaps, backpressure, exact cycles) and the fast path measure the
    manifest's cycle count on weights with skipped zeros."""
    rng = np.random.default_rng(11)
    m = base("gru", "token", hidden=8)
    w = sparse(rng, (24, 8), 0.5)
    if case == "zero_rows":
        w[[1, 9, 17]] = 0
    if case == "one_lane":
        w[:] = 0
        w[[5, 13, 21]] = rng.choice([-1, 1], (3, 8))
    m = with_codes(m, w_hh=w, head=sparse(rng, (5, 8), 0.5))
    d = hw.generate(m, out_dir=tmp_path / case, lanes=3)
    design = sim.Design(d)
    assert design.cycles_per_timestep == expected_cycles(m, 3)
    res = sim.verify(d, sequences=3, length=6, seed=5, work_dir=tmp_path / "run")
    assert res.passed, res.summary()
    assert res.cycles_per_timestep == design.cycles_per_timestep
    fast = sim.simulate(design, np.stack([design.random_inputs(rng, 9) for _ in range(3)]))
    assert fast.golden_equal and fast.timing_ok, fast.message


def test_unrolled_tree_depth_and_registers():
    """Positive and negative CSD terms in two balanced trees, then one subtraction."""
    from hw.timing import tree_depth, tree_registers

    assert tree_depth(np.array([[1, 1, 1, 1, 1]])) == 3  # five terms
    assert tree_depth(np.array([[1, 1, 1, 1, -1, -1, -1, -1]])) == 3  # 2 + the subtraction
    assert tree_depth(np.array([[-1, 0, 0]])) == 1  # a negation
    assert tree_depth(np.zeros((2, 3), np.int64)) == 0
    assert tree_depth(np.array([[3, 3]])) == 2  # 3 = 4 - 1: two positive, two negative digits
    assert tree_depth(np.array([[3, 3]]), use_mul=True) == 1  # one product per weight
    assert [tree_registers(d) for d in (0, 1, 2, 3, 4, 5)] == [1, 1, 1, 2, 2, 3]
    m = golden.Model.random("gru", "ternary", 6, 16, output_size=4, seed=2)
    t = hw.timing(m, lanes=None, unrolled=True)
    depth = tree_depth(m.layers[0].w_hh.codes)
    assert t.phases["layer0"] == tree_registers(depth) + len(cell_stages(m))
