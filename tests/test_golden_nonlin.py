"""Integer nonlinearities against their float twins, on every input of a format."""

from __future__ import annotations

import numpy as np
import pytest

from golden import Fixed, Nonlinearity
from golden.nonlin import LUT_RANGE

PRE = Fixed(12, 8)
OUTS = {"sigmoid": Fixed(8, 7, signed=False), "tanh": Fixed(8, 6)}


def all_codes(fmt: Fixed) -> np.ndarray:
    return np.arange(fmt.min_int, fmt.max_int + 1, dtype=np.int64)


def clip_unit(v: np.ndarray, fn: str, fout: Fixed) -> np.ndarray:
    lo = 0 if fn == "sigmoid" else -fout.one
    return np.clip(v, max(lo, fout.min_int), min(fout.one, fout.max_int))


@pytest.mark.parametrize("kind", ["hard", "plan"])
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
@pytest.mark.parametrize("fin", [PRE, Fixed(10, 3), Fixed(6, 0)])
def test_piecewise_linear_int_is_rounded_float_twin(kind, fn, fin):
    # hard and plan are exact in integers and rounded once: the float twin, rounded half up
    nl = Nonlinearity(kind)
    x = all_codes(fin)
    fout = OUTS[fn]
    got = nl.int_fn(fn, x, fin, fout)
    want = clip_unit(fout.from_float(nl.float_fn(fn, fin.to_float(x))), fn, fout)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_hard_sigmoid_negative_input_frac(fn):
    # inputs that are multiples of 2 (frac -1): the +1/2 offset must not be lost
    fin = Fixed(6, -1)
    x = all_codes(fin)
    nl = Nonlinearity("hard")
    want = clip_unit(OUTS[fn].from_float(nl.float_fn(fn, fin.to_float(x))), fn, OUTS[fn])
    assert np.array_equal(nl.int_fn(fn, x, fin, OUTS[fn]), want)


@pytest.mark.parametrize("kind,bits", [("lut", 6), ("lut", 3), ("exact", 10)])
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_lut_index_and_table_match_float_twin(kind, bits, fn):
    nl = Nonlinearity(kind, lut_bits=bits)
    fin = PRE
    x = all_codes(fin)
    xr = fin.to_float(x)
    idx = nl.lut_index_int(fn, x, fin)
    assert np.array_equal(idx, nl.lut_index_float(fn, xr))
    assert idx.min() == 0 and idx.max() == (1 << nl.int_lut_bits) - 1
    fout = OUTS[fn]
    table = nl.lut_table_int(fn, fout)
    assert np.array_equal(table, clip_unit(fout.from_float(nl.lut_table_float(fn)), fn, fout))
    assert np.array_equal(nl.int_fn(fn, x, fin, fout), table[idx])
    # the integer path's float twin is the same table
    assert np.array_equal(nl.float_fn(fn, xr, integer_twin=True), nl.lut_table_float(fn)[idx])
    # the table is the true function at bin centres: close to it across the range
    R = LUT_RANGE[fn]
    inside = np.abs(xr) < R
    true = 1 / (1 + np.exp(-xr)) if fn == "sigmoid" else np.tanh(xr)
    step = 2 * R / (1 << nl.int_lut_bits)
    assert np.abs(fout.to_float(table[idx]) - true)[inside].max() <= step / 2 + 2.0**-fout.frac


def test_lut_table_copy_is_writable_and_cache_is_not():
    nl = Nonlinearity("lut")
    t = nl.lut_table_int("tanh", OUTS["tanh"])
    t[:] = 0  # the public copy is the caller's
    assert nl.lut_table_int("tanh", OUTS["tanh"]).any()


def test_exact_float_path_is_true_function():
    nl = Nonlinearity("exact")
    x = np.linspace(-6, 6, 101)
    assert np.allclose(nl.float_fn("sigmoid", x), 1 / (1 + np.exp(-x)), atol=0, rtol=1e-15)
    assert np.allclose(nl.float_fn("tanh", x), np.tanh(x), atol=0, rtol=1e-15)
    assert nl.int_kind == "lut" and "1024-entry LUT" in nl.describe()


def test_outputs_stay_in_unit_range():
    for kind in ("hard", "plan", "lut"):
        nl = Nonlinearity(kind)
        x = all_codes(PRE)
        s = nl.int_fn("sigmoid", x, PRE, OUTS["sigmoid"])
        t = nl.int_fn("tanh", x, PRE, OUTS["tanh"])
        assert s.min() >= 0 and s.max() <= OUTS["sigmoid"].one
        assert t.min() >= -OUTS["tanh"].one and t.max() <= OUTS["tanh"].one
        if kind != "plan":  # PLAN's published breakpoint 2.375 (lines meet at 7/3) dips once
            assert (np.diff(s) >= 0).all() and (np.diff(t) >= 0).all()  # monotone


def test_nonlinearity_validation():
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        Nonlinearity("relu")
    with pytest.raises(ValueError, match="lut_bits"):
        Nonlinearity("lut", lut_bits=1)
