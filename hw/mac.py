"""Weighted-sum engines: one per phase, folded (ROM-streamed entries) or unrolled (adder trees).

Both deliver each group's sums on a ``sums`` bus (:func:`hw.buses.group_signature`) in the
cycle they are final, ``MAC_DEPTH`` cycles after the group's last step (folded) or
:func:`hw.timing.tree_registers` cycles after the inputs are valid (unrolled). ``start`` begins the
phase; the values read must hold still from two cycles after ``start`` (folded: through read
ports ``rd_<acc>`` into a :class:`hw.state.BankSelect`) or from the next cycle (unrolled: whole
vectors ``v_<acc>``) until the phase ends.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arith import rom
from .buses import group_signature, read_signature, vector_signature
from .codes import CodeFormat, StreamLayout, slot_codes, token_table
from .params import silence_on_error
from .pipeline import Pipe, reduce_levels
from .timing import TREE_LEVELS, PhasePlan

__all__ = ["FoldedMac", "Source", "UnrolledMac", "index_bits"]


class Source:
    """A matrix a phase streams: accumulator ``name``, its codes, value vector shape and width.

    ``values`` is the length of the value vector (the matrix's columns); a token source has
    ``token_bits`` instead (its column is looked up, not summed).
    """

    def __init__(self, name, codes, fmt: CodeFormat, value_shape, acc_shape, token_bits=None):
        self.name, self.codes, self.fmt = name, codes, fmt
        self.value_shape, self.acc_shape, self.token_bits = value_shape, acc_shape, token_bits

    @property
    def values(self) -> int:
        return self.codes.shape[1]


def index_bits(n: int) -> int:
    """Bits of an index into ``n`` values (at least 1)."""
    return max(1, (n - 1).bit_length())


def _members(plan: PhasePlan, sources: list[Source], *, folded: bool) -> dict:
    members = {"start": In(1)}
    for s in sources:
        if s.token_bits is not None:
            members["token"] = In(unsigned(s.token_bits))
        elif folded:
            sig = read_signature(plan.slots, index_bits(s.values), s.value_shape)
            members[f"rd_{s.name}"] = Out(sig)
        else:
            members[f"v_{s.name}"] = In(vector_signature(s.values, s.value_shape))
    fields = {s.name: (s.acc_shape, plan.slots) for s in sources}
    members["sums"] = Out(group_signature(len(plan.groups), fields))
    return members


class FoldedMac(wiring.Component):
    """Folded engine: every cycle one ROM word gives each lane slot one ``(code, value)`` entry.

    Pipeline (one step per cycle, from the cycle after ``start``, which is registered): issue
    the address; the ROM reads; the word is registered;
    each slot sends its value index to the bank selectors; each slot takes its value; each slot
    forms its term; the terms accumulate (a group's first term replaces the sum). A token source
    reads its table once per group, beside the stream.
    """

    @silence_on_error
    def __init__(self, *, plan: PhasePlan, layout: StreamLayout, sources: list[Source],
                 token_table=None, name: str = "phase"):
        self.plan, self.layout, self.sources, self.token_table = plan, layout, sources, token_table
        self.name = name  # the ROMs are rom_<name> and tokens_<name>
        self.streamed = [s for s in sources if s.token_bits is None]
        super().__init__(_members(plan, sources, folded=True))

    def elaborate(self, platform):
        m = Module()
        lay, plan = self.layout, self.plan
        steps = sum(plan.steps)
        addr, issuing = Signal(range(max(2, steps)), name="addr"), Signal(name="issuing")
        self.begin = begin = Signal(name="begin")  # start, registered: its fan-out is wide
        m.d.sync += begin.eq(self.start)
        with m.If(begin):
            m.d.sync += [addr.eq(0), issuing.eq(1)]
        with m.Elif(issuing):
            m.d.sync += addr.eq(addr + 1)
            with m.If(addr == steps - 1):
                m.d.sync += issuing.eq(0)
        rom = Memory(shape=unsigned(lay.width), depth=steps, init=lay.words())
        m.submodules[f"rom_{self.name}"] = rom
        port = rom.read_port(domain="sync")
        m.d.comb += [port.addr.eq(addr), port.en.eq(issuing)]
        word = Signal(lay.width, name="word", reset_less=True)
        rom_valid, word_valid = Signal(name="rom_valid"), Signal(name="word_valid")
        m.d.sync += [rom_valid.eq(issuing), word_valid.eq(rom_valid), word.eq(port.data)]
        self._read(port.data, rom_valid, m)
        sel = self._select(m, self._index(m, word, word_valid))
        self._accumulate(m, self._term(m, sel))
        return m

    def _read(self, data, valid, m) -> None:
        """Each slot's value index, straight from the ROM's output, to the bank selectors
        (which answer two cycles later); 0 when idle or reading another source."""
        lay = self.layout
        _, indices, _ = lay.fields(data)
        for k, s in enumerate(self.streamed):
            rd = getattr(self, f"rd_{s.name}")
            for j, i in enumerate(indices):
                index = i[:len(rd.index[j])]
                active = valid if not lay.sel_bits else valid & (i[lay.col_bits:] == k)
                m.d.comb += rd.index[j].eq(Mux(active, index, 0))

    def _index(self, m, word, valid) -> dict:
        """Index stage (the selectors are reading): group counting; the token table read."""
        lay, ng = self.layout, len(self.plan.groups)
        codes, indices, last = lay.fields(word)
        group, first = Signal(range(max(2, ng)), name="group"), Signal(init=1, name="first")
        with m.If(self.begin):
            m.d.sync += [group.eq(0), first.eq(1)]
        with m.Elif(valid):
            m.d.sync += [first.eq(last), group.eq(group + last)]
        src = [i[lay.col_bits:] for i in indices] if lay.sel_bits else None
        out = {"valid": valid, "last": last, "first": first, "group": group, "code": codes,
               "src": src}
        if self.token_table is not None:
            words, width = self.token_table
            mem = Memory(shape=unsigned(width * self.plan.slots), depth=len(words), init=words)
            m.submodules[f"tokens_{self.name}"] = mem
            out["token"] = tok = mem.read_port(domain="sync")
            m.d.comb += [tok.addr.eq(Cat(self.token, group)), tok.en.eq(valid & last)]
        return _stage(m, out, "idx", skip=("token",))

    def _select(self, m, idx) -> dict:
        """Select stage: the selectors' values (of the source each slot reads); the token codes
        (read in the index stage) are held for the group."""
        values = [getattr(self, f"rd_{s.name}").value for s in self.streamed]
        src = idx["src"]
        out = {k: v for k, v in idx.items() if k != "token"}
        out["v"] = [values[0][j] if src is None else Mux(src[j], values[1][j], values[0][j])
                    for j in range(self.plan.slots)]
        if "token" in idx:
            held = Signal(idx["token"].data.shape(), name="token_codes", reset_less=True)
            with m.If(idx["valid"] & idx["last"]):
                m.d.sync += held.eq(idx["token"].data)
            out["token"] = held
        return _stage(m, out, "sel", skip=("token",))

    def _term(self, m, sel) -> dict:
        out = {k: v for k, v in sel.items() if k not in ("v", "code")}
        out["term"] = [self.layout.fmt.term(c, v) for c, v in zip(sel["code"], sel["v"],
                                                                  strict=True)]
        if "token" in sel:
            out["token"] = _reg(m, sel["token"], "term_token", False)
        return _stage(m, out, "term", skip=("token",))

    def _accumulate(self, m, t) -> None:
        slots = self.plan.slots
        with m.If(t["valid"]):
            for k, s in enumerate(self.streamed):
                for j, acc in enumerate(getattr(self.sums, s.name)):
                    add = t["term"][j] if t["src"] is None else Mux(t["src"][j] == k,
                                                                    t["term"][j], 0)
                    m.d.sync += acc.eq(Mux(t["first"], 0, acc) + add)
        done = t["valid"] & t["last"]
        final = len(self.plan.groups) - 1
        m.d.sync += self.sums.last.eq(done & (t["group"] == final))
        with m.If(done):
            m.d.sync += self.sums.group.eq(t["group"])
            if "token" in t:
                width = len(t["token"]) // slots
                name = next(s.name for s in self.sources if s.token_bits is not None)
                m.d.sync += [acc.eq(code) for acc, code in
                             zip(getattr(self.sums, name), slot_codes(t["token"], width),
                                 strict=True)]
        m.d.sync += self.sums.valid.eq(done)


def _stage(m, values: dict, name: str, skip=()) -> dict:
    """Register a dict of stage values (flags with reset, data without)."""
    out = {}
    for k, v in values.items():
        if v is None or k in skip:
            out[k] = v
        elif isinstance(v, list):
            out[k] = [_reg(m, x, f"{name}_{k}{i}", False) for i, x in enumerate(v)]
        else:
            out[k] = _reg(m, v, f"{name}_{k}", k == "valid")
    return out


def _reg(m, v, name, reset):
    r = Signal(v.shape(), name=name, reset_less=not reset)
    m.d.sync += r.eq(v)
    return r


def _tree_level(node: dict) -> dict:
    """One adder level of a tree of positive and negative terms (then one subtraction)."""
    p, n = node["p"], node["n"]
    if len(p) <= 1 and len(n) <= 1:
        return {"p": [p[0] - n[0] if p else -n[0]], "n": []} if n else node
    return {"p": reduce_levels(p, 1), "n": reduce_levels(n, 1)}


class UnrolledMac(wiring.Component):
    """Unrolled engine: each row's sum is an adder tree of its nonzero terms (wiring, adds and
    subtracts), registered every :data:`TREE_LEVELS` levels; ``registers`` registers deep."""

    @silence_on_error
    def __init__(self, *, plan: PhasePlan, sources: list[Source], registers: int):
        self.plan, self.sources, self.registers = plan, sources, registers
        super().__init__(_members(plan, sources, folded=False))

    def _token_codes(self, m: Module, s: Source) -> list:
        """Every row's code of the token's column, read from one ROM (a word per token)."""
        assert len(self.plan.groups) == 1, "an unrolled plan has one group"
        words, width = token_table(self.plan, s.codes, s.token_bits)
        return slot_codes(rom(m, words, unsigned(width * self.plan.slots), self.token), width)

    def _rows(self, m: Module, s: Source) -> list[dict]:
        """Each row's leaves: the token's code (one ROM read for all rows) or the terms."""
        if s.token_bits is not None:
            return [{"p": [code], "n": []} for code in self._token_codes(m, s)]
        return [self._leaves(s, self.plan.row(0, j)) for j in range(self.plan.slots)]

    def _leaves(self, s: Source, row: int) -> dict:
        vec, node = getattr(self, f"v_{s.name}").v, {"p": [], "n": []}
        for j, code in enumerate(s.codes[row].tolist()):
            for sign, t in s.fmt.const_terms(int(code), vec[j]):
                node["p" if sign > 0 else "n"].append(t)
        return node

    def elaborate(self, platform):
        m = Module()
        go = Signal(name="go")
        m.d.sync += go.eq(self.start)
        pipe = Pipe(m, go, Const(0), groups=1, registered=True, name="tree")
        names = tuple(f"tree{i}" for i in range(self.registers)) + ("sums",)
        st = pipe.stager(names)
        nodes = {s.name: self._rows(m, s) for s in self.sources}
        for name in names[:-1]:
            for _ in range(TREE_LEVELS):
                nodes = {k: [_tree_level(x) for x in v] for k, v in nodes.items()}
            nodes = st.stage(name, nodes)
        for s in self.sources:
            for acc, x in zip(getattr(self.sums, s.name), nodes[s.name], strict=True):
                assert len(x["p"]) <= 1 and not x["n"], "tree deeper than its registers"
                m.d.comb += acc.eq(x["p"][0] if x["p"] else 0)
        valid = pipe.valid(self.registers)
        m.d.comb += [self.sums.valid.eq(valid), self.sums.last.eq(valid), self.sums.group.eq(0)]
        return m
