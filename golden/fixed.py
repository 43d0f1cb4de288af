"""Fixed-point formats and the one narrowing helper every stage uses.

A value in ``Fixed(bits, frac)`` is the integer ``v`` standing for ``v / 2**frac``. Signed formats
are two's complement; unsigned formats hold sigmoid outputs in ``[0, 1]``. Every narrowing in
shiftrnn (float to Fixed, wide accumulator to a smaller format) rounds half up with an arithmetic
shift and then saturates; nothing ever wraps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["Fixed", "narrow", "narrow_clip", "saturate", "bits_signed", "bits_unsigned",
           "check_bound"]


@dataclass(frozen=True)
class Fixed:
    """A fixed-point format.

    Parameters
    ----------
    bits : int
        Total width, sign bit included for signed formats (1..62).
    frac : int
        Fractional bits; may be negative (a value that is a multiple of a power of two).
    signed : bool
        Two's complement when true, unsigned otherwise.
    """

    bits: int
    frac: int
    signed: bool = True

    def __post_init__(self):
        if not isinstance(self.bits, int | np.integer) or not 1 <= self.bits <= 62:
            raise ValueError(f"Fixed.bits must be an integer in 1..62, got {self.bits!r}")
        if not isinstance(self.frac, int | np.integer) or not -64 <= self.frac <= 62:
            raise ValueError(f"Fixed.frac must be an integer in -64..62, got {self.frac!r}")
        if self.signed and self.bits < 2:
            raise ValueError("a signed Fixed needs at least 2 bits")

    @cached_property
    def min_int(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @cached_property
    def max_int(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @cached_property
    def one(self) -> int:
        """The integer that stands for 1.0 (it may lie outside the range)."""
        return 1 << self.frac if self.frac >= 0 else 0

    def from_float(self, x) -> np.ndarray:
        """Round half up to the nearest representable value, then saturate."""
        x = np.asarray(x, dtype=np.float64)
        if np.isnan(x).any():
            raise ValueError(f"cannot convert NaN to {self}")
        # Exact power-of-two scaling; the clip (far outside every format) removes infinities.
        y = np.clip(x * 2.0**self.frac, -(2.0**62), 2.0**62)
        lo = np.floor(y)
        # floor(y + 1/2) without rounding y + 1/2 first: y - floor(y) is exact in float64.
        scaled = lo + (y - lo >= 0.5)
        # Clip again in integers: max_int may not be representable in float64 (bits > 53).
        return np.clip(scaled.astype(np.int64), self.min_int, self.max_int)

    def to_float(self, v) -> np.ndarray:
        return np.asarray(v, dtype=np.float64) * 2.0**-self.frac

    def to_dict(self) -> dict:
        return {"bits": int(self.bits), "frac": int(self.frac), "signed": bool(self.signed)}

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "format") -> Fixed:
        try:
            return cls(int(d["bits"]), int(d["frac"]), bool(d.get("signed", True)))
        except (KeyError, TypeError) as e:
            raise ValueError(f"{where}: expected {{bits, frac, signed}}, got {d!r}") from e

    @classmethod
    def parse(cls, text: str, *, signed: bool = True) -> Fixed:
        """A format from the text :meth:`__str__` writes: ``"S8.6"``, ``"U8.7"``.

        Parameters
        ----------
        text : str
            ``[S|U]BITS.FRAC``; without the prefix the format is signed when ``signed``.
        signed : bool
            Signedness of a format written without a prefix.

        Raises
        ------
        ValueError
            Not of that form, or bits/frac out of range.
        """
        spec = str(text).strip()
        if spec[:1] in ("U", "u", "S", "s"):
            signed, spec = spec[0] in "Ss", spec[1:]
        bits, dot, frac = spec.partition(".")
        try:
            if not dot:
                raise ValueError("no '.' between the bits and the fraction bits")
            return cls(int(bits), int(frac), signed)
        except ValueError as e:
            raise ValueError(f"{text!r} is not a valid Fixed format ({e}); write "
                             "[S|U]BITS.FRAC, e.g. S8.6 or U8.7") from None

    def __str__(self) -> str:
        return f"{'S' if self.signed else 'U'}{self.bits}.{self.frac}"


def saturate(v, fmt: Fixed) -> np.ndarray:
    """Clamp integers to the range of ``fmt``."""
    return np.clip(v, fmt.min_int, fmt.max_int)


def narrow(v, from_frac: int, fmt: Fixed) -> np.ndarray:
    """Re-express integers with ``from_frac`` fractional bits in ``fmt``.

    Drops ``k = from_frac - fmt.frac`` bits by rounding half up, ``(v + 2**(k-1)) >> k`` with an
    arithmetic shift, then saturates. When ``k <= 0`` the shift is a left shift (exact) followed by
    saturation. This is the single narrowing rule of shiftrnn; hardware has a twin of it.

    The result equals ``clip(floor(v / 2**k + 1/2), min, max)`` computed in unbounded integers for
    every int64 ``v``: no intermediate can overflow and nothing wraps. It is always a new array.
    """
    return narrow_clip(v, from_frac, fmt, fmt.min_int, fmt.max_int)


def narrow_clip(v, from_frac: int, fmt: Fixed, lo: int, hi: int) -> np.ndarray:
    """:func:`narrow`, saturating to ``[lo, hi]``, a sub-range of ``fmt`` (e.g. ``[0, 1.0]``).

    Equal to ``clip(narrow(v, from_frac, fmt), lo, hi)`` with one pass of saturation.
    """
    v = np.asarray(v, dtype=np.int64)
    k = int(from_frac - fmt.frac)
    if v.ndim == 0:
        return narrow_clip(v.reshape(1), from_frac, fmt, lo, hi)[0]
    if k > 1:
        # ((v >> (k-1)) + 1) >> 1 == (v + 2**(k-1)) >> k, and the sum cannot overflow int64
        # (numpy defines right shifts by >= 64 as 0 or -1, which still gives the right answer).
        v = v >> (k - 1)
        v += 1
        v >>= 1
    elif k == 1:
        v = (v >> 1) + (v & 1)
    elif k == 0:
        return np.clip(v, lo, hi)
    elif k < -61:
        # Any nonzero value saturates: |v| << 62 exceeds every format (bits <= 62).
        v = np.sign(v) << 62
    else:
        # Saturate before shifting so that the left shift cannot overflow int64.
        lim = 1 << (62 + k)
        v = np.clip(v, -lim, lim - 1)
        v <<= -k
    # v is a fresh array here: saturate in place.
    return np.clip(v, lo, hi, out=v)


def bits_signed(lo: int, hi: int) -> int:
    """Smallest two's complement width that holds every integer in ``[lo, hi]``."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return max(n, 2)


def bits_unsigned(hi: int) -> int:
    """Smallest unsigned width that holds ``hi >= 0``."""
    return max(1, int(hi).bit_length())


def check_bound(v: np.ndarray, bound: int, what: str) -> None:
    """Assert that every ``|v| <= bound``: the declared accumulator width is never exceeded."""
    if v.size and (int(v.max()) > bound or int(v.min()) < -bound):
        worst = int(np.abs(v).max())
        raise AssertionError(f"{what}: |value| {worst} exceeds declared bound {bound}")
