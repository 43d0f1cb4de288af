"""Register banks written by the elementwise pipelines (a layer's state, the logits) and the
shared read ports of the folded engines into them."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arith import rom
from .buses import group_signature, read_signature, vector_signature
from .params import silence_on_error
from .pipeline import and_or, one_hot
from .timing import PhasePlan

__all__ = ["RAM_READS_FROM", "BankSelect", "RamSelect", "StateBank"]

#: Read ports times bank values from which a phase's bank is read through RAM copies
#: (:class:`RamSelect`) instead of multiplexers (:class:`BankSelect`).
RAM_READS_FROM = 256


def _slot_readers(select, p: int) -> tuple[list, Value]:
    """The read ports of ``select`` that have a slot ``p``, and the OR of their slot-``p``
    indices (the one index the shared read of slot ``p`` uses)."""
    readers = [getattr(select, f"r{r}") for r, k in enumerate(select.slots) if p < k]
    index = readers[0].index[p]
    for rd in readers[1:]:
        index = index | rd.index[p]
    return readers, index


class StateBank(wiring.Component):
    """Registers of one phase's results, written group by group from ``result``.

    Parameters
    ----------
    plan : hw.timing.PhasePlan
        Which unit (or output row) each lane of each group writes.
    fields : dict
        ``name: (shape, n)``: a bank of ``n`` registers per result field (``h``, ``c``, ``y``).
    buffered : tuple of str
        Fields the phase's own weighted sums still read while later groups run (a layer's ``h``):
        groups before the last go to a buffer, and the last group's arrival writes its results
        and copies the buffer in the same cycle, so nothing reads a half-updated state.

    ``done`` is high in the cycle the last group is written; ``clear`` zeroes every register.
    """

    @silence_on_error
    def __init__(self, *, plan: PhasePlan, fields: dict, buffered: tuple = ()):
        self.plan, self.fields, self.buffered = plan, fields, buffered
        ng, lanes = len(plan.groups), plan.lanes
        members = {
            "result": In(group_signature(ng, {k: (s, lanes) for k, (s, _) in fields.items()})),
            "clear": In(1),
            "done": Out(1),
        }
        members.update({k: Out(vector_signature(n, s)) for k, (s, n) in fields.items()})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        groups, res = self.plan.groups, self.result
        last = len(groups) - 1
        m.d.comb += self.done.eq(res.last)
        for name, (shape, _) in self.fields.items():
            regs, vals = getattr(self, name).v, getattr(res, name)
            buffer = {}
            if name in self.buffered and last > 0:
                buffer = {k: Signal(shape, name=f"{name}_next{k}")
                          for grp in groups[:-1] for k in grp if k is not None}
            with m.If(res.valid):  # the buffer does not need clearing: only the state
                with m.Switch(res.group):
                    for g, grp in enumerate(groups):
                        with m.Case(g):
                            dest = regs if g == last or not buffer else buffer
                            m.d.sync += [dest[k].eq(vals[e]) for e, k in enumerate(grp)
                                         if k is not None]
                            if g == last:
                                m.d.sync += [regs[k].eq(b) for k, b in buffer.items()]
            with m.If(self.clear):
                m.d.sync += [r.eq(0) for r in regs]
        return m


class BankSelect(wiring.Component):
    """Read ports into a register bank, shared by the engines that read it at different times.

    Port ``p`` returns ``bank[index]`` two cycles after ``index``, where ``index`` is the OR of
    the readers' port-``p`` indices: an idle reader drives 0, so one multiplexer per port
    serves every phase. The OR is registered, then decoded to one-hot lines (registered), which
    pick the value in an AND-OR multiplexer; the value is left for the reader to register.
    Reader ``r`` has ``slots[r]`` ports (at most ``max(slots)``).
    """

    @silence_on_error
    def __init__(self, *, n: int, shape, slots: list[int]):
        self.n, self.slots = n, slots
        self.index_bits = max(1, (n - 1).bit_length())
        members = {"bank": In(vector_signature(n, shape))}
        members.update({f"r{r}": In(read_signature(k, self.index_bits, shape))
                        for r, k in enumerate(slots)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        values = list(self.bank.v)
        for p in range(max(self.slots)):
            readers, index = _slot_readers(self, p)
            index_r = Signal(self.index_bits, name=f"index{p}", reset_less=True)
            lines = Signal(self.n, name=f"lines{p}", reset_less=True)
            m.d.sync += [index_r.eq(index), lines.eq(Cat(*one_hot(index_r, self.n)))]
            value = and_or(list(lines), values)
            m.d.comb += [rd.value[p].eq(value) for rd in readers]
        return m


class RamSelect(wiring.Component):
    """The read ports of :class:`BankSelect` (same contract: ``bank[index]`` two cycles after
    ``index``) for a bank a phase writes, served by RAM copies instead of multiplexers.

    Every port has one small RAM per lane of the writing phase, written from ``result`` as the
    bank is (lane ``e``'s value of group ``g`` at word ``g``), so a read is a RAM read and a
    ``lanes``:1 multiplexer. The RAMs hold two copies of the bank: the phase writes one while
    the ports read the other, and the last group's write swaps them, as the bank's buffer does.
    ``clear`` and reset make the ports read zeros until the next swap (the zero state of a
    sequence's first timestep, or of the first one after reset). The registered index is
    mapped to the unit's ``(lane, group)`` (``plan``), which addresses the RAMs; they register
    their output.
    """

    @silence_on_error
    def __init__(self, *, plan: PhasePlan, field: str, shape, slots: list[int]):
        self.plan, self.field, self.slots = plan, field, slots
        n = len(plan.units)
        self.index_bits = max(1, (n - 1).bit_length())
        ng = len(plan.groups)
        members = {"result": In(group_signature(ng, {field: (shape, plan.lanes)})),
                   "clear": In(1)}
        members.update({f"r{r}": In(read_signature(k, self.index_bits, shape))
                        for r, k in enumerate(slots)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        plan, res = self.plan, self.result
        values = getattr(res, self.field)
        gbits = max(1, (len(plan.groups) - 1).bit_length())
        lbits = (plan.lanes - 1).bit_length()
        where = {k: (g << lbits) | e for k, g, e in plan.units}
        table = [where.get(k, 0) for k in range(1 << self.index_bits)]
        half, zero = Signal(name="half"), Signal(init=1, name="zero")
        with m.If(res.valid & res.last):
            m.d.sync += [half.eq(~half), zero.eq(0)]
        with m.If(self.clear):
            m.d.sync += zero.eq(1)
        for p in range(max(self.slots)):
            readers, index = _slot_readers(self, p)
            index_r = Signal(self.index_bits, name=f"index{p}", reset_less=True)
            at = Signal(gbits + lbits, name=f"at{p}")
            lane_r = Signal(max(1, lbits), name=f"lane{p}", reset_less=True)
            m.d.sync += [index_r.eq(index), lane_r.eq(at[:lbits])]
            m.d.comb += at.eq(rom(m, table, unsigned(gbits + lbits), index_r))
            data = []
            for e in range(plan.lanes):
                mem = Memory(shape=values[e].shape(), depth=2 << gbits, init=[])
                m.submodules[f"copy{p}_{e}"] = mem
                wr, rd_port = mem.write_port(), mem.read_port(domain="sync")
                m.d.comb += [wr.addr.eq(Cat(res.group[:gbits], ~half)), wr.en.eq(res.valid),
                             wr.data.eq(values[e]), rd_port.addr.eq(Cat(at[lbits:], half))]
                data.append(rd_port.data)
            value = Mux(zero, 0, Array(data)[lane_r] if lbits else data[0])
            m.d.comb += [rd.value[p].eq(value) for rd in readers]
        return m
