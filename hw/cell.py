"""Elementwise cell logic: from one hidden unit's gate accumulators to its new state.

The golden twin is golden's integer cell update (``golden.model`` run_int)
applied to one unit.
"""

from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import Fixed, Model

from .arith import align, const_mul, fmt_shape, narrow, nonlinearity, shift_add_mul
from .params import silence_on_error

__all__ = ["CellUnit", "cell_update"]


def cell_update(m, model: Model, layer: int, acc_ih, acc_hh, b_ih, b_hh, h, c, *, use_mul=False):
    """Expressions for one unit's new ``(h, c)`` (``c`` is None except for LSTM).

    ``acc_ih``/``acc_hh`` are the raw gate accumulators ``codes @ x`` (one per gate, before the
    matrix scale ``C``); ``b_ih``/``b_hh`` are the unit's bias integers (values, one per gate).
    """
    f, nl, cell = model.formats, model.nonlinearity, model.cell
    lay = model.layers[layer]
    fin = model.layer_input_format(layer) if layer == 0 else f["h"]
    xw = [(const_mul(m, a, lay.w_ih.C, use_mul=use_mul), fin.frac - lay.w_ih.shift) for a in acc_ih]
    hw = [(const_mul(m, a, lay.w_hh.C, use_mul=use_mul), f["h"].frac - lay.w_hh.shift)
          for a in acc_hh]
    bi = [(b, lay.b_ih.frac) for b in b_ih]
    bh = [(b, lay.b_hh.frac) for b in b_hh]

    def pre(g):
        return narrow(m, *align(xw[g], bi[g], hw[g], bh[g]), f["pre"])

    def sig(v, fmt=f["pre"]):
        return nonlinearity(m, nl, "sigmoid", v, fmt, f["gate"])

    def tanh(v, fmt=f["pre"]):
        return nonlinearity(m, nl, "tanh", v, fmt, f["act"])

    gf = f["gate"].frac
    if cell == "rnn":
        return narrow(m, tanh(pre(0)), f["act"].frac, f["h"]), None
    if cell == "gru":
        r, z = sig(pre(0)), sig(pre(1))
        hn = narrow(m, *align(hw[2], bh[2]), f["pre"])
        npre = narrow(m, *align(xw[2], bi[2], (shift_add_mul(m, hn, r, use_mul=use_mul),
                                            gf + f["pre"].frac)), f["pre"])
        n = narrow(m, tanh(npre), f["act"].frac, f["h"])
        upd = (n << gf) + shift_add_mul(m, h - n, z, use_mul=use_mul)
        return narrow(m, upd, gf + f["h"].frac, f["h"]), None
    # lstm
    i, fg, g, o = sig(pre(0)), sig(pre(1)), tanh(pre(2)), sig(pre(3))
    c_new = narrow(m, *align((shift_add_mul(m, c, fg, use_mul=use_mul), gf + f["c"].frac),
                          (shift_add_mul(m, g, i, use_mul=use_mul), gf + f["act"].frac)), f["c"])
    t = tanh(c_new, f["c"])
    return narrow(m, shift_add_mul(m, t, o, use_mul=use_mul), gf + f["act"].frac, f["h"]), c_new


class CellUnit(wiring.Component):
    """One hidden unit's elementwise update as a standalone block (for tests and reuse).

    Parameters
    ----------
    model : golden.Model
    layer : int
        Which layer's scales, biases and formats to use.
    acc_ih_width, acc_hh_width : int
        Widths of the raw gate accumulators.
    """

    @silence_on_error
    def __init__(self, *, model: Model, layer: int, acc_ih_width: int, acc_hh_width: int,
                 bias_width: int = 32, use_mul: bool = False):
        if not 0 <= layer < len(model.layers):
            raise ValueError(f"layer must be in [0, {len(model.layers)}), got {layer}")
        for name, w in (("acc_ih_width", acc_ih_width), ("acc_hh_width", acc_hh_width),
                        ("bias_width", bias_width)):
            if not isinstance(w, int) or not 2 <= w <= 62:
                raise ValueError(f"{name} must be an integer in 2..62, got {w!r}")
        self.model, self.layer, self.use_mul = model, layer, use_mul
        G = model.gates
        f = model.formats
        cfmt = f["c"] if model.cell == "lstm" else Fixed(2, 0)
        super().__init__({
            "acc_ih": In(signed(acc_ih_width)).array(G),
            "acc_hh": In(signed(acc_hh_width)).array(G),
            "b_ih": In(signed(bias_width)).array(G),
            "b_hh": In(signed(bias_width)).array(G),
            "h": In(fmt_shape(f["h"])),
            "c": In(fmt_shape(cfmt)),
            "h_new": Out(fmt_shape(f["h"])),
            "c_new": Out(fmt_shape(cfmt)),
        })

    def elaborate(self, platform):
        m = Module()
        h, c = cell_update(m, self.model, self.layer, list(self.acc_ih), list(self.acc_hh),
                           list(self.b_ih), list(self.b_hh), self.h, self.c,
                           use_mul=self.use_mul)
        m.d.comb += self.h_new.eq(h)
        if c is not None:
            m.d.comb += self.c_new.eq(c)
        return m
