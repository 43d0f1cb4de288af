"""Pipeline registers for datapaths written as a sequence of stages.

A datapath is written once, stage by stage (``values = stager.stage("name", values)`` ends a
stage); :class:`Pipe` decides whether the stage boundary is a register (the core) or a wire (the
combinational block twins tested alone). A *tag* travels with the data: a valid bit and the group
index, so that per-group constants (biases, the unit a lane computes) are selected at the stage
that uses them instead of being carried through every register.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Signal, Value, signed

__all__ = ["MUX_BITS", "Pipe", "Stager", "const_shape", "reduce_levels"]

#: Select bits of the widest multiplexer a registered pipeline puts in one stage.
MUX_BITS = 3


def const_shape(v: int):
    """A signed shape that holds ``v`` (at least 2 bits)."""
    return signed(max(2, abs(int(v)).bit_length() + 1))


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
    valid, group : Value
        Tag of the data entering stage 0.
    registered : bool
        Stage boundaries are registers (else wires: a combinational twin).
    name : str
        Prefix of the register names.
    """

    def __init__(self, m: Module, valid, group, *, registered: bool, name: str):
        self.m, self.registered, self.name = m, registered, name
        self._valid, self._group = [Value.cast(valid)], [Value.cast(group)]

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

    def group(self, k: int) -> Value:
        """Group index of the data in stage ``k``."""
        return self._delay(self._group, k, False, "group")

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
        constants takes the previous stage; a table of Values takes one stage per
        :data:`MUX_BITS` bits of the group (at most an 8:1 multiplexer per stage).
        """
        items = [Const(v, const_shape(v)) if isinstance(v, int) else Value.cast(v) for v in table]
        if len(items) == 1 or all(isinstance(v, int) and v == table[0] for v in table):
            return items[0]
        if not self.pipe.registered:
            return Array(items)[self.group]
        bits = max(1, (len(items) - 1).bit_length())
        steps = 1 if all(isinstance(v, int) for v in table) else -(-bits // MUX_BITS)
        if steps > self.depth:
            raise AssertionError(f"select at stage {self.depth} needs {steps} earlier stages")
        items += [items[-1]] * ((1 << bits) - len(items))
        for k in range(steps):
            stage = self.depth - steps + k
            low = bits * (k + 1) // steps - bits * k // steps  # group bits used by this step
            at = self.pipe.group(stage)[bits * k // steps:][:low]
            items = [self._reg(Array(items[i:i + (1 << low)])[at],
                               f"{self.pipe.name}{self.lane}_table{stage}_{i >> low}")
                     for i in range(0, len(items), 1 << low)]
        return items[0]
