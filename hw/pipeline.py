"""Pipeline registers for datapaths written as a sequence of stages.

A datapath is written once, stage by stage (``values = stager.stage("name", values)`` ends a
stage); :class:`Pipe` decides whether the stage boundary is a register (the core) or a wire (the
combinational block twins tested alone). A *tag* travels with the data: a valid bit and the group
index, so that per-group constants (biases, the unit a lane computes) are selected at the stage
that uses them instead of being carried through every register.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib.memory import Memory

from golden import bits_signed
from golden.manifest import Memory as MemoryRecord

__all__ = ["Pipe", "Stager", "and_or", "const_shape", "one_hot", "reduce_levels"]


def const_shape(v: int):
    """A signed shape that holds ``v`` (at least 2 bits)."""
    return signed(max(2, abs(int(v)).bit_length() + 1))


def one_hot(index: Value, n: int) -> list[Value]:
    """``n`` lines, line ``i`` high when ``index == i``."""
    return [index == i for i in range(n)]


def and_or(lines: list, items: list) -> Value:
    """The item (all of one shape) whose one-hot line is high: OR over ``item & line``.

    With the decoded lines registered, a wide multiplexer costs a few LUT levels and about a
    third of the LUTs of a tree of 2:1 multiplexers on 4-input-LUT fabric.
    """
    shape = Value.cast(items[0]).shape()
    assert all(Value.cast(v).shape() == shape for v in items), "and_or needs one shape"
    terms = [Value.cast(v).as_unsigned() & line.replicate(shape.width)
             for v, line in zip(items, lines, strict=True)]
    while len(terms) > 1:
        terms = [terms[i] | terms[i + 1] for i in range(0, len(terms) - 1, 2)] + (
            [terms[-1]] if len(terms) % 2 else [])
    return terms[0].as_signed() if shape.signed else terms[0]


def reduce_levels(terms: list, levels: int) -> list:
    """Add pairs of ``terms`` for ``levels`` adder levels (a partial balanced tree)."""
    terms = [t for t in terms if t is not None]
    for _ in range(levels):
        if len(terms) <= 1:
            break
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = nxt + ([terms[-1]] if len(terms) % 2 else [])
    return terms


class Pipe:
    """The tag of a pipeline (valid bit and group index) at every stage.

    Parameters
    ----------
    m : Module
    valid, group, last : Value
        Tag of the data entering stage 0 (``last``: the phase's last group; default ``valid``,
        for one group).
    groups : int
        Groups of a phase: they enter in order 0, 1, ... and every phase runs to its end, so a
        later stage knows its group by counting the valid data passing it (a few flip-flops,
        where a delay line would take the group's bits in every stage).
    registered : bool
        Stage boundaries are registers (else wires: a combinational twin).
    name : str
        Prefix of the register and memory names.
    tables : str
        What the constant tables hold (for the memory records, e.g. ``layer0.b_ih+b_hh``).

    Constant tables indexed by the group (:meth:`Stager.select`) become one small ROM per stage
    (word ``g`` holds every table's entry for group ``g``), read in the stage before; call
    :meth:`finish` once every lane is built. :attr:`memories` then lists them.
    """

    def __init__(self, m: Module, valid, group, *, groups: int, registered: bool, name: str,
                 last=None, tables: str = ""):
        self.m, self.registered, self.name, self.groups = m, registered, name, groups
        self._valid, self._group = [Value.cast(valid)], {0: Value.cast(group)}
        self._last = [Value.cast(valid if last is None else last)]
        self.tables, self._consts, self.memories = tables, {}, []

    def _delay(self, chain: list, k: int, reset: bool, what: str) -> Value:
        while len(chain) <= k:
            prev = chain[-1]
            if not self.registered:
                chain.append(prev)
                continue
            r = Signal(prev.shape(), name=f"{self.name}_{what}{len(chain)}", reset_less=not reset)
            self.m.d.sync += r.eq(prev)
            chain.append(r)
        return chain[k]

    def valid(self, k: int) -> Value:
        """Valid bit of the data in stage ``k``."""
        return self._delay(self._valid, k, True, "valid")

    @classmethod
    def of(cls, m: Module, bus, *, groups: int, name: str, tables: str = "") -> Pipe:
        """A registered pipe tagged by a group bus (:func:`hw.buses.group_signature`)."""
        return cls(m, bus.valid, bus.group, last=bus.last, groups=groups, registered=True,
                   name=name, tables=tables)

    def const(self, k: int, table: list[int]) -> Signal:
        """``table[group]`` in stage ``k``, from the stage's constant ROM (see :meth:`finish`)."""
        lo, hi = min(table), max(table)
        s = Signal(signed(bits_signed(min(lo, 0), max(hi, 0))),
                   name=f"{self.name}_const{k}_{len(self._consts.get(k, []))}")
        self._consts.setdefault(k, []).append((table, s))
        return s

    def finish(self) -> None:
        """Build the constant ROMs: one per stage, read (once per group) in the stage before."""
        for k, entries in sorted(self._consts.items()):
            width = sum(len(s) for _, s in entries)
            words = []
            for g in range(self.groups):
                w, at = 0, 0
                for table, s in entries:
                    w |= (table[g] & ((1 << len(s)) - 1)) << at
                    at += len(s)
                words.append(w)
            name = f"consts_{self.name}_{k}"
            self.m.submodules[name] = rom = Memory(shape=unsigned(width), depth=self.groups,
                                                   init=words)
            port = rom.read_port(domain="sync")
            self.m.d.comb += [port.addr.eq(self.group(k - 1)), port.en.eq(self.valid(k - 1))]
            at = 0
            for _, s in entries:
                self.m.d.comb += s.eq(port.data[at:at + len(s)].as_signed())
                at += len(s)
            self.memories.append(MemoryRecord(name, self.tables, self.groups, width, self.groups))

    def tag(self, bus, k: int) -> list:
        """Statements driving a group bus's tag from stage ``k``."""
        return [bus.valid.eq(self.valid(k)), bus.group.eq(self.group(k)),
                bus.last.eq(self.last(k))]

    def last(self, k: int) -> Value:
        """Valid data of the phase's last group in stage ``k`` (a register: it starts the next
        phase)."""
        return self._delay(self._last, k, True, "last")

    def group(self, k: int) -> Value:
        """Group index of the data in stage ``k``."""
        if k not in self._group:
            if not self.registered or self.groups == 1:
                return self._group[0]
            count = Signal(range(self.groups), name=f"{self.name}_group{k}")
            with self.m.If(self.valid(k)):
                self.m.d.sync += count.eq(Mux(count == self.groups - 1, 0, count + 1))
            self._group[k] = count
        return self._group[k]

    def stager(self, names: tuple[str, ...], lane: str = "") -> Stager:
        """A view of this pipe for one lane's datapath with the given stage names."""
        return Stager(self, names, lane)


class Stager:
    """One lane's walk through the stages of a :class:`Pipe` (see :meth:`stage`)."""

    def __init__(self, pipe: Pipe, names: tuple[str, ...], lane: str):
        self.pipe, self.names, self.lane, self.depth, self.done = pipe, names, lane, 0, False

    def stage(self, name: str, values):
        """End stage ``name`` (stages end in order): register ``values``, a Value or a (nested)
        list/dict of them, for the next stage. The last stage's values are returned as they are:
        whoever consumes them registers them (the state), still in this stage's cycle."""
        if self.depth >= len(self.names) or self.names[self.depth] != name or self.done:
            raise AssertionError(f"stage {name!r} out of order; expected {self.names}")
        if self.depth == len(self.names) - 1:
            self.done = True
            return values
        self.depth += 1
        if not self.pipe.registered:
            return values
        return self._reg(values, f"{self.pipe.name}{self.lane}_{name}")

    def _reg(self, v, name: str):
        if v is None:
            return None
        if isinstance(v, dict):
            return {k: self._reg(x, f"{name}_{k}") for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [self._reg(x, f"{name}_{i}") for i, x in enumerate(v)]
        v = Value.cast(v)
        r = Signal(v.shape(), name=name, reset_less=True)
        self.pipe.m.d.sync += r.eq(v)
        return r

    @property
    def group(self) -> Value:
        """Group index of the data in the current stage."""
        return self.pipe.group(self.depth)

    @property
    def valid(self) -> Value:
        return self.pipe.valid(self.depth)

    def select(self, table: list) -> Value:
        """``table[group]`` for the current stage: integers become constants; Values are muxed.

        In a registered pipe the lookup works in earlier stages, on their groups, and its
        result is registered: it costs no logic depth in the stage using it. A table of
        constants is a ROM read in the previous stage (:meth:`Pipe.const`); a table of Values
        takes two (a registered one-hot decode of the group, then an AND-OR multiplexer: see
        :func:`one_hot`).
        """
        items = [Const(v, const_shape(v)) if isinstance(v, int) else Value.cast(v) for v in table]
        if len(items) == 1 or all(isinstance(v, int) and v == table[0] for v in table):
            return items[0]
        if not self.pipe.registered:
            return Array(items)[self.group]
        name = f"{self.pipe.name}{self.lane}_table{self.depth}"
        if all(isinstance(v, int) for v in table):
            if self.depth == 0:
                raise AssertionError("a constant table at stage 0 needs one before it")
            return self.pipe.const(self.depth, [int(v) for v in table])
        if self.depth < 2:
            raise AssertionError(f"a table of values at stage {self.depth} needs two before it")
        lines = self._reg(Cat(*one_hot(self.pipe.group(self.depth - 2), len(items))),
                          f"{name}_line")
        return self._reg(and_or(list(lines), items), name)
