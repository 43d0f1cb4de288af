"""The dense head's output stage: scale, bias and narrow each row's sum to a logit."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import Model

from .arith import const_mul, fmt_shape, narrow
from .buses import group_signature
from .params import silence_on_error
from .pipeline import Pipe
from .timing import HEAD_STAGES, PhasePlan

__all__ = ["HeadPipeline"]


class HeadPipeline(wiring.Component):
    """``logit = narrow(C * acc + b)`` for every lane of a group, pipelined (:data:`HEAD_STAGES`):
    the scale, the bias (its table holds the narrowing's rounding half too), the saturation.
    Its golden twin is the head of ``golden.Model.run_int``.
    """

    @silence_on_error
    def __init__(self, *, model: Model, plan: PhasePlan, acc_shape, use_mul: bool = False):
        self.model, self.plan, self.use_mul = model, plan, use_mul
        ng, lanes = len(plan.groups), plan.lanes
        super().__init__({
            "sums": In(group_signature(ng, {"o": (acc_shape, lanes)})),
            "result": Out(group_signature(ng, {"y": (fmt_shape(model.formats["out"]), lanes)})),
        })

    def elaborate(self, platform):
        m = Module()
        head, f = self.model.head, self.model.formats
        pipe = Pipe.of(m, self.sums, groups=len(self.plan.groups), name="head", tables="head.b")
        scaled_frac = f["h"].frac - head.w.shift
        frac = max(scaled_frac, head.b.frac)
        k = frac - f["out"].frac  # bits the narrowing drops: its rounding half joins the bias
        half = (1 << (k - 1)) if k > 0 else 0
        for e in range(self.plan.lanes):
            st = pipe.stager(HEAD_STAGES, f"_{e}")
            scaled = const_mul(m, self.sums.o[e], head.w.block_multipliers(1)[0],
                               use_mul=self.use_mul)
            v = st.stage("scale", scaled)
            bias = st.select([(int(head.b.ints[r]) << (frac - head.b.frac)) + half
                              if r is not None else half for r in (g[e] for g in self.plan.groups)])
            v = st.stage("bias", (v << (frac - scaled_frac)) + bias)
            y = st.stage("out", narrow(m, v, frac, f["out"], rounded=True))
            m.d.comb += self.result.y[e].eq(st.stage("write", y))
        pipe.finish()
        #: The bias ROM (:meth:`hw.pipeline.Pipe.finish`), known once elaborated.
        self.memories = pipe.memories
        m.d.comb += pipe.tag(self.result, len(HEAD_STAGES) - 1)
        return m
