"""The recurrent accelerator: small components wired together (docs/hardware.md, Datapath).

Per phase (each layer, then the head) a weighted-sum engine (:mod:`hw.mac`) feeds an elementwise
pipeline (:mod:`hw.cell`, :mod:`hw.head`) that writes a register bank (:mod:`hw.state`). The
input stage's handshake starts the first phase, each bank's ``done`` starts the next, and the
last one loads the output slot (:mod:`hw.stream`). The plans and cycle counts come from
:mod:`hw.timing`, the ROM contents from :mod:`hw.codes`.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden import Model
from golden.manifest import Memory as MemoryRecord
from golden.manifest import input_fields, output_fields

from . import state
from .arith import fmt_shape
from .cell import CellPipeline
from .codes import CodeFormat, MatrixCodes, StreamLayout, token_table, token_width
from .head import HeadPipeline
from .layouts import beat_layout
from .mac import FoldedMac, Source, UnrolledMac
from .params import silence_on_error
from .state import BankSelect, RamSelect, StateBank
from .stream import InputStage, OutputStage
from .timing import Timing, timing, unrolled_registers

__all__ = ["DATAPATHS", "RecurrentCore", "Timing", "timing"]

DATAPATHS = ("shiftadd", "mult")


class RecurrentCore(wiring.Component):
    """The whole network as a stream component: one input beat in, one output beat out.

    Parameters
    ----------
    model : golden.Model
    lanes : int or None
        Hidden units computed in parallel (folded); ignored when ``unrolled``.
    unrolled : bool
        Weights as wiring, a whole matrix-vector product per pipeline pass.
    datapath : {'shiftadd', 'mult'}
        ``mult`` is the multiplier baseline (the one place ``*`` is allowed).
    skip : bool
        Folded designs stream only the nonzero weights (else every weight, zeros included), in
        the phases where that saves steps; :attr:`skip` then says whether any phase does.
    """

    @silence_on_error
    def __init__(self, *, model: Model, lanes: int | None = None, unrolled: bool = False,
                 datapath: str = "shiftadd", skip: bool = True):
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
        self.timing = timing(model, lanes=lanes, unrolled=unrolled, skip=bool(skip),
                             datapath=datapath)
        # What was built: a folded phase whose zeros save no step keeps the dense codes.
        self.skip = bool(skip) and (unrolled or any(p.skip for p in self.timing.plans))
        self.in_kind, self.in_fields = input_fields(model)
        self.out_kind, self.out_fields = output_fields(model)
        self.in_layout = beat_layout(max(f.lsb + f.width for f in self.in_fields))
        self.out_layout = beat_layout(max(f.lsb + f.width for f in self.out_fields))
        self._pipes = None  # the elementwise pipelines, once elaborated
        super().__init__({
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def memories(self) -> tuple[MemoryRecord, ...]:
        """The ROMs of the design, as named in the Verilog: depth (words), width (bits), reads
        per timestep. Folded phases have a weight ROM (one read per step), a token layer a
        token table (one read per group) and each elementwise pipeline its bias ROMs (one read
        per group, known once the design is elaborated); unrolled designs have none (weights
        and biases are wiring)."""
        if self._pipes is None:
            raise RuntimeError("memories() needs the design elaborated (hw.generate does it)")
        out = [r for pipe in self._pipes for r in pipe.memories]
        if self.unrolled:
            return tuple(out)
        for p, plan in enumerate(self.timing.plans):
            layout, table = self._layout(p)
            steps = sum(plan.steps)
            mats = "+".join(f"{_matrix(p, self.model)}.{_TENSOR[s.name]}"
                            for s in self._sources(p) if s.token_bits is None)
            out.append(MemoryRecord(f"rom_{plan.name}", mats, steps, layout.width, steps))
            if table is not None:
                words, width = table
                out.append(MemoryRecord(f"tokens_{plan.name}", f"{_matrix(p, self.model)}.w_ih",
                                        len(words), width * plan.slots, len(plan.groups)))
        return tuple(out)

    def _layout(self, p: int):
        """The weight ROM layout of folded phase ``p`` and its token table (or None)."""
        plan, sources = self.timing.plans[p], self._sources(p)
        streamed = [s for s in sources if s.token_bits is None]
        use_mul = self.datapath == "mult"
        fmt = CodeFormat.of(np.concatenate([s.codes.ravel() for s in streamed]), use_mul=use_mul)
        table = None
        if len(streamed) < len(sources):
            table = token_table(plan, sources[0].codes, sources[0].token_bits)
        return StreamLayout(plan, [s.codes for s in streamed], fmt), table

    # ---------------------------------------------------------------- sources
    def _sources(self, p: int) -> list[Source]:
        """The matrices phase ``p`` sums, with their value and accumulator shapes."""
        model, f, use_mul = self.model, self.model.formats, self.datapath == "mult"
        hs = fmt_shape(f["h"])
        if p == len(model.layers):
            q = model.head.w
            return [Source("o", q.codes, CodeFormat.of(q.codes, use_mul=use_mul), hs,
                           MatrixCodes(q, f["h"], use_mul=use_mul).acc_shape)]
        lay, out = model.layers[p], []
        w_ih = lay.input_matrix()  # input column scales folded into the codes
        if p == 0 and model.input_kind == "token":
            out.append(Source("ih", w_ih.codes, None, None, signed(token_width(w_ih.codes)),
                              token_bits=self.in_fields[0].width))
        else:
            vin = model.layer_input_format(p) if p == 0 else f["h"]
            out.append(Source("ih", w_ih.codes, CodeFormat.of(w_ih.codes, use_mul=use_mul),
                              fmt_shape(vin), MatrixCodes(w_ih, vin, use_mul=use_mul).acc_shape))
        out.append(Source("hh", lay.w_hh.codes, CodeFormat.of(lay.w_hh.codes, use_mul=use_mul),
                          hs, MatrixCodes(lay.w_hh, f["h"], use_mul=use_mul).acc_shape))
        return out

    def _engine(self, p: int) -> wiring.Component:
        plan, sources = self.timing.plans[p], self._sources(p)
        use_mul = self.datapath == "mult"
        if self.unrolled:
            regs = unrolled_registers(self.model, p, use_mul=use_mul)
            return UnrolledMac(plan=plan, sources=sources, registers=regs)
        layout, table = self._layout(p)
        return FoldedMac(plan=plan, layout=layout, sources=sources, token_table=table,
                         name=plan.name)

    def _phase(self, m, p: int, engine):
        """The elementwise pipeline and register bank of phase ``p``."""
        model, plan, f = self.model, self.timing.plans[p], self.model.formats
        use_mul = self.datapath == "mult"
        if p == len(model.layers):
            pipe = HeadPipeline(model=model, plan=plan, acc_shape=engine.sums.o[0].shape(),
                                use_mul=use_mul)
            bank = StateBank(plan=plan, fields={"y": (fmt_shape(f["out"]), model.output_size)})
        else:
            pipe = CellPipeline(model=model, layer=p, plan=plan, use_mul=use_mul,
                                acc_ih=engine.sums.ih[0].shape(),
                                acc_hh=engine.sums.hh[0].shape())
            fields = {"h": (fmt_shape(f["h"]), model.hidden_size)}
            if model.cell == "lstm":
                fields["c"] = (fmt_shape(f["c"]), model.hidden_size)
            bank = StateBank(plan=plan, fields=fields, buffered=("h",))
        m.submodules[f"pipe{p}"], m.submodules[f"bank{p}"] = pipe, bank
        self._pipes.append(pipe)
        wiring.connect(m, engine.sums, pipe.sums)
        wiring.connect(m, pipe.result, bank.result)
        return pipe, bank

    def elaborate(self, platform):
        m = Module()
        model, L = self.model, len(self.model.layers)
        self._pipes = []
        fields = [(fd.lsb, fmt_shape(fd.fmt)) for fd in self.in_fields]
        m.submodules.input = inp = InputStage(layout=self.in_layout, fields=fields)
        out_fmt = model.formats["out" if model.head is not None else "h"]
        m.submodules.output = out = OutputStage(layout=self.out_layout, n=len(self.out_fields),
                                                shape=fmt_shape(out_fmt))
        wiring.connect(m, wiring.flipped(self.i), inp.i)
        wiring.connect(m, wiring.flipped(self.o), out.o)
        readers, banks, request = {}, [], inp.accept
        n = len(self.timing.plans)
        for p in range(n):
            m.submodules[f"mac{p}"] = engine = self._engine(p)
            pipe, bank = self._phase(m, p, engine)
            start = request if p < n - 1 else out.start
            m.d.comb += engine.start.eq(start)
            if p < L:  # a sequence's first timestep zeroes each layer's state as it starts
                m.d.comb += bank.clear.eq(start & inp.first_now)
            request = bank.done
            banks.append(bank)
            self._readers(m, p, engine, pipe, inp, readers)
        readers.setdefault((n - 1, "y" if model.head is not None else "h"), []).append(out.y)
        self._connect_readers(m, readers, banks, inp)
        m.d.comb += [out.request.eq(banks[-2].done if n > 1 else inp.accept),
                     out.done.eq(request), inp.release.eq(request),
                     out.first.eq(inp.first), out.last.eq(inp.last)]
        return m

    def _readers(self, m, p, engine, pipe, inp, readers) -> None:
        """Record who reads which bank in phase ``p`` (connected once every bank exists): whole
        vectors (``v_*``, the pipelines and unrolled engines) or read ports (``rd_*``)."""
        model, L = self.model, len(self.model.layers)

        def port(name):
            return getattr(engine, ("v_" if self.unrolled else "rd_") + name)

        if p == L:
            readers.setdefault((L - 1, "h"), []).append(port("o"))
            return
        readers.setdefault((p, "h"), []).extend([port("hh"), pipe.h])
        if model.cell == "lstm":
            readers.setdefault((p, "c"), []).append(pipe.c)
        if p > 0:
            readers[(p - 1, "h")].append(port("ih"))
        elif model.input_kind == "token":
            m.d.comb += engine.token.eq(inp.x.v[0])
        else:
            readers.setdefault((None, "x"), []).append(port("ih"))

    def _connect_readers(self, m, readers, banks, inp) -> None:
        """Connect every bank to its readers; read ports share one :class:`BankSelect`."""
        for (p, name), ins in readers.items():
            bank = inp.x if p is None else getattr(banks[p], name)
            vectors = [r for r in ins if "index" not in r.signature.members]
            ports = [r for r in ins if "index" in r.signature.members]
            if ports:
                sel = self._select(m, banks[p] if p is not None else None, name, bank,
                                   [len(r.index) for r in ports])
                m.submodules[f"select_{name}{'' if p is None else p}"] = sel
                if isinstance(sel, BankSelect):
                    vectors.append(sel.bank)
                for r, rd in enumerate(ports):
                    wiring.connect(m, rd, getattr(sel, f"r{r}"))
            wiring.connect(m, bank, *vectors)

    def _select(self, m, writer, name: str, bank, slots: list[int]):
        """The read ports of a bank: multiplexers, or RAM copies (a bank a phase writes, read
        by ports times values of at least :data:`hw.state.RAM_READS_FROM`)."""
        n, shape = len(bank.v), bank.v[0].shape()
        if writer is None or max(slots) * n < state.RAM_READS_FROM:
            return BankSelect(n=n, shape=shape, slots=slots)
        sel = RamSelect(plan=writer.plan, field=name, shape=shape, slots=slots)
        res = writer.result
        m.d.comb += [sel.result.valid.eq(res.valid), sel.result.group.eq(res.group),
                     sel.result.last.eq(res.last), sel.clear.eq(writer.clear)]
        m.d.comb += [a.eq(b) for a, b in zip(getattr(sel.result, name), getattr(res, name),
                                             strict=True)]
        return sel


#: Model tensor of each accumulator name.
_TENSOR = {"ih": "w_ih", "hh": "w_hh", "o": "w"}


def _matrix(p: int, model: Model) -> str:
    """Model tensor prefix of phase ``p``: ``layer{p}`` or ``head``."""
    return "head" if p == len(model.layers) else f"layer{p}"
