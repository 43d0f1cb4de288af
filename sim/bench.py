"""The cocotb testbench every generated design runs (loaded by cocotb inside the simulator).

Configuration comes from the JSON file named by ``SHIFTRNN_SIM_CONFIG`` (written by
:func:`sim.verify`): design folder, seed, number of sequences, long-sequence length, idle and
backpressure probabilities, whether token indices past the vocabulary are sent, and where to
write the per-test reports. Three tests run in order, each from a reset, each seeded:

``timing``
    No idle cycles, an always-ready sink: consecutive input handshakes must be exactly
    ``cycles_per_timestep`` cycles apart, and each output must become valid exactly ``latency``
    cycles after its input handshake. Outputs are checked against golden too.
``streams``
    Random idle cycles (the source's pause generator) and backpressure (the sink's); sequences
    of length 1, short and long, back to back; restarts (a sequence cut short without ``tlast``,
    the next one starting with ``tuser``); a ``tlast`` in the middle of a sequence that goes on
    (``tlast`` does not reset the state). Every output of every timestep is compared with golden
    exactly; the design must hold a stalled output (AXI) and keep at most
    :data:`MAX_IN_FLIGHT` input beats whose outputs were not taken.
``reset``
    A one-cycle power-up reset; a one-cycle reset in the middle of a sequence with outputs
    stalled (the beats in flight are dropped: none of their outputs may appear); then a sequence
    whose first beat has no ``tuser`` (the reset cleared the state) and one with ``tuser``.

In every test every port must be 0 or 1 (never X or Z) in every cycle after reset deasserts.
Golden runs each sequence from zero state with ``model.run_int``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, SimTimeoutError, with_timeout

from sim.axis import AxisMonitor, AxisSink, AxisSource, Beat, PortChecker, Scoreboard, random_pauses
from sim.design import Design

PERIOD_NS = 10
#: Most input beats inside a design whose outputs were not taken yet: one output waiting in the
#: output register, one timestep computed behind it (docs/hardware.md, "A stalled sink").
MAX_IN_FLIGHT = 2


def _config() -> dict:
    return json.loads(Path(os.environ["SHIFTRNN_SIM_CONFIG"]).read_text())


def _bit(sig) -> int | str:
    v = sig.value
    return int(v) if v.is_resolvable else str(v)


class Bench:
    """Clock, reset, source, sink, monitor, port checker and scoreboard around one DUT.

    Randomness: three generators spawned from ``seed`` (data, idle cycles, stalls), so a pause
    pattern does not shift the data and a rerun with the same seed repeats itself exactly.
    """

    def __init__(self, dut, design: Design, seed: int, *, idle_prob: float, backpressure: float,
                 wide_tokens: bool = False):
        self.dut, self.design, self.wide_tokens = dut, design, wide_tokens
        data, idle, stall = (np.random.default_rng(s)
                             for s in np.random.SeedSequence(seed).spawn(3))
        self.rng = data
        self.period_steps = self._period_steps()
        self.expected: dict[int, np.ndarray] = {}
        self.sb = Scoreboard(design.m_port, self._golden)
        kw = {"rst": dut.rst}
        self.source = AxisSource(dut, "s_axis", dut.clk, self.period_steps,
                                 on_accept=self.sb.expect, **kw)
        self.sink = AxisSink(dut, "m_axis", dut.clk, self.period_steps, **kw)
        self.monitor = AxisMonitor(dut, "m_axis", dut.clk, self.period_steps,
                                   callback=self.sb.observe, **kw)
        self.ports = PortChecker(dut, [p.name for p in design.manifest.ports if p.name != "clk"],
                                 dut.clk, self.period_steps, **kw)
        if idle_prob > 0:
            self.source.set_pause_generator(random_pauses(idle, idle_prob, 3))
        if backpressure > 0:
            self.sink.set_pause_generator(random_pauses(stall, backpressure, 4))
        self.sequences: list[np.ndarray] = []
        #: s_axis_tready / m_axis_tvalid seen in each reset cycle and right after (0, 1 or X).
        self.reset_log: list[dict] = []

    @staticmethod
    def _period_steps() -> int:
        from cocotb.simtime import convert

        return int(convert(PERIOD_NS, "ns", to="step"))

    def speed(self) -> dict:
        """Cycles simulated since :meth:`start` and the wall time they took (this process)."""
        cycles = (get_sim_time() - self.t_sim) // self.period_steps
        wall = time.perf_counter() - self.t_wall
        return {"cycles": int(cycles), "wall_seconds": wall,
                "cycles_per_s": cycles / wall if wall > 0 else None}

    def _golden(self, tag) -> np.ndarray:
        seq, step = tag
        return self.expected[seq][step]

    def inputs(self, length: int) -> np.ndarray:
        """A random input sequence; with ``wide_tokens`` a quarter of the tokens are indices in
        ``[input_size, 2**token_bits)`` (they select a zero ``W_ih`` column)."""
        x = self.design.random_inputs(self.rng, length)
        m = self.design.model
        spare = (1 << m.token_bits) - m.input_size if m.input_kind == "token" else 0
        if self.wide_tokens and spare:
            pick = self.rng.random(length) < 0.25
            x = np.where(pick, m.input_size + self.rng.integers(0, spare, length), x)
        return x

    async def _hold_reset(self, cycles: int) -> None:
        """Right after a rising edge: rst high for ``cycles`` rising edges, then low."""
        self.dut.rst.value = 1
        for _ in range(cycles):
            await ReadOnly()
            self.reset_log.append({"rst": 1, "s_axis_tready": _bit(self.dut.s_axis_tready),
                                   "m_axis_tvalid": _bit(self.dut.m_axis_tvalid)})
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def start(self, reset_cycles: int = 3) -> None:
        self.t_wall = time.perf_counter()
        self.t_sim = get_sim_time()
        Clock(self.dut.clk, PERIOD_NS, unit="ns").start()
        self.dut.s_axis_tvalid.value = 0
        self.dut.m_axis_tready.value = 0
        await RisingEdge(self.dut.clk)
        await self._hold_reset(reset_cycles)
        for part in (self.source, self.sink, self.monitor, self.ports):
            cocotb.start_soon(part.run())

    def add(self, seq: np.ndarray, *, user: bool = True, lasts: tuple[int, ...] | None = None):
        """Queue one sequence: tuser on its first beat (unless told), tlast on the steps in
        ``lasts`` (default: the last one). Golden runs it from zero state."""
        idx = len(self.sequences)
        self.sequences.append(seq)
        self.expected[idx] = self.design.golden_outputs([seq])[0]
        lasts = (len(seq) - 1,) if lasts is None else lasts
        for t in range(len(seq)):
            self.source.send(Beat(self.design.s_port.pack_int(seq[t]), user=user and t == 0,
                                  last=t in lasts, tag=(idx, t)))

    async def drain(self, beats: int) -> str | None:
        """Wait (with a generous cycle budget) until everything queued came out.

        Returns None, or what was still missing when the budget ran out.
        """
        budget = (200 + beats * (self.design.cycles_per_timestep + 8) * 8) * PERIOD_NS
        try:
            await with_timeout(self.source.wait_sent(), budget, "ns")
            await with_timeout(self.sb.drained.wait(), budget, "ns")
        except SimTimeoutError:
            return (f"timed out: {len(self.source.queue)} beats never taken, "
                    f"{len(self.sb.pending)} taken beats without output (s_axis_tready "
                    f"{_bit(self.dut.s_axis_tready)}, m_axis_tvalid "
                    f"{_bit(self.dut.m_axis_tvalid)})")
        await ClockCycles(self.dut.clk, 2)
        return None

    async def reset_mid_stream(self, after_beats: int, cycles: int = 1) -> tuple[int, list]:
        """Stall the sink, assert rst once ``after_beats`` more beats were taken and an output is
        waiting (``m_axis_tvalid`` high), hold it ``cycles`` edges.

        Returns the beats dropped (queued, on the bus or inside the design) and the problems
        seen: ``m_axis_tvalid`` must be low in the cycle after the reset.
        """
        target = self.source.accepted + after_beats
        budget = 200 + after_beats * (self.design.cycles_per_timestep + 8) * 8
        self.sink.pause = True
        waiting = False
        while self.source.accepted < target or not waiting:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            waiting = _bit(self.dut.m_axis_tvalid) == 1
            budget -= 1
            if budget <= 0:
                return 0, [f"no output waiting after {after_beats} beats (s_axis_tready "
                           f"{_bit(self.dut.s_axis_tready)}, m_axis_tvalid "
                           f"{_bit(self.dut.m_axis_tvalid)})"]
        await RisingEdge(self.dut.clk)
        self.source.pause = self.sink.pause = True
        dropped = self.source.flush()
        await self._hold_reset(cycles)
        self.source.pause = self.sink.pause = False
        lost = self.sb.drop_pending()
        await ReadOnly()
        after = {"rst": 0, "s_axis_tready": _bit(self.dut.s_axis_tready),
                 "m_axis_tvalid": _bit(self.dut.m_axis_tvalid)}
        self.reset_log.append(after)
        self.ports.check_all()
        bad = [] if after["m_axis_tvalid"] == 0 else [
            f"m_axis_tvalid is {after['m_axis_tvalid']} right after a reset (must be 0)"]
        return dropped + lost, bad

    def finish(self, cfg: dict, name: str, seed: int, res: dict, problems=()) -> None:
        """Add the protocol problems, write the test's report, fail the test if any."""
        problems = [p for p in problems if p]
        problems += self.monitor.violations + self.ports.problems
        res.update(test=name, seed=seed, reset_log=self.reset_log, **self.speed())
        res["protocol_problems"] = problems
        if problems:
            res["passed"] = False
            res["message"] = "\n".join(filter(None, [res["message"], *problems]))
        path = Path(cfg["report_dir"]) / f"{name}.json"
        path.write_text(json.dumps(res, indent=1, default=int))
        assert res["passed"], f"seed={seed}: " + res["message"]


def _setup(dut, test: str, offset: int, *, idle: bool = True, stall: bool = True):
    cfg = _config()
    design = Design(cfg["design_dir"])
    seed = int(cfg["seed"]) + offset
    dut._log.info("shiftrnn bench %s: design %s seed=%d (config seed %d)", test, design.name, seed,
                  int(cfg["seed"]))
    bench = Bench(dut, design, seed, idle_prob=float(cfg["idle_prob"]) if idle else 0.0,
                  backpressure=float(cfg["backpressure"]) if stall else 0.0,
                  wide_tokens=bool(cfg.get("wide_tokens", False)))
    return cfg, design, bench, seed


@cocotb.test()
async def timing(dut):
    """Back-to-back beats, no stalls: intervals == cycles_per_timestep, delay == latency."""
    cfg, design, bench, seed = _setup(dut, "timing", 0, idle=False, stall=False)
    await bench.start()
    length = max(2, min(int(cfg["length"]), 12))
    seqs = [bench.inputs(length) for _ in range(2)]
    for s in seqs:
        bench.add(s)
    timeout = await bench.drain(2 * length)
    res = bench.sb.result()
    lat = np.array(bench.sb.latencies, dtype=np.int64).reshape(-1, 3)
    intervals, delays = np.diff(lat[:, 0]), lat[:, 1] - lat[:, 0]
    cpt, latency = design.cycles_per_timestep, design.latency
    res.update(beats=2 * length, intervals=sorted(set(intervals.tolist())),
               delays=sorted(set(delays.tolist())),
               cycles_per_timestep=float(np.median(intervals)) if intervals.size else None,
               latency=float(np.median(delays)) if delays.size else None,
               manifest_cycles_per_timestep=cpt, manifest_latency=latency)
    problems = [timeout]
    if intervals.size and not (intervals == cpt).all():
        problems.append(f"input handshakes {sorted(set(intervals.tolist()))} cycles apart, "
                        f"manifest cycles_per_timestep {cpt}")
    if delays.size and not (delays == latency).all():
        problems.append(f"outputs valid {sorted(set(delays.tolist()))} cycles after their input "
                        f"handshake, manifest latency {latency}")
    bench.finish(cfg, "timing", seed, res, problems)


@cocotb.test()
async def streams(dut):
    """Idle cycles and backpressure, every sequence shape, restarts, tlast mid-sequence."""
    cfg, design, bench, seed = _setup(dut, "streams", 1)
    await bench.start()
    n, T = max(1, int(cfg["sequences"])), max(1, int(cfg["length"]))
    short = max(1, min(T, 4))
    lengths = ([1, T, short] + [int(bench.rng.integers(1, T + 1)) for _ in range(n)])[:n]
    for k, L in enumerate(lengths):
        s = bench.inputs(L)
        if k % 3 == 2 and L > 1:  # cut short: no tlast; the next sequence restarts with tuser
            bench.add(s, lasts=())
        elif k == 1 and L > 2:  # a tlast in the middle; the sequence goes on from its state
            bench.add(s, lasts=(L // 2, L - 1))
        else:
            bench.add(s)
    timeout = await bench.drain(sum(lengths))
    res = bench.sb.result()
    res.update(sequences=len(bench.sequences), lengths=lengths, beats_sent=bench.source.accepted)
    problems = [timeout]
    if bench.sb.max_pending > MAX_IN_FLIGHT:
        problems.append(f"{bench.sb.max_pending} input beats were inside the design at once "
                        f"(outputs not taken); docs/hardware.md allows {MAX_IN_FLIGHT}")
    if cfg.get("record", True):
        # What the RTL produced, for comparisons with other simulators (sim.fast).
        res["inputs"] = [np.asarray(s).tolist() for s in bench.sequences]
        res["observed"] = {"tags": [list(t) for t in bench.sb.tags],
                           "got": np.asarray(bench.sb.got, dtype=np.int64).tolist()}
    bench.finish(cfg, "streams", seed, res, problems)


@cocotb.test()
async def reset(dut):
    """A reset in the middle of a sequence drops the beats in flight and clears the state."""
    cfg, design, bench, seed = _setup(dut, "reset", 2)
    await bench.start(reset_cycles=1)
    T = max(1, int(cfg["length"]))
    cut_len, short = max(2, min(T, 6)), max(1, min(T, 4))
    bench.add(bench.inputs(cut_len))
    dropped, problems = await bench.reset_mid_stream(
        after_beats=int(bench.rng.integers(1, MAX_IN_FLIGHT + 1)))
    after = [bench.inputs(short), bench.inputs(short)]
    bench.add(after[0], user=False)  # no tuser: the reset alone must have cleared the state
    bench.add(after[1])
    problems.append(await bench.drain(2 * short))
    res = bench.sb.result()
    res.update(sequences=len(bench.sequences), beats_dropped_by_reset=dropped,
               beats_sent=bench.source.accepted)
    bench.finish(cfg, "reset", seed, res, problems)
