"""Every hardware block against its golden twin, in Amaranth's simulator, exactly."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

import golden
from golden import Fixed, Nonlinearity
from hw import ConstMultiplier, GateMultiplier, Narrower, NonlinUnit, TermUnit
from hw.codes import MatrixCodes


def comb_eval(dut, inputs: dict[str, list[int]], output: str = "o") -> np.ndarray:
    """Apply each input vector to a combinational block and read ``output``."""
    n = len(next(iter(inputs.values())))
    got = []

    async def bench(ctx):
        for k in range(n):
            for name, vals in inputs.items():
                ctx.set(getattr(dut, name), int(vals[k]))
            got.append(ctx.get(getattr(dut, output)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.int64)


def edge_and_random(lo: int, hi: int, n: int, rng) -> np.ndarray:
    edges = [lo, lo + 1, -1, 0, 1, hi - 1, hi]
    return np.array([v for v in edges if lo <= v <= hi] + list(rng.integers(lo, hi + 1, n)))


@pytest.mark.parametrize(
    "in_width,from_frac,fmt",
    [(16, 8, Fixed(8, 6)), (12, 3, Fixed(6, 1)), (10, 2, Fixed(8, 4)), (14, 9, Fixed(8, 7, False))],
)
def test_narrower_matches_golden(in_width, from_frac, fmt):
    rng = np.random.default_rng(11)
    lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    x = edge_and_random(lo, hi, 150, rng)
    k = from_frac - fmt.frac
    if k > 0:  # every tie at the rounding point, both signs
        x = np.concatenate([x, (np.arange(-8, 8) << k) + (1 << (k - 1))])
        x = x[(x >= lo) & (x <= hi)]
    got = comb_eval(Narrower(in_width=in_width, from_frac=from_frac, fmt=fmt), {"i": x})
    assert np.array_equal(got, golden.narrow(x, from_frac, fmt))


@pytest.mark.parametrize("constant", [1, 3, -5, 7, 23, 45, -128, 1000])
def test_const_multiplier_matches_golden(constant):
    rng = np.random.default_rng(12)
    x = edge_and_random(-(1 << 11), (1 << 11) - 1, 80, rng)
    got = comb_eval(ConstMultiplier(in_width=12, constant=constant), {"i": x})
    assert np.array_equal(got, x * constant)


@pytest.mark.parametrize("wa,wb", [(8, 8), (12, 7), (5, 3)])
def test_gate_multiplier_matches_golden(wa, wb):
    rng = np.random.default_rng(13)
    a = edge_and_random(-(1 << (wa - 1)), (1 << (wa - 1)) - 1, 120, rng)
    b = np.concatenate([[0, 1, (1 << wb) - 1, 1 << (wb - 1)],
                        rng.integers(0, 1 << wb, a.size - 4)])
    got = comb_eval(GateMultiplier(a_width=wa, b_width=wb), {"a": a, "b": b})
    assert np.array_equal(got, a * b)


@pytest.mark.parametrize("kind", ["hard", "plan", "lut", "exact"])
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
@pytest.mark.parametrize("fin", [Fixed(12, 8), Fixed(10, 5)])
def test_nonlinearity_matches_golden(kind, fn, fin):
    nl = Nonlinearity(kind)
    fout = Fixed(8, 7, False) if fn == "sigmoid" else Fixed(8, 6)
    x = np.arange(fin.min_int, fin.max_int + 1, max(1, (1 << fin.bits) // 512))
    x = np.concatenate([x, [fin.min_int, fin.max_int, 0, -1, 1]])
    got = comb_eval(NonlinUnit(nonlin=nl, fn=fn, fin=fin, fout=fout), {"i": x})
    assert np.array_equal(got, nl.int_fn(fn, x, fin, fout))


@pytest.mark.parametrize("method,params", [
    ("binary", {}), ("ternary", {}), ("pow2-ternary", {"i": 1, "f": 2}),
    ("exponential", {"kmin": -6, "kmax": 0}),
])
@pytest.mark.parametrize("use_mul", [False, True])
def test_weighted_sum_term_matches_golden(method, params, use_mul):
    rng = np.random.default_rng(14)
    q = golden.encode(rng.normal(0, 0.5, (6, 40)), method, params=params)
    vfmt = Fixed(8, 5)
    mc = MatrixCodes(q, vfmt, use_mul=use_mul)
    codes = q.codes.ravel()
    v = edge_and_random(vfmt.min_int, vfmt.max_int, codes.size - 7, rng)[: codes.size]
    got = comb_eval(TermUnit(matrix=q, vfmt=vfmt, use_mul=use_mul),
                    {"word": [mc.word(c) for c in codes], "v": v})
    assert np.array_equal(got, codes * v)


def test_block_parameters_are_validated():
    with pytest.raises(ValueError, match="in_width"):
        Narrower(in_width=0, from_frac=0, fmt=Fixed(8, 0))
    with pytest.raises(ValueError, match="constant"):
        ConstMultiplier(in_width=8, constant=0)
    with pytest.raises(ValueError, match="fn"):
        NonlinUnit(nonlin=Nonlinearity("hard"), fn="relu", fin=Fixed(8, 4), fout=Fixed(8, 6))
    with pytest.raises(TypeError, match="Fixed"):
        Narrower(in_width=8, from_frac=0, fmt=(8, 4))
