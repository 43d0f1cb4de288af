"""The core's stream ends: registered ``ready`` on the input, an output slot of registers.

Every signal the ports show comes from a flip-flop, so the ports are defined from the first
clock edge after reset under any simulator's rules (Verilog-2005 or SystemVerilog).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .buses import vector_signature
from .params import silence_on_error

__all__ = ["InputStage", "OutputStage"]


class InputStage(wiring.Component):
    """Takes one beat when idle: ``ready`` is a register, high from the cycle after ``release``
    until the next handshake (``accept``, a one-cycle pulse). The beat's fields are registered
    (``x``: ``fields`` as ``(lsb, shape)``), as are its ``first``/``last`` flags; ``first_now``
    is the current timestep's ``first`` from its handshake cycle on."""

    @silence_on_error
    def __init__(self, *, layout: data.StructLayout, fields: list):
        self.fields = fields
        super().__init__({
            "i": In(stream.Signature(layout)),
            "x": Out(vector_signature(len(fields), fields[0][1])),
            "first": Out(1), "last": Out(1), "accept": Out(1), "first_now": Out(1),
            "release": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        busy = Signal(name="busy")
        busy_next = (busy | self.accept) & ~self.release
        m.d.comb += [self.accept.eq(self.i.valid & self.i.ready),
                     self.first_now.eq(Mux(self.accept, self.i.payload.first, self.first))]
        m.d.sync += [busy.eq(busy_next), self.i.ready.eq(~busy_next)]
        p = self.i.payload
        with m.If(self.accept):
            m.d.sync += [self.first.eq(p.first), self.last.eq(p.last)]
            m.d.sync += [x.eq(p.data[lsb:][:len(x)]) for x, (lsb, _) in zip(self.x.v, self.fields,
                                                                             strict=True)]
        return m


class OutputStage(wiring.Component):
    """The output slot. Its payload is the last bank's registers themselves (``y``), so the last
    phase may only write them while the slot is free: ``request`` asks to start that phase,
    ``start`` grants it as soon as the slot is free (or frees this cycle). ``done`` (the phase's
    last write) makes the slot valid, with the flags of the timestep. ``valid`` and the flags are
    registers."""

    @silence_on_error
    def __init__(self, *, layout: data.StructLayout, n: int, shape):
        super().__init__({
            "o": Out(stream.Signature(layout)),
            "y": In(vector_signature(n, shape)),
            "first": In(1), "last": In(1), "request": In(1), "start": Out(1), "done": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        waiting, first, last = Signal(name="waiting"), Signal(name="first"), Signal(name="last")
        want, free = self.request | waiting, ~self.o.valid | self.o.ready
        m.d.comb += [self.start.eq(want & free),
                     self.o.payload.as_value().eq(Cat(Cat(*self.y.v), first, last))]
        m.d.sync += waiting.eq(want & ~free)
        with m.If(self.done):
            m.d.sync += [self.o.valid.eq(1), first.eq(self.first), last.eq(self.last)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
