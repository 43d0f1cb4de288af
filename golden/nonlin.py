"""Integer nonlinearities with float twins.

Kinds (a model's ``nonlinearity``; the kinds are described here, nowhere else):

``hard``
    hard sigmoid ``clip(x/4 + 1/2, 0, 1)``, hard tanh ``clip(x, -1, 1)``.
``plan``
    PLAN sigmoid (Amin, Curtis and Hayes-Gill, 1997): slopes 1/4, 1/8, 1/32 with breakpoints 1,
    2.375 and 5, mirrored for negative inputs; tanh(x) = 2 * sigmoid(2x) - 1.
``lut``
    a table over the top ``lut_bits`` bits of the input saturated to ``[-R, R)``, each entry the
    true function at the centre of its bin, rounded to the output format.
``exact``
    true sigmoid/tanh on the float path; the integer path uses a fine ``lut`` (and says so).

Sigmoid outputs are unsigned and tanh outputs signed; both are clipped to ``[0, 1]`` and
``[-1, 1]`` after the one narrowing rule. Each integer function takes its input format, so the
same code serves gate pre-activations and the LSTM cell state. The float twins compute the same
function in float64 and are what training uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .fixed import Fixed, narrow_clip

__all__ = ["KINDS", "Nonlinearity"]

KINDS = ("exact", "hard", "plan", "lut")

#: LUT input range R (a power of two): the input is saturated to [-R, R).
LUT_RANGE = {"sigmoid": 8, "tanh": 4}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


_TRUE = {"sigmoid": _sigmoid, "tanh": np.tanh}


@dataclass(frozen=True)
class Nonlinearity:
    """One nonlinearity kind with its integer functions and float twins.

    Parameters
    ----------
    kind : {'exact', 'hard', 'plan', 'lut'}
    lut_bits : int
        Index bits of the ``lut`` tables (``exact`` uses ``exact_lut_bits`` on the integer path).
    """

    kind: str = "hard"
    lut_bits: int = 6
    exact_lut_bits: int = 10

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"nonlinearity must be one of {', '.join(KINDS)}; got {self.kind!r}")
        for name in ("lut_bits", "exact_lut_bits"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 2 <= v <= 14:
                raise ValueError(f"{name} must be an integer in 2..14, got {v!r}")

    @property
    def int_kind(self) -> str:
        """The kind the integer path (and the hardware) really computes."""
        return "lut" if self.kind == "exact" else self.kind

    @property
    def int_lut_bits(self) -> int:
        return self.exact_lut_bits if self.kind == "exact" else self.lut_bits

    def describe(self) -> str:
        if self.kind == "exact":
            return f"exact (float path); integer path: {2**self.exact_lut_bits}-entry LUT"
        if self.kind == "lut":
            return f"lut ({2**self.lut_bits} entries)"
        return self.kind

    # ---------------------------------------------------------------- float twins
    def float_fn(self, fn: str, x, *, integer_twin: bool = False):
        """Float twin of ``sigmoid``/``tanh``; ``integer_twin`` follows the integer path's kind."""
        kind = self.int_kind if integer_twin else self.kind
        x = np.asarray(x, dtype=np.float64)
        if kind == "exact":
            return _TRUE[fn](x)
        if kind == "hard":
            return np.clip(x / 4 + 0.5, 0, 1) if fn == "sigmoid" else np.clip(x, -1, 1)
        if kind == "plan":
            if fn == "tanh":
                return 2 * _plan_sigmoid_float(2 * x) - 1
            return _plan_sigmoid_float(x)
        return self.lut_table_float(fn)[self.lut_index_float(fn, x)]

    # ------------------------------------------------------------- integer path
    def int_fn(self, fn: str, x, fin: Fixed, fout: Fixed) -> np.ndarray:
        """Integer ``sigmoid``/``tanh`` of ``x`` in ``fin``, result in ``fout``."""
        x = np.asarray(x, dtype=np.int64)
        kind = self.int_kind
        if kind == "hard":
            if fn == "sigmoid":
                # (x + 2) / 4 at frac fin.frac + 2 (x first moved to frac >= 0 so 2 is an integer)
                e = max(0, -fin.frac)
                y, yf = (x << e if e else x) + (2 << (fin.frac + e)), fin.frac + e + 2
            else:
                y, yf = x, fin.frac
        elif kind == "plan":
            y, yf = _plan_sigmoid_int(x << 1 if fn == "tanh" else x, fin.frac)
            if fn == "tanh":  # 2*s - 1 at frac yf - 1
                y, yf = y - (1 << (yf - 1)), yf - 1
        else:
            idx = self.lut_index_int(fn, x, fin)
            return _lut_table_int(fn, self.int_lut_bits, fout)[idx]
        return narrow_clip(y, yf, fout, *_unit_range(fn, fout))

    # ------------------------------------------------------------------ tables
    def lut_index_int(self, fn: str, x, fin: Fixed) -> np.ndarray:
        """Index into the table: top ``bits`` of ``x`` saturated to ``[-R, R)``, offset binary."""
        r = int(np.log2(LUT_RANGE[fn]))
        bits = self.int_lut_bits
        f = fin.frac
        lo, hi = -(1 << (r + f)), (1 << (r + f)) - 1
        u = np.clip(x, lo, hi) - lo  # 0 .. 2^(r+1+f) - 1
        width = r + 1 + f
        return (u >> (width - bits)) if width >= bits else (u << (bits - width))

    def lut_index_float(self, fn: str, x) -> np.ndarray:
        R = LUT_RANGE[fn]
        n = 1 << self.int_lut_bits
        t = np.floor((np.asarray(x, dtype=np.float64) + R) / (2 * R) * n)
        return np.clip(t, 0, n - 1).astype(np.int64)

    def _centres(self, fn: str) -> np.ndarray:
        R, n = LUT_RANGE[fn], 1 << self.int_lut_bits
        return -R + (np.arange(n) + 0.5) * (2 * R / n)

    def lut_table_int(self, fn: str, fout: Fixed) -> np.ndarray:
        """Table entries in ``fout``: the true function at each bin centre, rounded half up."""
        return _lut_table_int(fn, self.int_lut_bits, fout).copy()

    def lut_table_float(self, fn: str) -> np.ndarray:
        return _TRUE[fn](self._centres(fn))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "lut_bits": self.lut_bits, "exact_lut_bits": self.exact_lut_bits}


def _unit_range(fn: str, fout: Fixed) -> tuple[int, int]:
    """Integers of ``fout`` inside [0, 1] (sigmoid) or [-1, 1] (tanh)."""
    one = 1 << fout.frac
    return max(0 if fn == "sigmoid" else -one, fout.min_int), min(one, fout.max_int)


def _clip_unit(v: np.ndarray, fn: str, fout: Fixed) -> np.ndarray:
    """Clip ``v`` (already in ``fout``) to [0, 1] or [-1, 1]."""
    return np.clip(v, *_unit_range(fn, fout))


@lru_cache(maxsize=64)
def _lut_table_int(fn: str, bits: int, fout: Fixed) -> np.ndarray:
    """The integer table of ``Nonlinearity.lut_table_int`` (cached; read-only)."""
    R, n = LUT_RANGE[fn], 1 << bits
    centres = -R + (np.arange(n) + 0.5) * (2 * R / n)
    table = _clip_unit(fout.from_float(_TRUE[fn](centres)), fn, fout)
    table.flags.writeable = False
    return table


def _plan_sigmoid_float(x):
    a = np.abs(x)
    y = np.where(
        a >= 5, 1.0, np.where(a >= 2.375, a / 32 + 0.84375, np.where(a >= 1, a / 8 + 0.625,
                                                                    a / 4 + 0.5))
    )
    return np.where(x >= 0, y, 1 - y)


def _plan_sigmoid_int(x: np.ndarray, f: int) -> tuple[np.ndarray, int]:
    """PLAN sigmoid of ``x`` (frac ``f >= 0``); exact result at frac ``f + 5``."""
    if f < 0:
        raise ValueError("plan nonlinearity needs an input format with frac >= 0")
    a = np.abs(x)
    one = np.int64(1) << f
    y = np.where(
        a >= 5 * one,
        32 * one,
        np.where(
            (a << 3) >= 19 * one,
            a + 27 * one,
            np.where(a >= one, (a << 2) + 20 * one, (a << 3) + 16 * one),
        ),
    )
    return np.where(x >= 0, y, 32 * one - y), f + 5
