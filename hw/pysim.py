"""Run a generated top in Amaranth's Python simulator (block tests, small checks, benchmarks)."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from golden import Model
from golden.manifest import axis_ports

from .generate import build_top

__all__ = ["run_pysim"]


def run_pysim(model: Model, x: np.ndarray, *, lanes=None, unrolled=False, datapath="shiftadd",
              skip=True, vcd: str | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Stream every sequence of ``x`` (golden's integer input) through the design.

    Each sequence starts with ``tuser`` high; input is always valid and output always ready, so
    consecutive handshakes are ``cycles_per_timestep`` apart.

    Returns
    -------
    outputs : ndarray (batch, time, n)
        The integers the design streamed out.
    accept_cycles : ndarray
        Cycle of every input handshake.
    cycles : int
        Cycles simulated.
    """
    top = build_top(model, lanes=lanes, unrolled=unrolled, datapath=datapath, skip=skip)
    ports = {p.name: p for p in axis_ports(model)}
    s_port, m_port = ports["s_axis_tdata"], ports["m_axis_tdata"]
    x = np.asarray(x, dtype=np.int64)
    B, T = x.shape[:2]
    rows = x.reshape(B * T, -1)
    words = [s_port.pack_int(row) for row in rows]
    outs, stamps = [], []
    total = B * T
    state = {"cycles": 0}

    async def bench(ctx):
        ctx.set(top.m_axis_tready, 1)
        i = 0

        def present(k):
            t = k % T
            ctx.set(top.s_axis_tdata, words[k])
            ctx.set(top.s_axis_tuser, int(t == 0))
            ctx.set(top.s_axis_tlast, int(t == T - 1))
            ctx.set(top.s_axis_tvalid, 1)

        present(0)
        cyc = 0
        while len(outs) < total:
            accepted = ctx.get(top.s_axis_tready) and ctx.get(top.s_axis_tvalid)
            if ctx.get(top.m_axis_tvalid):
                outs.append(ctx.get(top.m_axis_tdata))
            if accepted:
                stamps.append(cyc)
                i += 1
            await ctx.tick()
            cyc += 1
            if accepted:
                if i < total:
                    present(i)
                else:
                    ctx.set(top.s_axis_tvalid, 0)
        state["cycles"] = cyc

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    got = np.array([m_port.unpack_int(w) for w in outs], dtype=np.int64)
    got = got.reshape(B, T, m_port.size)
    return got, np.array(stamps), state["cycles"]
