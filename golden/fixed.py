"""Fixed-point formats and the one narrowing helper every stage uses.

A value in ``Fixed(bits, frac)`` is the integer ``v`` standing for ``v / 2**frac``. Signed formats
are two's complement; unsigned formats hold sigmoid outputs in ``[0, 1]``. Every narrowing in
shiftrnn (float to Fixed, wide accumulator to a smaller format) rounds half up with an arithmetic
shift and then saturates; nothing ever wraps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Fixed", "narrow", "saturate", "bits_signed", "bits_unsigned", "check_bound"]


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

    @property
    def min_int(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def one(self) -> int:
        """The integer that stands for 1.0 (it may lie outside the range)."""
        return 1 << self.frac if self.frac >= 0 else 0

    def from_float(self, x) -> np.ndarray:
        """Round half up to the nearest representable value, then saturate."""
        scaled = np.floor(np.asarray(x, dtype=np.float64) * 2.0**self.frac + 0.5)
        return np.clip(scaled, self.min_int, self.max_int).astype(np.int64)

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
    """
    v = np.asarray(v, dtype=np.int64)
    k = from_frac - fmt.frac
    if k > 0:
        v = (v + (1 << (k - 1))) >> k
    elif k < 0:
        # Saturate before shifting so that the left shift cannot overflow int64.
        lim = 1 << max(0, 62 + k)
        v = np.clip(v, -lim, lim - 1) << -k
    return saturate(v, fmt)


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
    if v.size and int(np.abs(v).max()) > bound:
        raise AssertionError(f"{what}: |value| {int(np.abs(v).max())} exceeds declared bound {bound}")
