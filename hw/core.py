"""The recurrent accelerator: weighted sums, cell updates, dense head, stream handshake.

Architecture (docs/hardware.md): ``lanes`` hidden units are computed in parallel, each with one
accumulator per gate and per matrix (``W_ih`` and ``W_hh`` have different scales). Folded designs
stream one column per cycle from a weight-code ROM (sync read: one cycle of latency); unrolled
designs turn every weight into wiring (zero weights vanish) and sum whole rows in one cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import Fixed, Model, QuantMatrix, bits_signed, csd_digits
from golden.manifest import Memory as MemoryRecord
from golden.manifest import input_fields, output_fields

from .arith import align, const_mul, fmt_shape, narrow, tree_sum, wire
from .cell import cell_update
from .layouts import beat_layout
from .params import silence_on_error

__all__ = ["DATAPATHS", "MatrixCodes", "RecurrentCore", "Timing", "timing"]

DATAPATHS = ("shiftadd", "mult")


@dataclass(frozen=True)
class Timing:
    """Exact cycle counts of one timestep (no stalls)."""

    cycles_per_timestep: int
    latency: int
    phases: dict
    formula: str


def _groups(n: int, lanes: int) -> int:
    return math.ceil(n / lanes)


def timing(model: Model, *, lanes: int | None, unrolled: bool) -> Timing:
    """Cycle formula of the generated design; the simulation must measure exactly this.

    Per layer ``l``: ``groups_l * (mac_l + 1) + 1`` cycles (``mac_l = cols_l + 1`` folded, the
    ``+1`` being the ROM read latency, or ``1`` unrolled; then one elementwise cycle per group and
    one copy cycle). Head: ``groups_h * (mac_h + 1)``. Plus one accept cycle and one output cycle.
    """
    H = model.hidden_size
    phases = {"accept": 1}
    total = 1
    for li in range(len(model.layers)):
        cols = (1 if model.input_kind == "token" else model.input_size) if li == 0 else H
        if unrolled:
            groups, mac = 1, 1
        else:
            groups, mac = _groups(H, lanes), cols + H + 1
        n = groups * (mac + 1) + 1
        phases[f"layer{li}"] = n
        total += n
    if model.head is not None:
        if unrolled:
            groups, mac = 1, 1
        else:
            groups, mac = _groups(model.output_size, head_lanes(model, lanes)), H + 1
        phases["head"] = groups * (mac + 1)
        total += phases["head"]
    phases["output"] = 1
    total += 1
    if unrolled:
        formula = "1 + sum_l 3 + (2 if head) + 1"
    else:
        formula = ("1 + sum_l [ceil(H/lanes) * (cols_l + H + 2) + 1] "
                   "+ ceil(O/head_lanes) * (H + 2) + 1; cols_0 = 1 for token input")
    return Timing(total, total, phases, formula)


def head_lanes(model: Model, lanes: int) -> int:
    """Output rows computed in parallel by the folded head: as many as the layer's accumulators."""
    return min(model.output_size, lanes * model.gates)


class MatrixCodes:
    """How one quantized matrix's codes become hardware terms.

    Shift-add datapath: each code is up to ``digits`` CSD digits ``(nz, neg, shift)``; a term is
    ``sum(±(v << shift))``. Multiplier baseline: the code is a signed integer and the term is
    ``v * code``.
    """

    def __init__(self, q: QuantMatrix, vfmt: Fixed, *, use_mul: bool):
        self.q, self.use_mul = q, use_mul
        codes = q.codes
        vmax = max(-vfmt.min_int, vfmt.max_int)
        bound = int(np.abs(codes).sum(axis=1).max(initial=0)) * vmax
        self.acc_shape = signed(bits_signed(-bound, bound))
        uniq = [int(v) for v in np.unique(codes)]
        digs = {v: csd_digits(v) for v in uniq}
        self.digits = max(1, max((len(d) for d in digs.values()), default=1))
        max_shift = max((k for d in digs.values() for _, k in d), default=0)
        self.shift_bits = max_shift.bit_length()
        self.code_shape = signed(bits_signed(min(uniq + [0]), max(uniq + [0])))
        self.word_width = (self.code_shape.width if use_mul
                           else self.digits * (2 + self.shift_bits))

    def word(self, code: int) -> int:
        """The ROM bits of one code."""
        if self.use_mul:
            return int(code) & ((1 << self.word_width) - 1)
        w, step = 0, 2 + self.shift_bits
        for d, (s, k) in enumerate(csd_digits(int(code))):
            w |= (1 | ((s < 0) << 1) | (k << 2)) << (d * step)
        return w

    def term(self, word: Value, v: Value) -> Value:
        """``code * v`` from a ROM word (a runtime value)."""
        if self.use_mul:
            return v * word.as_signed()  # mult baseline only
        step, terms = 2 + self.shift_bits, []
        for d in range(self.digits):
            base = d * step
            sh = (v << word[base + 2: base + step]) if self.shift_bits else v
            terms.append(Mux(word[base], Mux(word[base + 1], -sh, sh), 0))
        return tree_sum(terms)

    def const_term(self, code: int, v: Value) -> Value | None:
        """``code * v`` for a constant code: wiring, adds and subtracts; None when zero."""
        if code == 0:
            return None
        if self.use_mul:
            return v * Const(int(code), self.code_shape)  # mult baseline only
        return tree_sum([(v << k) if s > 0 else -(v << k) for s, k in csd_digits(int(code))])


class RecurrentCore(wiring.Component):
    """The whole network as a stream component: one input beat in, one output beat out.

    Parameters
    ----------
    model : golden.Model
    lanes : int or None
        Hidden units computed in parallel (folded); ignored when ``unrolled``.
    unrolled : bool
        Weights as wiring, a whole matrix-vector product per cycle.
    datapath : {'shiftadd', 'mult'}
        ``mult`` is the multiplier baseline (the one place ``*`` is allowed).
    """

    @silence_on_error
    def __init__(self, *, model: Model, lanes: int | None = None, unrolled: bool = False,
                 datapath: str = "shiftadd"):
        if not isinstance(model, Model):
            raise TypeError("model must be a golden.Model")
        if datapath not in DATAPATHS:
            raise ValueError(f"datapath must be one of {', '.join(DATAPATHS)}, got {datapath!r}")
        if unrolled:
            lanes = model.hidden_size
        elif not isinstance(lanes, int) or not 1 <= lanes <= model.hidden_size:
            raise ValueError(f"lanes must be an integer in 1..{model.hidden_size} (the hidden "
                             f"size), or use unrolled; got {lanes!r}")
        self.model, self.lanes, self.unrolled, self.datapath = model, lanes, unrolled, datapath
        self.timing = timing(model, lanes=lanes, unrolled=unrolled)
        self.in_kind, self.in_fields = input_fields(model)
        self.out_kind, self.out_fields = output_fields(model)
        self.in_layout = beat_layout(max(f.lsb + f.width for f in self.in_fields))
        self.out_layout = beat_layout(max(f.lsb + f.width for f in self.out_fields))
        #: Weight memories built by :meth:`elaborate` (filled during elaboration).
        self.memories: list[MemoryRecord] = []
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    # ----------------------------------------------------------------- helpers
    def _rom(self, m, name, mc: MatrixCodes, rows_of_group, ncols, *, matrix: str, reads: int):
        """A weight-code ROM: word (group, column) holds every slot's code.

        Records it in :attr:`memories` (``reads`` word reads per timestep) for the manifest.
        """
        init = []
        for g in range(len(rows_of_group)):
            for j in range(ncols):
                w = 0
                for s, row in enumerate(rows_of_group[g]):
                    if row is not None:
                        w |= mc.word(int(mc.q.codes[row, j])) << (s * mc.word_width)
                init.append(w)
        width = mc.word_width * len(rows_of_group[0])
        mem = Memory(shape=unsigned(width), depth=len(init), init=init)
        m.submodules[name] = mem
        self.memories.append(MemoryRecord(name, matrix, len(init), width, reads))
        return mem.read_port(domain="sync")

    def elaborate(self, platform):
        m = Module()
        self.memories = []
        model, E, unrolled = self.model, self.lanes, self.unrolled
        use_mul = self.datapath == "mult"
        f, H, G, L = model.formats, model.hidden_size, model.gates, len(model.layers)
        token = model.input_kind == "token"

        # ------------------------------------------------------------ registers
        if token:
            x_tok = Signal(range(max(2, model.input_size)), name="x_tok")
            xs = None
        else:
            xs = [Signal(fmt_shape(f["x"]), name=f"x{j}") for j in range(model.input_size)]
        h = [[Signal(fmt_shape(f["h"]), name=f"h{li}_{k}") for k in range(H)] for li in range(L)]
        c = ([[Signal(fmt_shape(f["c"]), name=f"c{li}_{k}") for k in range(H)]
              for li in range(L)] if model.cell == "lstm" else None)
        hnew = [Signal(fmt_shape(f["h"]), name=f"hnew{k}") for k in range(H)]
        first_r, last_r = Signal(name="first_r"), Signal(name="last_r")
        ngroups = 1 if unrolled else _groups(H, E)
        head_groups = 0
        if model.head is not None and not unrolled:
            head_groups = _groups(model.output_size, head_lanes(model, E))
        grp = Signal(range(max(2, ngroups + 1, head_groups + 1)), name="grp")
        max_cols = max([model.input_size, 1]) + H + 2
        col = Signal(range(max_cols + 1), name="col")
        out_valid = Signal(name="out_valid")
        out_data = Signal(self.out_layout.size, name="out_data")

        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.as_value().eq(out_data)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_valid.eq(0)

        # -------------------------------------------------------------- layers
        layer_hw = []
        for li, lay in enumerate(model.layers):
            vin_fmt = model.layer_input_format(li) if li == 0 else f["h"]
            vin = None if (li == 0 and token) else (xs if li == 0 else h[li - 1])
            mc_ih = MatrixCodes(lay.w_ih, vin_fmt, use_mul=use_mul)
            mc_hh = MatrixCodes(lay.w_hh, f["h"], use_mul=use_mul)
            acc_ih = [[Signal(mc_ih.acc_shape, name=f"acc_ih{li}_{e}_{q}") for q in range(G)]
                      for e in range(E)]
            acc_hh = [[Signal(mc_hh.acc_shape, name=f"acc_hh{li}_{e}_{q}") for q in range(G)]
                      for e in range(E)]
            layer_hw.append((lay, mc_ih, mc_hh, vin, acc_ih, acc_hh))

        # Head
        if model.head is not None:
            Eo = model.output_size if unrolled else head_lanes(model, E)
            mc_o = MatrixCodes(model.head.w, f["h"], use_mul=use_mul)
            acc_o = [Signal(mc_o.acc_shape, name=f"acc_o{e}") for e in range(Eo)]
            logits = [Signal(fmt_shape(f["out"]), name=f"logit{k}")
                      for k in range(model.output_size)]
            ngroups_o = 1 if unrolled else _groups(model.output_size, Eo)

        # Folded MAC pipeline stage registers (shared by every pass; one pass runs at a time).
        if not unrolled:
            vwidth = max(f["h"].bits, f["x"].bits, 2)
            v_pipe = Signal(signed(vwidth), name="v_pipe")
            seg_pipe = Signal(range(2 * L + 2), name="seg_pipe")  # which accumulator set
            first_pipe = Signal(name="first_pipe")
            valid_pipe = Signal(name="valid_pipe")
            m.d.sync += valid_pipe.eq(0)

        def fold_mac(seg_base, segs):
            """Issue stage of a folded pass. segs: [(ncols, port, addr_fn, value_fn), ...]."""
            start = 0
            ncols = sum(s[0] for s in segs)
            for si, (n, port, addr_fn, value_fn) in enumerate(segs, start=seg_base):
                in_seg = (col < start + n) if start == 0 else (col >= start) & (col < start + n)
                with m.If(in_seg):
                    j = col - start
                    m.d.comb += port.addr.eq(addr_fn(j))
                    m.d.sync += [v_pipe.eq(value_fn(j)), seg_pipe.eq(si),
                                 first_pipe.eq(col == start), valid_pipe.eq(1)]
                start += n
            m.d.sync += col.eq(col + 1)
            return ncols

        def accumulate(seg_index, port, mc, accs, slot_count):
            """Accumulate stage: runs the cycle after each issue."""
            with m.If(valid_pipe & (seg_pipe == seg_index)):
                for s in range(slot_count):
                    word = port.data[s * mc.word_width: (s + 1) * mc.word_width]
                    acc = accs[s]
                    m.d.sync += acc.eq(Mux(first_pipe, 0, acc) + mc.term(word, v_pipe))

        # ROM row base addresses ``grp * n``, by shift-and-add, computed outside the FSM.
        grp_products = {}
        if not unrolled:
            ns = {H} | ({model.input_size} if model.input_size else set())
            for n in sorted(ns):
                grp_products[n] = wire(m, const_mul(m, grp, n), f"grp_x{n}")

        def grp_times(n):
            return grp_products[n]

        # ----------------------------------------------------------------- FSM
        deferred = []  # accumulate stages, placed after the FSM
        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    p = self.i.payload
                    if token:
                        m.d.sync += x_tok.eq(p.data[: len(x_tok)])
                    else:
                        for j, fd in enumerate(self.in_fields):
                            m.d.sync += xs[j].eq(p.data[fd.lsb: fd.lsb + fd.width])
                    m.d.sync += [first_r.eq(p.first), last_r.eq(p.last), grp.eq(0), col.eq(0)]
                    with m.If(p.first):
                        for li in range(L):
                            m.d.sync += [s.eq(0) for s in h[li]]
                            if c is not None:
                                m.d.sync += [s.eq(0) for s in c[li]]
                    m.next = "L0_MAC"

            for li, (lay, mc_ih, mc_hh, vin, acc_ih, acc_hh) in enumerate(layer_hw):
                nxt = (f"L{li + 1}_MAC" if li + 1 < L else
                       ("HEAD_MAC" if model.head is not None else "OUT"))
                # slot s = e*G + q  <->  row q*H + g*E + e
                rows_of_group = [[(q * H + g * E + e) if g * E + e < H else None
                                  for e in range(E) for q in range(G)] for g in range(ngroups)]
                with m.State(f"L{li}_MAC"):
                    if unrolled:
                        self._unrolled_layer(m, li, mc_ih, mc_hh, vin, h[li], acc_ih, acc_hh,
                                             x_tok if token else None)
                        m.next = f"L{li}_EW"
                    else:
                        n_in = model.input_size if li == 0 else H
                        port_ih = self._rom(m, f"rom_ih{li}", mc_ih, rows_of_group, n_in,
                                            matrix=f"layer{li}.w_ih",
                                            reads=ngroups * (1 if vin is None else n_in))
                        if vin is None:  # token: one read of the token's column, times 1
                            seg_ih = (1, port_ih, lambda j, n=n_in: grp_times(n) + x_tok,
                                      lambda j: Const(1, signed(2)))
                        else:
                            seg_ih = (n_in, port_ih, lambda j, n=n_in: grp_times(n) + j,
                                      lambda j, v=vin: Array(v)[j])
                        port_hh = self._rom(m, f"rom_hh{li}", mc_hh, rows_of_group, H,
                                            matrix=f"layer{li}.w_hh", reads=ngroups * H)
                        seg_hh = (H, port_hh, lambda j: grp_times(H) + j,
                                  lambda j, v=h[li]: Array(v)[j])
                        ncols = fold_mac(2 * li, [seg_ih, seg_hh])
                        with m.If(col == ncols):
                            m.d.sync += col.eq(0)
                            m.next = f"L{li}_EW"
                if not unrolled:
                    flat_ih = [a for e in range(E) for a in acc_ih[e]]
                    flat_hh = [a for e in range(E) for a in acc_hh[e]]
                    deferred.append((2 * li, port_ih, mc_ih, flat_ih, E * G))
                    deferred.append((2 * li + 1, port_hh, mc_hh, flat_hh, E * G))

                with m.State(f"L{li}_EW"):
                    self._elementwise(m, li, lay, acc_ih, acc_hh, h[li],
                                      None if c is None else c[li], hnew, grp, ngroups, use_mul)
                    with m.If(grp == ngroups - 1):
                        m.d.sync += grp.eq(0)
                        m.next = f"L{li}_COPY"
                    with m.Else():
                        m.d.sync += grp.eq(grp + 1)
                        m.next = f"L{li}_MAC"

                with m.State(f"L{li}_COPY"):
                    m.d.sync += [h[li][k].eq(hnew[k]) for k in range(H)]
                    m.d.sync += [grp.eq(0), col.eq(0)]
                    m.next = nxt

            if model.head is not None:
                n_out = model.output_size
                rows_o = [[(g * Eo + e) if g * Eo + e < n_out else None for e in range(Eo)]
                          for g in range(ngroups_o)]
                with m.State("HEAD_MAC"):
                    if unrolled:
                        for k in range(n_out):
                            terms = [mc_o.const_term(int(model.head.w.codes[k, j]), h[L - 1][j])
                                     for j in range(H)]
                            m.d.sync += acc_o[k].eq(tree_sum(terms))
                        m.next = "HEAD_W"
                    else:
                        port_o = self._rom(m, "rom_head", mc_o, rows_o, H, matrix="head.w",
                                           reads=ngroups_o * H)
                        ncols = fold_mac(2 * L, [(H, port_o, lambda j: grp_times(H) + j,
                                                   lambda j: Array(h[L - 1])[j])])
                        with m.If(col == ncols):
                            m.d.sync += col.eq(0)
                            m.next = "HEAD_W"
                if not unrolled:
                    deferred.append((2 * L, port_o, mc_o, acc_o, Eo))
                with m.State("HEAD_W"):
                    hb = model.head.b
                    for e in range(Eo):
                        consts = [int(hb.ints[r]) if r is not None else 0
                                  for r in (rows_o[g][e] for g in range(ngroups_o))]
                        bias = Array(Const(b, signed(max(2, abs(b).bit_length() + 1)))
                                     for b in consts)[grp] if ngroups_o > 1 else \
                            Const(consts[0], signed(max(2, abs(consts[0]).bit_length() + 1)))
                        val = narrow(m, *align(
                            (const_mul(m, acc_o[e], model.head.w.C, use_mul=use_mul),
                             f["h"].frac - model.head.w.shift), (bias, hb.frac)), f["out"])
                        with m.Switch(grp):
                            for g in range(ngroups_o):
                                k = rows_o[g][e]
                                if k is not None:
                                    with m.Case(g):
                                        m.d.sync += logits[k].eq(val)
                    with m.If(grp == ngroups_o - 1):
                        m.d.sync += grp.eq(0)
                        m.next = "OUT"
                    with m.Else():
                        m.d.sync += grp.eq(grp + 1)
                        m.next = "HEAD_MAC"

            with m.State("OUT"):
                with m.If(~out_valid | self.o.ready):
                    result = logits if model.head is not None else h[L - 1]
                    payload = Cat(Cat(*result), first_r, last_r)
                    m.d.sync += [out_data.eq(payload), out_valid.eq(1)]
                    m.next = "IDLE"
        for args in deferred:
            accumulate(*args)
        return m

    def _unrolled_layer(self, m, li, mc_ih, mc_hh, vin, hself, acc_ih, acc_hh, x_tok):
        """One cycle: every row's weighted sum as a constant shift-add tree."""
        model = self.model
        lay = model.layers[li]
        H, G = model.hidden_size, model.gates
        for k in range(H):
            for q in range(G):
                row = q * H + k
                if vin is None:  # token: a column select of constants
                    codes = [int(v) for v in lay.w_ih.codes[row]]
                    m.d.sync += acc_ih[k][q].eq(
                        Array(Const(v, mc_ih.acc_shape) for v in codes)[x_tok])
                else:
                    m.d.sync += acc_ih[k][q].eq(tree_sum(
                        [mc_ih.const_term(int(lay.w_ih.codes[row, j]), vin[j])
                         for j in range(len(vin))]))
                m.d.sync += acc_hh[k][q].eq(tree_sum(
                    [mc_hh.const_term(int(lay.w_hh.codes[row, j]), hself[j]) for j in range(H)]))

    def _elementwise(self, m, li, lay, acc_ih, acc_hh, hl, cl, hnew, grp, ngroups, use_mul):
        """Each lane updates its unit of the current group; results go to ``hnew`` (and c)."""
        model = self.model
        H, G, E = model.hidden_size, model.gates, self.lanes

        def by_group(values):
            vals = list(values)
            return vals[0] if len(vals) == 1 else Array(vals)[grp]

        def bias(b, e, q):
            consts = [int(b.ints[q * H + g * E + e]) if g * E + e < H else 0
                      for g in range(ngroups)]
            return by_group(Const(v, signed(max(2, abs(v).bit_length() + 1))) for v in consts)

        for e in range(E):
            units = [g * E + e for g in range(ngroups)]
            h_old = by_group(hl[k] if k < H else Const(0, hl[0].shape()) for k in units)
            c_old = (by_group(cl[k] if k < H else Const(0, cl[0].shape()) for k in units)
                     if cl is not None else None)
            h_new, c_new = cell_update(
                m, model, li, acc_ih[e], acc_hh[e], [bias(lay.b_ih, e, q) for q in range(G)],
                [bias(lay.b_hh, e, q) for q in range(G)], h_old, c_old, use_mul=use_mul)
            with m.Switch(grp):
                for g, k in enumerate(units):
                    if k < H:
                        with m.Case(g):
                            m.d.sync += hnew[k].eq(h_new)
                            if cl is not None:
                                m.d.sync += cl[k].eq(c_new)
