"""The paper's weight quantizers and the integer encoding that hardware consumes.

Ott et al., "Recurrent Neural Networks With Limited Numerical Precision" (2016), section 2:
binarization and ternarization (after BinaryConnect / TernaryConnect), pow2-ternarization with
dual-copy rounding, and exponential quantization. Each real weight becomes ``0`` or ``±2**e``
times one per-matrix scale; a scale that is not a power of two is rounded to a few
canonical-signed-digit (CSD) terms so that no weight ever needs a multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "METHODS",
    "SCALE_PARAMS",
    "QuantMatrix",
    "ScaleVector",
    "csd_digits",
    "csd_round",
    "encode",
    "glorot_bound",
    "method_params",
    "quantize",
]

METHODS = ("binary", "ternary", "pow2-ternary", "exponential")
#: The per-matrix scale parameter of each method: a matrix's own value, kept in its
#: ``QuantMatrix.scale`` (never in a model's ``method_params``). binary H and ternary W0 default
#: to the Glorot bound of the matrix; pow2-ternary's and exponential's ``scale`` to 1.
SCALE_PARAMS = {"binary": "H", "ternary": "W0", "pow2-ternary": "scale",
                "exponential": "scale"}

#: Parameters each method accepts, with their defaults (None: derived from the matrix shape).
_DEFAULTS: dict[str, dict] = {
    "binary": {"H": None},
    "ternary": {"W0": None},
    "pow2-ternary": {"i": 0, "f": 1, "scale": 1.0},
    "exponential": {"kmin": -8, "kmax": 0, "scale": 1.0},
}


def glorot_bound(shape) -> float:
    """Glorot uniform bound ``sqrt(6 / (fan_in + fan_out))`` of a weight matrix (out, in)."""
    shape = tuple(shape)
    if len(shape) == 1:
        fan_out, fan_in = shape[0], 1
    else:
        fan_out, fan_in = shape[0], int(np.prod(shape[1:]))
    return float(np.sqrt(6.0 / (fan_in + fan_out)))


def method_params(method: str, shape=None, **params) -> dict:
    """Validate a method name and its parameters; fill defaults (scales from ``shape``)."""
    if method not in _DEFAULTS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    allowed = _DEFAULTS[method]
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(
            f"method {method!r} takes parameters {sorted(allowed)}; got unknown {sorted(unknown)}"
        )
    out = {k: params.get(k, v) for k, v in allowed.items()}
    for k in ("H", "W0", "scale"):
        if k in out:
            if out[k] is None:
                if shape is None:
                    raise ValueError(f"{method}: {k} needs a value or the matrix shape")
                out[k] = glorot_bound(shape)
            out[k] = float(out[k])
            if not out[k] > 0:
                raise ValueError(f"{method}: {k} must be > 0, got {out[k]}")
    if method == "pow2-ternary":
        i, f = int(out["i"]), int(out["f"])
        if i < 0 or f < 0 or i + f < 1 or i + f > 12:
            raise ValueError(f"pow2-ternary: need i, f >= 0 and 1 <= i+f <= 12; got i={i}, f={f}")
        out.update(i=i, f=f)
    if method == "exponential":
        kmin, kmax = int(out["kmin"]), int(out["kmax"])
        if not -30 <= kmin <= kmax <= 30:
            raise ValueError(f"exponential: need -30 <= kmin <= kmax <= 30; got {kmin}, {kmax}")
        out.update(kmin=kmin, kmax=kmax)
    return out


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _codes(w, method: str, stochastic: bool, rng, p: dict) -> tuple[np.ndarray, int, float]:
    """Integer codes, exponent and real scale: value = codes * 2**exp * scale."""
    w = np.asarray(w, dtype=np.float64)
    if stochastic and method == "pow2-ternary":
        raise ValueError("pow2-ternary is deterministic (dual-copy rounding); no stochastic form")
    if stochastic and not isinstance(rng, np.random.Generator):
        raise ValueError("stochastic quantization needs rng=numpy.random.Generator")
    if method == "binary":
        H = p["H"]
        if stochastic:
            prob = np.clip((w / H + 1) / 2, 0, 1)
            c = np.where(rng.random(w.shape) < prob, 1, -1)
        else:
            c = np.where(w >= 0, 1, -1)
        return c.astype(np.int64), 0, H
    if method == "ternary":
        W0 = p["W0"]
        if stochastic:
            prob = np.clip(np.abs(w) / W0, 0, 1)
            c = np.sign(w) * (rng.random(w.shape) < prob)
        else:
            c = np.where(w > W0 / 2, 1, np.where(w <= -W0 / 2, -1, 0))
        return c.astype(np.int64), 0, W0
    if method == "pow2-ternary":
        i, f, s = p["i"], p["f"], p["scale"]
        lim = 2 ** (f + i) - 1
        c = np.clip(_round_half_away(w / s * 2.0**f), -lim, lim)
        return c.astype(np.int64), -f, s
    # exponential
    kmin, kmax, s = p["kmin"], p["kmax"], p["scale"]
    a = np.abs(w / s)
    with np.errstate(divide="ignore"):
        k = np.clip(np.floor(np.log2(np.where(a > 0, a, 2.0 ** (kmin - 1)))), kmin, kmax)
    if stochastic:
        up = rng.random(w.shape) < (a / 2.0**k - 1)
    else:
        up = a > 1.5 * 2.0**k
    k = np.clip(k + up, kmin, kmax).astype(np.int64)
    sign = np.where(w > 0, 1, -1)  # sign(0) = -1: there is no zero level
    return sign * (np.int64(1) << (k - kmin)), kmin, s


def quantize(w, method: str, *, stochastic: bool = False, rng=None, **params) -> np.ndarray:
    """Quantize real weights with one of the paper's methods.

    Parameters
    ----------
    w : array_like
        Real weights; the scale defaults (H, W0) use its shape as (fan_out, fan_in).
    method : {'binary', 'ternary', 'pow2-ternary', 'exponential'}
    stochastic : bool
        Use the stochastic variant (binary, ternary, exponential); needs ``rng``.
    rng : numpy.random.Generator
        Source of randomness for the stochastic variants.
    **params
        ``H`` (binary), ``W0`` (ternary), ``i``/``f``/``scale`` (pow2-ternary),
        ``kmin``/``kmax``/``scale`` (exponential; the levels are those of ``w / scale``, times
        ``scale``).

    Returns
    -------
    ndarray of float64
        The quantized real values (the exact scale, before CSD rounding).
    """
    w = np.asarray(w, dtype=np.float64)
    p = method_params(method, w.shape, **params)
    c, e, s = _codes(w, method, stochastic, rng, p)
    return c * 2.0**e * s


def csd_round(x: float, terms: int) -> tuple[tuple[int, int], ...]:
    """Approximate ``x > 0`` by at most ``terms`` signed powers of two, greedily nearest.

    Returns ``((sign, exponent), ...)`` with ``x ≈ sum(sign * 2**exponent)``.
    """
    if not x > 0 or not np.isfinite(x):
        raise ValueError(f"a scale must be finite and > 0, got {x}")
    if terms < 1:
        raise ValueError(f"scale_terms must be >= 1, got {terms}")
    out, r = [], float(x)
    for _ in range(terms):
        if r == 0:
            break
        lo = int(np.floor(np.log2(abs(r))))
        p = lo if abs(r) - 2.0**lo <= 2.0 ** (lo + 1) - abs(r) else lo + 1
        s = 1 if r > 0 else -1
        out.append((s, p))
        r -= s * 2.0**p
    return tuple(out)


def csd_digits(n: int) -> tuple[tuple[int, int], ...]:
    """Canonical signed-digit (non-adjacent form) of an integer: ``((sign, shift), ...)``."""
    n = int(n)
    out, k = [], 0
    while n != 0:
        if n & 1:
            d = 2 - (n & 3)  # +1 or -1
            out.append((d, k))
            n -= d
        n >>= 1
        k += 1
    return tuple(out)


#: Per-row and per-column constants are CSD-rounded relative to the largest one: terms this many
#: octaves below it are dropped (a relative error below 2**-24).
SCALE_OCTAVES = 24


@dataclass(frozen=True)
class ScaleVector:
    """One constant per row (or column): ``ints[k] * 2**-frac``, each ``ints[k]`` with at most
    ``scale_terms`` canonical-signed-digit terms, so that applying it is a shift-and-add."""

    ints: np.ndarray
    frac: int

    @property
    def values(self) -> np.ndarray:
        return self.ints * 2.0**-self.frac

    @property
    def max_terms(self) -> int:
        """The most CSD terms of any constant."""
        return max((len(csd_digits(v)) for v in self.ints.tolist()), default=0)

    @classmethod
    def from_float(cls, values, terms: int) -> ScaleVector:
        """Round each real value (any sign; zero stays zero) to at most ``terms`` signed powers
        of two (:func:`csd_round`, dropping terms :data:`SCALE_OCTAVES` below the largest
        value), all at the finest fractional position used."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if not np.isfinite(values).all():
            raise ValueError("scales must be finite")
        top = float(np.abs(values).max(initial=0.0))
        floor = np.log2(top) - SCALE_OCTAVES if top else 0.0
        rounded = []
        for v in values.tolist():
            t = csd_round(abs(v), terms) if v else ()
            rounded.append(tuple((sg if v > 0 else -sg, p) for sg, p in t if p >= floor))
        frac = -min((p for t in rounded for _, p in t), default=0)
        ints = [sum(sg << (p + frac) for sg, p in t) for t in rounded]
        return cls(np.array(ints, dtype=np.int64), frac)


@dataclass(frozen=True)
class QuantMatrix:
    """Integer form of one quantized matrix (or bias vector).

    The real value the hardware computes with is ``codes * 2**exp * sum(s * 2**p for s, p in
    scale_csd)``. Factor the scale as ``C * 2**pmin`` with the integer ``C``: a weighted sum is
    ``C * (codes @ x)`` at fractional position ``x_frac - shift`` where ``shift = exp + pmin``.

    With ``row_scale`` (per-row scales) row ``r`` is further multiplied by
    ``row_scale.ints[r] * 2**-row_scale.frac``: its weighted sum is ``multiplier[r] * (codes[r]
    @ x)``, ``multiplier = C * row_scale.ints``, and ``shift`` includes ``-row_scale.frac``.
    """

    codes: np.ndarray
    exp: int
    scale: float
    scale_csd: tuple[tuple[int, int], ...] = field(default=((1, 0),))
    row_scale: ScaleVector | None = None

    @property
    def pmin(self) -> int:
        return min(p for _, p in self.scale_csd)

    @property
    def C(self) -> int:
        """The integer scale constant (applied by a shift-and-add constant multiplier)."""
        return sum(s << (p - self.pmin) for s, p in self.scale_csd)

    @property
    def multiplier(self):
        """``C`` (an int), or with per-row scales ``C * row_scale.ints`` (one int per row)."""
        if self.row_scale is None:
            return self.C
        return self.C * self.row_scale.ints

    def block_multipliers(self, blocks: int) -> list[int]:
        """The constant of each of ``blocks`` equal blocks of rows (a cell's gates, in order):
        ``C`` for all without per-row scales. ``ValueError`` when the rows of a block do not
        share one (the hardware applies one constant per gate)."""
        rows = self.codes.shape[0]
        if rows % blocks:
            raise ValueError(f"{rows} rows do not split into {blocks} equal blocks")
        if self.row_scale is None:
            return [self.C] * blocks
        m = np.asarray(self.multiplier).reshape(blocks, -1)
        if (m != m[:, :1]).any():
            raise ValueError("the per-row scales differ within a gate's rows")
        return [int(v) for v in m[:, 0]]

    def scale_kind(self, blocks: int) -> str:
        """``'matrix'`` (one constant), ``'gate'`` (one per block of rows, not all equal) or
        ``'row'`` (rows of a block that differ: :meth:`block_multipliers` refuses them)."""
        try:
            constants = self.block_multipliers(blocks)
        except ValueError:
            return "row"
        return "gate" if len(set(constants)) > 1 else "matrix"

    @property
    def shift(self) -> int:
        """``exp + pmin`` (``- row_scale.frac``): the power of two that ``multiplier * codes``
        stands for."""
        return self.exp + self.pmin - (0 if self.row_scale is None else self.row_scale.frac)

    @property
    def values(self) -> np.ndarray:
        """Real weights as the hardware computes with them (CSD-rounded scales)."""
        m = self.multiplier
        if self.row_scale is not None and self.codes.ndim == 2:
            m = m[:, None]
        return self.codes * (m * 2.0**self.shift)

    @property
    def max_code(self) -> int:
        return int(np.abs(self.codes).max()) if self.codes.size else 0


def encode(
    w, method: str, *, stochastic=False, rng=None, scale_terms: int = 2, params: dict | None = None
) -> QuantMatrix:
    """Quantize ``w`` and return its integer encoding with a CSD-rounded scale.

    ``params['row_scales']`` (one positive value per row of ``w``) gives every row its own
    scale (in place of ``H``/``W0``/``scale``), CSD-rounded to a :class:`ScaleVector`.
    """
    w = np.asarray(w, dtype=np.float64)
    params = dict(params or {})
    rows = params.pop("row_scales", None)
    p = method_params(method, w.shape, **params)
    if rows is None:
        c, e, s = _codes(w, method, stochastic, rng, p)
        return QuantMatrix(c, int(e), float(s), csd_round(s, scale_terms))
    rows = np.asarray(rows, dtype=np.float64).reshape(-1)
    if rows.shape != w.shape[:1] or not (rows > 0).all():
        raise ValueError(f"row_scales need {w.shape[0]} positive values, got {rows.shape}")
    p[SCALE_PARAMS[method]] = rows.reshape(-1, *([1] * (w.ndim - 1)))
    c, e, _ = _codes(w, method, stochastic, rng, p)
    return QuantMatrix(c, int(e), 1.0, ((1, 0),), ScaleVector.from_float(rows, scale_terms))
