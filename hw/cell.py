"""Elementwise cell logic: from one hidden unit's gate accumulators to its new state, in stages.

The golden twin is golden's integer cell update (``golden.model`` run_int) applied to one unit.
:func:`cell_update` writes each cell as the stages of :func:`hw.timing.cell_stages` (one adder
level, or one addition and a saturation, each); a registered :class:`~hw.pipeline.Pipe` makes
them a pipeline that takes a new group every cycle (:class:`CellPipeline`), a combinational one
gives the block twin (:class:`CellUnit`). Biases and the old state are tables indexed by the
group, read in the stages before the one that needs them. A per-row scale constant would be one
more such table, read for the ``scale`` stage beside the per-matrix constant ``C``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import Fixed, Model

from .arith import const_mul, fmt_shape, narrow, nonlinearity_input, nonlinearity_output
from .buses import group_signature, vector_signature
from .params import silence_on_error
from .pipeline import Pipe, Stager, const_shape, reduce_levels
from .timing import PhasePlan, cell_stages, half_is_term, lstm_out_half

__all__ = ["CellPipeline", "CellUnit", "cell_update", "partial_products"]


def partial_products(a, b, *, one: int, use_mul: bool, shift: int = 0, half: int = 0) -> list:
    """``(a * b) << shift`` (+ ``half``) as terms to add, ``b`` a gate value in ``[0, 1.0]``
    with 1.0 at bit ``one``.

    ``a << i`` for each bit ``i`` of ``b`` up to ``one`` (no gate value sets a higher bit). A
    ``half`` below the lowest set position of the top term is OR-ed into that term's zero bits;
    otherwise it is one more term. The multiplier baseline: the one product.
    """
    if use_mul:
        terms = [(a * b) << shift]  # mult baseline only
    else:
        assert not b.shape().signed, "the multiplier operand must be unsigned (a gate value)"
        zero = Const(0, a.shape())
        top = min(b.shape().width - 1, one)
        terms = [Mux(b[i], a, zero) << (i + shift) for i in range(top)]
        low = top + shift
        if half and not half_is_term(low, half):
            return terms + [Cat(Const(half, low), Mux(b[top], a, zero)).as_signed()]
        terms.append(Mux(b[top], a, zero) << low)
    return terms + ([Const(half, const_shape(half))] if half else [])


def _at(v, frac: int, to: int):
    """``v`` at fractional position ``frac`` re-expressed at ``to >= frac`` (a left shift)."""
    return v << (to - frac)


class _Cell:
    """Shared helpers of the three cells for one lane (stage names: :func:`cell_stages`)."""

    def __init__(self, m, model: Model, layer: int, st: Stager, lane: dict, use_mul: bool):
        self.m, self.model, self.st, self.lane, self.use_mul = m, model, st, lane, use_mul
        self.f, self.lay = model.formats, model.layers[layer]
        #: ``W_ih`` as the engines sum it: input column scales folded into its codes
        self.w_ih = self.lay.input_matrix()
        fin = model.layer_input_format(layer) if layer == 0 else self.f["h"]
        self.fx, self.fh = fin.frac - self.w_ih.shift, self.f["h"].frac - self.lay.w_hh.shift
        #: Each gate's scale constants (one per matrix, or per gate with per-gate scales)
        gates = len(lane["acc_hh"])
        self.c_ih, self.c_hh = (w.block_multipliers(gates) for w in (self.w_ih, self.lay.w_hh))
        self.gf = self.f["gate"].frac
        #: Fractional position of a full gate's sum x W_ih + h W_hh + b_ih + b_hh.
        self.F = max(self.fx, self.lay.b_ih.frac, self.fh, self.lay.b_hh.frac)

    def scale(self, raw: tuple = ()) -> dict:
        """Stage ``scale``: each matrix's sums times its constant ``C``; the ``acc_ih`` of the
        gates in ``raw`` travel on unscaled (``raw``)."""
        m, um, acc = self.m, self.use_mul, self.lane["acc_ih"]
        return self.st.stage("scale", {
            "x": [const_mul(m, a, self.c_ih[q], use_mul=um) if q not in raw else None
                  for q, a in enumerate(acc)],
            "h": [const_mul(m, a, self.c_hh[q], use_mul=um)
                  for q, a in enumerate(self.lane["acc_hh"])],
            "raw": [acc[q] for q in raw]})

    def bias(self, which: str, q: int, frac: int, narrow_to: Fixed | None = None):
        """Gate ``q``'s bias for this stage's group at fractional position ``frac``: ``ih``,
        ``hh`` or ``full`` (the two added). With ``narrow_to``, the table also holds the
        rounding half of the narrowing from ``frac`` to that format (see ``narrow(rounded=)``).
        """
        own = {"ih": self.lay.b_ih.frac, "hh": self.lay.b_hh.frac}
        own["full"] = max(own.values())
        k = frac - narrow_to.frac if narrow_to is not None else 0
        half = (1 << (k - 1)) if k > 0 else 0
        return self.st.select([(b << (frac - own[which])) + half
                               for b in self.lane[f"b_{which}"][q]])

    def full_gates(self, s: dict, gates) -> tuple[list, dict]:
        """Stages ``bias`` and ``sum`` of the full gates: ``x W_ih + b`` then ``+ h W_hh``
        (the bias table holds the rounding half of the narrowing to ``formats.pre``)."""
        return [_at(s["x"][q], self.fx, self.F) + self.bias("full", q, self.F, self.f["pre"])
                for q in gates], [s["h"][q] for q in gates]

    def pre(self, v):
        return narrow(self.m, v, self.F, self.f["pre"], rounded=True)

    def nl_in(self, fn: str, v, fin: Fixed):
        """First half of a nonlinearity (an addition); :meth:`nl_out` saturates, a stage on."""
        fout = self.f["gate"] if fn == "sigmoid" else self.f["act"]
        return nonlinearity_input(self.m, self.model.nonlinearity, fn, v, fin, fout)

    def nl_out(self, fn: str, y, fin: Fixed):
        fout = self.f["gate"] if fn == "sigmoid" else self.f["act"]
        return nonlinearity_output(self.m, self.model.nonlinearity, fn, y, fin, fout)

    def act_h(self, y, fin: Fixed):
        """``narrow(tanh(.), act -> h)`` from the first half's ``y``."""
        return narrow(self.m, self.nl_out("tanh", y, fin), self.f["act"].frac, self.f["h"])

    def tree(self, prefix: str, terms: list, extra: dict) -> tuple:
        """Add ``terms`` one adder level per stage (the stages named ``prefix0``, ``prefix1``,
        ...), registering ``extra`` along; returns the sum and the last stage's ``extra``."""
        names = [n for n in self.st.names if n.startswith(prefix) and n[len(prefix):].isdigit()]
        for name in names:
            v = self.st.stage(name, {**extra, "t": reduce_levels(terms, 1)})
            terms, extra = v.pop("t"), v
        assert len(terms) == 1, f"{prefix}: {len(terms)} terms left after {len(names)} levels"
        return terms[0], extra


def _rnn(c: _Cell):
    st = c.st
    xb, hs = c.full_gates(c.scale(), [0])
    v = st.stage("bias", {"x": xb[0], "h": hs[0]})
    v = st.stage("sum", v["x"] + _at(v["h"], c.fh, c.F))
    v = st.stage("pre", c.pre(v))
    v = st.stage("act", c.nl_in("tanh", v, c.f["pre"]))
    return st.stage("act_sat", c.act_h(v, c.f["pre"])), None


def _gru(c: _Cell):
    f, st, gf, um, fp = c.f, c.st, c.gf, c.use_mul, c.f["pre"]
    lay = c.lay
    s = c.scale(raw=(2,))  # W_in x travels raw (a token's code is two bits) until needed
    fhn, fxn = max(c.fh, lay.b_hh.frac), max(c.fx, lay.b_ih.frac)
    xb, hs = c.full_gates(s, [0, 1])
    v = st.stage("bias", {"rz": xb, "h": hs, "xn": s["raw"][0],
                          "hn": _at(s["h"][2], c.fh, fhn) + c.bias("hh", 2, fhn, fp)})
    v = st.stage("sum", {"rz": [x + _at(h, c.fh, c.F) for x, h in zip(v["rz"], v["h"],
                                                                         strict=True)],
                         "hn": narrow(c.m, v["hn"], fhn, fp, rounded=True), "xn": v["xn"]})
    v = st.stage("pre", {"rz": [c.pre(x) for x in v["rz"]], "hn": v["hn"], "xn": v["xn"]})
    v = st.stage("gates", {"rz": [c.nl_in("sigmoid", x, fp) for x in v["rz"]], "hn": v["hn"],
                           "xn": const_mul(c.m, v["xn"], c.c_ih[2], use_mul=um)})
    v = st.stage("gates_sat", {"r": c.nl_out("sigmoid", v["rz"][0], fp),
                               "z": c.nl_out("sigmoid", v["rz"][1], fp), "hn": v["hn"],
                               "xn": _at(v["xn"], c.fx, fxn) + c.bias("ih", 2, fxn)})
    # W_in x + b_in + r * (W_hn h + b_hn), with the rounding half of the narrowing to pre
    fn = max(fxn, gf + fp.frac)
    terms = partial_products(v["hn"], v["r"], one=gf, use_mul=um, shift=fn - gf - fp.frac,
                             half=1 << (fn - fp.frac - 1) if fn > fp.frac else 0)
    n, v = c.tree("rhn", terms + [_at(v["xn"], fxn, fn)], {"z": v["z"]})
    v = st.stage("npre", {"z": v["z"], "n": narrow(c.m, n, fn, fp, rounded=True)})
    v = st.stage("n", {"z": v["z"], "n": c.nl_in("tanh", v["n"], fp)})
    v = st.stage("n_sat", {"z": v["z"], "n": c.act_h(v["n"], fp)})
    v = st.stage("upd_d", {"z": v["z"], "n": v["n"], "d": st.select(c.lane["h"]) - v["n"]})
    # h' = n + z * (h - n) at frac gf + h.frac, with the rounding half of the final narrowing
    terms = partial_products(v["d"], v["z"], one=gf, use_mul=um)
    n_term = Cat(Const(1 << (gf - 1), gf), v["n"]).as_signed() if gf else v["n"]
    u, _ = c.tree("upd", terms + [n_term], {})
    return st.stage("h", narrow(c.m, u, gf + f["h"].frac, f["h"], rounded=True)), None


def _lstm(c: _Cell):
    f, st, gf, um, fp = c.f, c.st, c.gf, c.use_mul, c.f["pre"]
    xb, hs = c.full_gates(c.scale(), range(4))
    v = st.stage("bias", {"x": xb, "h": hs})
    v = st.stage("sum", [x + _at(h, c.fh, c.F) for x, h in zip(v["x"], v["h"], strict=True)])
    p = st.stage("pre", [c.pre(x) for x in v])
    fns = ("sigmoid", "sigmoid", "tanh", "sigmoid")  # i, f, g, o
    y = st.stage("gates", [c.nl_in(fn, x, fp) for fn, x in zip(fns, p, strict=True)])
    v = dict(zip("ifgo", [c.nl_out(fn, x, fp) for fn, x in zip(fns, y, strict=True)],
                 strict=True))
    v = st.stage("gates_sat", v)
    # f * c + i * g, with the rounding half of the narrowing to formats.c
    fc, fcf = max(gf + f["c"].frac, gf + f["act"].frac), f["c"].frac
    terms = (partial_products(st.select(c.lane["c"]), v["f"], one=gf, use_mul=um,
                              shift=fc - gf - fcf, half=1 << (fc - fcf - 1) if fc > fcf else 0)
             + partial_products(v["g"], v["i"], one=gf, use_mul=um, shift=fc - gf - f["act"].frac))
    cs, v = c.tree("prod", terms, {"o": v["o"]})
    v = st.stage("c", {"o": v["o"], "c": narrow(c.m, cs, fc, f["c"], rounded=True)})
    v = st.stage("tanh_c", {"o": v["o"], "c": v["c"], "t": c.nl_in("tanh", v["c"], f["c"])})
    v = st.stage("tanh_c_sat", {"o": v["o"], "c": v["c"],
                                "t": c.nl_out("tanh", v["t"], f["c"])})
    # o * tanh(c), with the final narrowing's half
    terms = partial_products(v["t"], v["o"], one=gf, use_mul=um, half=lstm_out_half(f))
    out, v = c.tree("out", terms, {"c": v["c"]})
    v = st.stage("h", {"c": v["c"], "h": narrow(c.m, out, gf + f["act"].frac, f["h"],
                                                    rounded=True)})
    return v["h"], v["c"]


_CELLS = {"rnn": _rnn, "gru": _gru, "lstm": _lstm}


def cell_update(m: Module, model: Model, layer: int, st: Stager, lane: dict, *,
                use_mul: bool = False):
    """One lane's new ``(h, c)`` (``c`` is None except for LSTM), stage by stage.

    ``lane`` holds ``acc_ih``/``acc_hh`` (the raw gate accumulators ``codes @ x``, one per gate,
    before the matrix scale ``C``), ``b_ih``/``b_hh``/``b_full`` (per gate, a table over groups
    of the bias integers; ``b_full`` the two added) and ``h``/``c`` (tables over groups of the
    unit's old state).
    """
    h, c = _CELLS[model.cell](_Cell(m, model, layer, st, lane, use_mul))
    out = st.stage("write", {"h": h} | ({} if c is None else {"c": c}))
    return out["h"], out.get("c")


def full_bias(model: Model, layer: int, b_ih, b_hh):
    """``b_ih + b_hh`` aligned to the larger fractional position (integers or Values)."""
    lay = model.layers[layer]
    frac = max(lay.b_ih.frac, lay.b_hh.frac)
    return (b_ih << (frac - lay.b_ih.frac)) + (b_hh << (frac - lay.b_hh.frac))


def _lane_tables(model: Model, layer: int, plan: PhasePlan, e: int, state: dict) -> dict:
    """Per-group tables of lane ``e``: biases of every gate and the old state of its unit."""
    H, lay = model.hidden_size, model.layers[layer]
    units = [grp[e] for grp in plan.groups]

    def biases(b, q):
        return [int(b.ints[q * H + k]) if k is not None else 0 for k in units]

    tables = {"b_ih": [biases(lay.b_ih, q) for q in range(model.gates)],
              "b_hh": [biases(lay.b_hh, q) for q in range(model.gates)]}
    tables["b_full"] = [[full_bias(model, layer, i, h) for i, h in zip(bi, bh, strict=True)]
                        for bi, bh in zip(tables["b_ih"], tables["b_hh"], strict=True)]
    for name, sig in state.items():
        tables[name] = [sig.v[k] if k is not None else Const(0, sig.v[0].shape()) for k in units]
    return tables


class CellPipeline(wiring.Component):
    """The elementwise update of every lane of a layer, pipelined (:func:`cell_stages`).

    Takes a group's weighted sums (``sums``) in any cycle and delivers the group's new states on
    ``result`` ``len(cell_stages(model)) - 1`` cycles later, for the state bank to register. Reads
    the old state (``h``, and ``c`` for LSTM) of the units it updates.
    """

    @silence_on_error
    def __init__(self, *, model: Model, layer: int, plan: PhasePlan, acc_ih, acc_hh,
                 use_mul: bool = False):
        self.model, self.layer, self.plan, self.use_mul = model, layer, plan, use_mul
        f, G, E, H = model.formats, model.gates, plan.lanes, model.hidden_size
        ng = len(plan.groups)
        members = {
            "sums": In(group_signature(ng, {"ih": (acc_ih, E * G), "hh": (acc_hh, E * G)})),
            "h": In(vector_signature(H, fmt_shape(f["h"]))),
        }
        news = {"h": (fmt_shape(f["h"]), E)}
        if model.cell == "lstm":
            members["c"] = In(vector_signature(H, fmt_shape(f["c"])))
            news["c"] = (fmt_shape(f["c"]), E)
        members["result"] = Out(group_signature(ng, news))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        model, plan, G = self.model, self.plan, self.model.gates
        li = f"layer{self.layer}"
        pipe = Pipe.of(m, self.sums, groups=len(plan.groups), name=f"ew{self.layer}",
                       tables=f"{li}.b_ih+{li}.b_hh")
        state = {"h": self.h} | ({"c": self.c} if model.cell == "lstm" else {})
        names = cell_stages(model)
        for e in range(plan.lanes):
            st = pipe.stager(names, f"_{e}")
            lane = _lane_tables(model, self.layer, plan, e, state)
            lane["acc_ih"] = list(self.sums.ih[e * G:(e + 1) * G])
            lane["acc_hh"] = list(self.sums.hh[e * G:(e + 1) * G])
            h, c = cell_update(m, model, self.layer, st, lane, use_mul=self.use_mul)
            m.d.comb += self.result.h[e].eq(h)
            if c is not None:
                m.d.comb += self.result.c[e].eq(c)
        pipe.finish()
        #: The bias ROMs (:meth:`hw.pipeline.Pipe.finish`), known once elaborated.
        self.memories = pipe.memories
        m.d.comb += pipe.tag(self.result, len(names) - 1)
        return m


class CellUnit(wiring.Component):
    """One hidden unit's elementwise update, combinational (the stages as wires): the block
    twin of :class:`CellPipeline`, tested alone against golden.

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
        G, f = model.gates, model.formats
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
        pipe = Pipe(m, Const(1), Const(0), groups=1, registered=False, name="unit")
        lane = {"acc_ih": list(self.acc_ih), "acc_hh": list(self.acc_hh),
                "b_ih": [[b] for b in self.b_ih], "b_hh": [[b] for b in self.b_hh],
                "b_full": [[full_bias(self.model, self.layer, i, h)]
                           for i, h in zip(self.b_ih, self.b_hh, strict=True)],
                "h": [self.h], "c": [self.c]}
        st = pipe.stager(cell_stages(self.model))
        h, c = cell_update(m, self.model, self.layer, st, lane, use_mul=self.use_mul)
        m.d.comb += self.h_new.eq(h)
        if c is not None:
            m.d.comb += self.c_new.eq(c)
        return m
