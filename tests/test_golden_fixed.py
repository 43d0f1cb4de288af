"""Fixed-point formats and the one narrowing rule (DESIGN.md s2): round half up, saturate."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from golden import Fixed, bits_signed, bits_unsigned, narrow, saturate

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@st.composite
def formats(draw):
    signed = draw(st.booleans())
    bits = draw(st.integers(min_value=2 if signed else 1, max_value=62))
    return Fixed(bits, draw(st.integers(min_value=-64, max_value=62)), signed)


def reference(v: int, from_frac: int, fmt: Fixed) -> int:
    """floor(v / 2^k + 1/2), then clip: in unbounded Python integers and exact fractions."""
    k = from_frac - fmt.frac
    r = math.floor(Fraction(v) / Fraction(2) ** k + Fraction(1, 2))
    return min(max(r, fmt.min_int), fmt.max_int)


@given(INT64, st.integers(min_value=-130, max_value=130), formats())
def test_narrow_equals_python_int_reference(v, from_frac, fmt):
    assert int(narrow(np.array([v]), from_frac, fmt)[0]) == reference(v, from_frac, fmt)


@given(st.lists(INT64, min_size=1, max_size=20), st.integers(-10, 70), formats())
def test_narrow_vectorised_equals_elementwise(vs, from_frac, fmt):
    out = narrow(np.array(vs, dtype=np.int64), from_frac, fmt)
    assert out.dtype == np.int64 and out.shape == (len(vs),)
    assert out.tolist() == [reference(v, from_frac, fmt) for v in vs]


@given(st.integers(min_value=-(2**40), max_value=2**40), st.integers(min_value=1, max_value=20))
def test_narrow_ties_round_half_up(m, k):
    # v = (m + 1/2) * 2^k exactly half way between m and m + 1: goes up to m + 1
    v = (2 * m + 1) << (k - 1)
    assert int(narrow(np.array([v]), k, Fixed(62, 0))[0]) == m + 1


@given(formats(), st.integers(min_value=0, max_value=40))
def test_narrow_saturates_at_both_ends_and_never_wraps(fmt, extra):
    hi = np.array([2**63 - 1, fmt.max_int, fmt.max_int + 1], dtype=np.int64)
    lo = np.array([-(2**63), fmt.min_int, fmt.min_int - 1], dtype=np.int64)
    for k in (0, 1, extra):
        f = fmt.frac + k
        assert (narrow(hi, f, fmt) >= narrow(np.array([0]), f, fmt)).all()
        assert (narrow(lo, f, fmt) <= 0).all()
    assert narrow(hi[:1], fmt.frac, fmt)[0] == fmt.max_int
    assert narrow(lo[:1], fmt.frac, fmt)[0] == fmt.min_int
    # left shifts (k < 0) saturate rather than overflow
    assert narrow(np.array([1]), fmt.frac - 70, fmt)[0] == fmt.max_int
    assert narrow(np.array([-1]), fmt.frac - 70, fmt)[0] == fmt.min_int
    assert narrow(np.array([0]), fmt.frac - 70, fmt)[0] == 0


def test_narrow_known_answers():
    f = Fixed(8, 0)
    v = np.array([3, -3, 5, -5, 1, -1, 6, -6])  # at frac 1: 1.5 -1.5 2.5 -2.5 .5 -.5 3 -3
    assert narrow(v, 1, f).tolist() == [2, -1, 3, -2, 1, 0, 3, -3]
    assert narrow(np.array([300, -300]), 0, f).tolist() == [127, -128]
    assert narrow(np.array([-5, 7]), 0, Fixed(4, 0, signed=False)).tolist() == [0, 7]
    assert narrow(np.array([3]), 0, Fixed(8, 2)).tolist() == [12]  # left shift, exact
    assert narrow(np.array([2**63 - 1]), 1, Fixed(62, 0))[0] == 2**61 - 1  # no wrap at int64
    assert int(narrow(np.int64(7), 2, f)) == 2  # scalars work too


def test_saturate():
    assert saturate(np.array([-300, 0, 300]), Fixed(8, 3)).tolist() == [-128, 0, 127]


def test_fixed_ranges_and_str():
    assert (Fixed(8, 5).min_int, Fixed(8, 5).max_int, Fixed(8, 5).one) == (-128, 127, 32)
    assert (Fixed(8, 7, False).min_int, Fixed(8, 7, False).max_int) == (0, 255)
    assert str(Fixed(8, 7, False)) == "U8.7" and str(Fixed(12, 8)) == "S12.8"
    assert Fixed.from_dict(Fixed(9, -2, False).to_dict()) == Fixed(9, -2, False)


def test_fixed_validation():
    for bad in ((0, 0), (63, 0), (8, 63), (8, -65)):
        with pytest.raises(ValueError, match="Fixed"):
            Fixed(*bad)
    with pytest.raises(ValueError, match="signed"):
        Fixed(1, 0)
    with pytest.raises(ValueError, match="expected"):
        Fixed.from_dict({"bits": 8})


def test_from_float_rounds_half_up_and_saturates():
    f = Fixed(8, 0)
    x = [0.5, -0.5, 1.5, -1.5, 2.4999, 127.49, 127.5, -128.5, 1e300, -np.inf]
    assert f.from_float(x).tolist() == [1, 0, 2, -1, 2, 127, 127, -128, 127, -128]
    assert Fixed(8, 5).from_float([0.015625, -0.015625]).tolist() == [1, 0]  # +-LSB/2
    # just below a tie goes down, even where x + 1/2 would round up in float64
    assert Fixed(8, 0).from_float([0.5 - 2.0**-54, -0.5 - 2.0**-53]).tolist() == [0, -1]
    # widths beyond float64's 53 bits still saturate exactly
    assert Fixed(62, 0).from_float([1e30])[0] == 2**61 - 1
    with pytest.raises(ValueError, match="NaN"):
        f.from_float([0.0, np.nan])


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_subnormal=False),
       formats())
def test_from_float_matches_narrow_of_exact_value(x, fmt):
    # x is an exact binary fraction: from_float must agree with narrow of its exact integer
    m, e = math.frexp(x)
    mant = int(m * 2**53)
    frac = 53 - e
    assert int(fmt.from_float([x])[0]) == reference(mant, frac, fmt)


def test_bits():
    assert bits_signed(-128, 127) == 8 and bits_signed(-129, 0) == 9 and bits_signed(0, 0) == 2
    assert bits_signed(-1, 1) == 2 and bits_signed(0, 128) == 9
    assert bits_unsigned(0) == 1 and bits_unsigned(255) == 8 and bits_unsigned(256) == 9
