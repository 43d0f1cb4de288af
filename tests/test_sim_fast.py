"""The fast path's switching-activity counts against an independent cycle model.

The hand-written ``runsum`` fixture (``tests/data/sim/runsum/runsum.v``, three cycles per
timestep) is small enough to model cycle by cycle in Python: its registers, the harness's
stimulus (every beat presented as soon as the previous one is taken, the sink always ready) and
the sampling rule (values before each rising edge, cycle 0 the baseline). The harness's toggle
totals per group must equal the model's exactly, whole and split into shards.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import sim

FIXTURE = Path(__file__).parent / "data" / "sim" / "runsum"
CPT = 3  # the fixture's cycles per timestep (parameter CPT)


def _step(h: int, x: int) -> int:
    """One 8-bit lane of runsum's h' = clip(h + x, -64, 64), two's complement."""
    s = (h - 256 if h >= 128 else h) + (x - 256 if x >= 128 else x)
    return min(max(s, -64), 64) & 0xFF


def _h_next(h: int, x: int) -> int:
    return sum(_step((h >> k) & 0xFF, (x >> k) & 0xFF) << k for k in (0, 8, 16))


def runsum_toggles(data: np.ndarray, flags: np.ndarray) -> tuple[dict, int]:
    """Toggle totals per group and total cycles of the harness's run, from a cycle model."""
    n = len(data)
    r = dict(busy=0, cnt=0, x=0, first=0, last=0, h=0, mv=0, md=0, mu=0, ml=0)
    taken, outputs, cycle = 0, 0, 0
    cur = (int(data[0]), int(flags[0]) & 1, int(flags[0]) >> 1 & 1)
    prev, toggles = None, {}
    while outputs < n:
        valid = int(taken < n)
        if valid:
            cur = (int(data[taken]), int(flags[taken]) & 1, int(flags[taken]) >> 1 & 1)
        sample = {
            "port.s_axis_tdata": [cur[0]],
            "port.m_axis_tdata": [r["md"]],
            "port.control": [0, valid, 1 - r["busy"], cur[1], cur[2], r["mv"], 1, r["mu"],
                             r["ml"]],
            "state.top": [r["busy"], r["cnt"], r["x"], r["first"], r["last"], r["h"]],
        }
        if prev is not None:
            for g, values in sample.items():
                toggles[g] = toggles.get(g, 0) + sum(
                    (a ^ b).bit_count() for a, b in zip(values, prev[g], strict=True))
        prev = sample
        outputs += r["mv"]
        nxt = dict(r, mv=0) if r["mv"] else dict(r)  # the rising edge (m_axis_tready high)
        if valid and not r["busy"]:
            nxt.update(busy=1, cnt=CPT - 2, x=cur[0], first=cur[1], last=cur[2])
            taken += 1
        elif r["busy"] and r["cnt"]:
            nxt["cnt"] = r["cnt"] - 1
        elif r["busy"]:
            h = _h_next(0 if r["first"] else r["h"], r["x"])
            nxt.update(busy=0, h=h, md=h, mv=1, mu=r["first"], ml=r["last"])
        r = nxt
        cycle += 1
    return toggles, cycle


@pytest.fixture(scope="module")
def runsum(tmp_path_factory) -> sim.Design:
    return sim.Design(shutil.copytree(FIXTURE, tmp_path_factory.mktemp("fast") / "runsum"))


def _stream(design: sim.Design, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    B, T = x.shape[:2]
    words = design.s_port.pack_words(x.reshape(B * T, -1))[:, 0]
    t = np.tile(np.arange(T), B)
    return words, (t == 0).astype(int) | ((t == T - 1).astype(int) << 1)


def test_toggles_equal_a_cycle_model(runsum):
    rng = np.random.default_rng(11)
    x = np.stack([runsum.random_inputs(rng, 9) for _ in range(6)])
    res = sim.simulate(runsum, x)
    assert res.golden_equal and res.timing_ok, res.message
    assert res.toggle_bits == {"port.s_axis_tdata": 24, "port.m_axis_tdata": 24,
                               "port.control": 9, "state.top": 53,
                               "state_bits_declared": 77}
    want, cycles = runsum_toggles(*_stream(runsum, x))
    assert res.cycles == cycles
    assert res.toggles == want
    assert all(v > 0 for v in want.values())


def test_shard_toggles_equal_the_cycle_model(runsum):
    """Four shards (each warmed up with the sequence before it) sum to the model's totals."""
    rng = np.random.default_rng(12)
    x = np.stack([runsum.random_inputs(rng, 8) for _ in range(80)])  # 2 shards per worker
    res = sim.simulate(runsum, x, workers=2)
    assert res.shards == 4 and res.toggles_exact, res.message
    assert res.toggles == runsum_toggles(*_stream(runsum, x))[0]
