"""Known answers and statistical properties of the paper's weight quantizers (DESIGN.md s1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from golden import csd_digits, csd_round, encode, glorot_bound, quantize
from golden.quantize import method_params


def q(w, method, **p):
    return quantize(np.asarray(w, dtype=np.float64), method, **p)


# ------------------------------------------------------------------------- deterministic
def test_binary_det_known_answers():
    w = [-1.0, -1e-12, -0.0, 0.0, 1e-12, 0.3, 7.0]
    # w >= 0 -> +H (so -0.0 and 0.0 give +H), else -H
    assert q(w, "binary", H=0.5).tolist() == [-0.5, -0.5, 0.5, 0.5, 0.5, 0.5, 0.5]


def test_binary_default_H_is_glorot():
    w = np.full((3, 5), 0.1)
    assert np.allclose(q(w, "binary"), glorot_bound((3, 5)))
    assert glorot_bound((3, 5)) == pytest.approx(np.sqrt(6 / 8))


def test_ternary_det_thresholds():
    # +W0 if w > W0/2; -W0 if w <= -W0/2; else 0
    w = [0.5, 0.5000001, 0.4999999, -0.5, -0.4999999, -0.5000001, 0.0, 2.0, -2.0]
    assert q(w, "ternary", W0=1.0).tolist() == [0, 1, 0, -1, 0, -1, 0, 1, -1]
    assert q([0.3, -0.3, 0.29], "ternary", W0=0.6).tolist() == [0.0, -0.6, 0.0]


def test_pow2_ternary_round_half_away_and_clip():
    # default i=0, f=1: levels {-1/2, 0, 1/2}; w*2 rounded half away from zero, then clipped
    w = [0.25, -0.25, 0.2499, -0.2499, 0.0, 0.75, 1.0, -3.0]
    assert q(w, "pow2-ternary").tolist() == [0.5, -0.5, 0.0, 0.0, 0.0, 0.5, 0.5, -0.5]
    # i=1, f=1: levels k/2 for |k| <= 3
    w = [0.25, 0.75, -0.75, 1.2, 1.25, 5.0, -5.0]
    assert q(w, "pow2-ternary", i=1, f=1).tolist() == [0.5, 1.0, -1.0, 1.0, 1.5, 1.5, -1.5]
    # i=0, f=2: quarters, clipped to +-3/4
    assert q([0.125, -0.125, 0.9], "pow2-ternary", f=2).tolist() == [0.25, -0.25, 0.75]


def test_exponential_det_known_answers():
    p = {"kmin": -3, "kmax": 0}
    w = [0.375, 0.3751, 0.3, 0.25, -0.75, -0.7501, 0.01, 5.0, 1.6, 1.4, 0.125]
    # k = floor(log2|w|) clipped; rounds up to 2^(k+1) only when |w| > 1.5 * 2^k; k clipped
    want = [0.25, 0.5, 0.25, 0.25, -0.5, -1.0, 0.125, 1.0, 1.0, 1.0, 0.125]
    assert q(w, "exponential", **p).tolist() == want


def test_exponential_sign_of_zero_is_negative():
    # there is no zero level: sign(0) = -1, magnitude 2^kmin
    assert q([0.0, -0.0, 1e-30], "exponential", kmin=-3, kmax=0).tolist() == [-0.125, -0.125,
                                                                              0.125]


def test_exponential_encoding():
    m = encode(np.array([[0.3, -0.7, 0.0, 4.0]]), "exponential", params={"kmin": -4, "kmax": 1})
    # codes are +-2^(k - kmin) at exponent kmin, scale 1
    assert m.exp == -4 and m.scale == 1.0
    assert m.codes.tolist() == [[4, -8, -1, 32]]
    assert np.array_equal(m.values, [[0.25, -0.5, -0.0625, 2.0]])


def test_encode_matches_quantize_up_to_scale_rounding(rng):
    w = rng.uniform(-1, 1, size=(12, 7))
    for method in ("binary", "ternary", "pow2-ternary", "exponential"):
        m = encode(w, method, scale_terms=30)
        assert np.allclose(m.values, quantize(w, method), rtol=1e-12, atol=0)
        assert np.array_equal(m.codes * 2.0**m.exp * m.scale, quantize(w, method))


def test_method_params_errors():
    with pytest.raises(ValueError, match="method must be one of"):
        quantize([1.0], "quaternary")
    with pytest.raises(ValueError, match="unknown"):
        quantize([1.0], "ternary", H=1.0)
    with pytest.raises(ValueError, match="W0 must be > 0"):
        quantize([1.0], "ternary", W0=0)
    with pytest.raises(ValueError, match="kmin <= kmax"):
        method_params("exponential", kmin=2, kmax=0)
    with pytest.raises(ValueError, match="i\\+f"):
        method_params("pow2-ternary", i=0, f=0)
    with pytest.raises(ValueError, match="deterministic"):
        quantize([1.0], "pow2-ternary", stochastic=True, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs rng"):
        quantize([1.0], "binary", stochastic=True)


# ---------------------------------------------------------------------------- stochastic
N = 40_000


def _mean_and_sigma(samples: np.ndarray) -> tuple[float, float]:
    return float(samples.mean()), float(samples.std() / np.sqrt(samples.size))


@pytest.mark.parametrize("w", [-0.9, -0.3, 0.0, 0.2, 0.75])
def test_binary_stochastic_unbiased_inside_clip(w, rng):
    s = q(np.full(N, w), "binary", H=1.0, stochastic=True, rng=rng)
    assert set(np.unique(s)) <= {-1.0, 1.0}
    mean, sigma = _mean_and_sigma(s)
    assert abs(mean - w) < 5 * max(sigma, 1e-3)


def test_binary_stochastic_saturates_outside_clip(rng):
    assert (q(np.full(100, 3.0), "binary", H=1.0, stochastic=True, rng=rng) == 1.0).all()
    assert (q(np.full(100, -3.0), "binary", H=1.0, stochastic=True, rng=rng) == -1.0).all()


@pytest.mark.parametrize("w", [-0.8, -0.1, 0.0, 0.3, 1.0])
def test_ternary_stochastic_unbiased_inside_clip(w, rng):
    s = q(np.full(N, w), "ternary", W0=1.0, stochastic=True, rng=rng)
    assert set(np.unique(s)) <= {-1.0, 0.0, 1.0}
    assert set(np.unique(np.sign(s))) <= {0.0, np.sign(w)}
    mean, sigma = _mean_and_sigma(s)
    assert abs(mean - w) < 5 * max(sigma, 1e-3)


@pytest.mark.parametrize("w", [0.3, -0.7, 0.0625, 0.99, -0.126])
def test_exponential_stochastic_unbiased_in_range(w, rng):
    s = q(np.full(N, w), "exponential", kmin=-4, kmax=0, stochastic=True, rng=rng)
    a = np.abs(w)
    k = np.floor(np.log2(a))
    assert set(np.unique(np.abs(s))) <= {2.0**k, 2.0 ** (k + 1)}  # the two neighbours
    assert (np.sign(s) == np.sign(w)).all()
    mean, sigma = _mean_and_sigma(s)
    assert abs(mean - w) < 5 * max(sigma, 1e-3)


def test_stochastic_is_reproducible():
    w = np.linspace(-1, 1, 50)
    a = q(w, "ternary", W0=1.0, stochastic=True, rng=np.random.default_rng(5))
    b = q(w, "ternary", W0=1.0, stochastic=True, rng=np.random.default_rng(5))
    assert np.array_equal(a, b)


# ------------------------------------------------------------------------------------- CSD
def _csd_value(terms) -> float:
    return sum(s * 2.0**p for s, p in terms)


def test_csd_round_known_answers():
    assert csd_round(1.0, 1) == ((1, 0),)
    assert csd_round(0.25, 3) == ((1, -2),)  # exact powers need one term
    assert _csd_value(csd_round(3.0, 2)) == 3.0
    assert _csd_value(csd_round(7.0, 2)) == 7.0  # 8 - 1
    assert csd_round(0.75, 1) == ((1, -1),)  # tie between 1/2 and 1 goes down
    with pytest.raises(ValueError):
        csd_round(0.0, 2)
    with pytest.raises(ValueError):
        csd_round(1.0, 0)


@given(st.floats(min_value=1e-6, max_value=1e6), st.integers(min_value=1, max_value=6))
def test_csd_round_error_shrinks_by_three_per_term(x, terms):
    t = csd_round(x, terms)
    assert 1 <= len(t) <= terms
    assert all(s in (-1, 1) for s, _ in t)
    # greedy nearest power of two leaves at most a third of the remainder
    assert abs(_csd_value(t) - x) <= x * 3.0**-terms * (1 + 1e-12)
    if terms > 1:
        assert abs(_csd_value(t) - x) <= abs(_csd_value(csd_round(x, terms - 1)) - x)


@given(st.integers(min_value=-(2**40), max_value=2**40))
def test_csd_digits_is_non_adjacent_form(n):
    d = csd_digits(n)
    assert sum(s << k for s, k in d) == n
    assert all(s in (-1, 1) for s, _ in d)
    ks = [k for _, k in d]
    assert ks == sorted(ks) and all(b - a >= 2 for a, b in zip(ks, ks[1:], strict=False))
    # NAF has the fewest nonzero digits: never more than the binary popcount
    assert len(d) <= bin(abs(n)).count("1")


def test_csd_digits_known_answers():
    assert csd_digits(0) == ()
    assert csd_digits(1) == ((1, 0),)
    assert csd_digits(-1) == ((-1, 0),)
    assert csd_digits(7) == ((-1, 0), (1, 3))
    assert csd_digits(-3) == ((1, 0), (-1, 2))


# -------------------------------------------------------------- per-matrix and per-row scales
@pytest.mark.parametrize("method,params", [("pow2-ternary", {"i": 1, "f": 1}),
                                           ("exponential", {"kmin": -5, "kmax": 0})])
def test_scale_parameter_scales_the_levels(method, params, rng):
    w = rng.uniform(-0.2, 0.2, size=(6, 9))
    for s in (0.25, 2.0**-5):  # powers of two: the division and product are exact
        assert np.array_equal(q(w, method, scale=s, **params), s * q(w / s, method, **params))
    m = encode(w, method, params={**params, "scale": 0.375})  # 2 CSD terms: 1/4 + 1/8
    assert m.scale == 0.375 and m.C == 3 and m.shift == m.exp - 3
    assert np.array_equal(m.values, m.codes * 0.375 * 2.0**m.exp)


def test_scale_vector_rounds_each_value_to_csd_terms():
    from golden import ScaleVector

    v = np.array([0.1, -3.7, 0.0, 1.0, 2.0**-30])
    sv = ScaleVector.from_float(v, 2)
    assert sv.max_terms <= 2 and sv.ints[2] == 0 and sv.ints[4] == 0  # 2^-30: 32 octaves down
    for x, got in zip(v[:4].tolist(), sv.values[:4].tolist(), strict=True):
        want = np.sign(x) * sum(s * 2.0**p for s, p in csd_round(abs(x), 2)) if x else 0.0
        assert got == want
    assert ScaleVector.from_float([0.0, 0.0], 2).ints.tolist() == [0, 0]


@pytest.mark.parametrize("method", ["binary", "ternary", "pow2-ternary", "exponential"])
def test_row_scales_equal_row_by_row_encoding(method, rng):
    w = rng.uniform(-0.4, 0.4, size=(7, 5))
    rows = rng.uniform(0.05, 0.6, size=7)
    if method in ("pow2-ternary", "exponential"):
        rows = 2.0 ** np.round(np.log2(rows))
    m = encode(w, method, scale_terms=2, params={"row_scales": rows})
    key = {"binary": "H", "ternary": "W0"}.get(method, "scale")
    assert m.row_scale is not None and m.C == 1 and m.row_scale.max_terms <= 2
    for r in range(7):
        one = encode(w[r:r + 1], method, scale_terms=2, params={key: rows[r]})
        assert np.array_equal(one.codes[0], m.codes[r])
        assert np.array_equal(one.values[0], m.values[r])
    b = encode(w[:, 0], method, scale_terms=2, params={"row_scales": rows})  # a bias
    assert np.array_equal(b.values, b.codes * m.row_scale.values * 2.0**m.exp)
    with pytest.raises(ValueError, match="row_scales need 7 positive"):
        encode(w, method, params={"row_scales": rows[:3]})
