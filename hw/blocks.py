"""Standalone components for the datapath's arithmetic, each with a golden twin.

The core builds the same expressions inline (``hw.arith``); these wrappers give every block a
``wiring.Signature`` so it can be tested alone against golden and reused in other designs.

=================  =============================================  ==========================
block              computes                                       golden twin
=================  =============================================  ==========================
Narrower           round half up + saturate                       ``golden.narrow``
ConstMultiplier    ``v * C`` by CSD shift-and-add                  ``v * C``
GateMultiplier     ``a * b`` (b unsigned) by shift-and-add         ``a * b``
NonlinUnit         sigmoid / tanh of kind hard, plan, lut          ``Nonlinearity.int_fn``
TermUnit           one weight code times a value (ROM word)        ``code * v``
=================  =============================================  ==========================
"""

from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import Fixed, Nonlinearity, QuantMatrix

from .arith import const_mul, fmt_shape, narrow, nonlinearity, shift_add_mul
from .codes import MatrixCodes
from .params import silence_on_error

__all__ = ["ConstMultiplier", "GateMultiplier", "Narrower", "NonlinUnit", "TermUnit"]


def _width(name: str, w) -> int:
    if not isinstance(w, int) or not 1 <= w <= 62:
        raise ValueError(f"{name} must be an integer in 1..62, got {w!r}")
    return w


def _fixed(name: str, f) -> Fixed:
    if not isinstance(f, Fixed):
        raise TypeError(f"{name} must be a golden.Fixed, got {f!r}")
    return f


class Narrower(wiring.Component):
    """``o = narrow(i, from_frac, fmt)``: round half up, then saturate (never wraps)."""

    @silence_on_error
    def __init__(self, *, in_width: int, from_frac: int, fmt: Fixed):
        self.from_frac, self.fmt = int(from_frac), _fixed("fmt", fmt)
        super().__init__({"i": In(signed(_width("in_width", in_width))),
                          "o": Out(fmt_shape(fmt))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(narrow(m, self.i, self.from_frac, self.fmt))
        return m


class ConstMultiplier(wiring.Component):
    """``o = i * constant`` with adds/subtracts of the constant's CSD digits (no multiplier)."""

    @silence_on_error
    def __init__(self, *, in_width: int, constant: int, use_mul: bool = False):
        if not isinstance(constant, int) or constant == 0:
            raise ValueError(f"constant must be a nonzero integer, got {constant!r}")
        self.constant, self.use_mul = constant, use_mul
        w = _width("in_width", in_width)
        super().__init__({"i": In(signed(w)),
                          "o": Out(signed(w + abs(constant).bit_length() + 1))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(const_mul(m, self.i, self.constant, use_mul=self.use_mul))
        return m


class GateMultiplier(wiring.Component):
    """``o = a * b`` for signed ``a`` and unsigned ``b`` (a gate value), by shift-and-add."""

    @silence_on_error
    def __init__(self, *, a_width: int, b_width: int, use_mul: bool = False):
        self.use_mul = use_mul
        wa, wb = _width("a_width", a_width), _width("b_width", b_width)
        super().__init__({"a": In(signed(wa)), "b": In(unsigned(wb)), "o": Out(signed(wa + wb))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(shift_add_mul(m, self.a, self.b, use_mul=self.use_mul))
        return m


class NonlinUnit(wiring.Component):
    """``o = fn(i)`` with ``fn`` in {'sigmoid', 'tanh'}, input ``fin``, output ``fout``."""

    @silence_on_error
    def __init__(self, *, nonlin: Nonlinearity, fn: str, fin: Fixed, fout: Fixed):
        if fn not in ("sigmoid", "tanh"):
            raise ValueError(f"fn must be 'sigmoid' or 'tanh', got {fn!r}")
        if not isinstance(nonlin, Nonlinearity):
            raise TypeError("nonlin must be a golden.Nonlinearity")
        self.nonlin, self.fn = nonlin, fn
        self.fin, self.fout = _fixed("fin", fin), _fixed("fout", fout)
        super().__init__({"i": In(fmt_shape(fin)), "o": Out(fmt_shape(fout))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(nonlinearity(m, self.nonlin, self.fn, self.i, self.fin, self.fout))
        return m


class TermUnit(wiring.Component):
    """One weighted-sum term: ``o = code * v`` where ``word`` is the code's ROM encoding.

    The folded weighted-sum engine instantiates this per lane and gate; ``word`` comes from
    :meth:`hw.codes.MatrixCodes.word`.
    """

    @silence_on_error
    def __init__(self, *, matrix: QuantMatrix, vfmt: Fixed, use_mul: bool = False):
        self.codes = MatrixCodes(matrix, _fixed("vfmt", vfmt), use_mul=use_mul)
        super().__init__({"word": In(unsigned(self.codes.word_width)), "v": In(fmt_shape(vfmt)),
                          "o": Out(self.codes.acc_shape)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(self.codes.term(self.word, self.v))
        return m
