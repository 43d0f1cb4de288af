"""The cocotb testbench every generated design runs (loaded by cocotb inside the simulator).

Configuration comes from the JSON file named by ``SHIFTRNN_SIM_CONFIG`` (written by
:func:`sim.verify`): design folder, seed, number of sequences, long-sequence length, idle and
backpressure probabilities and where to write the per-test reports. Two tests run in order:

``timing``
    No idle cycles, an always-ready sink: consecutive input handshakes must be exactly
    ``cycles_per_timestep`` cycles apart, and each output must become valid exactly ``latency``
    cycles after its input handshake. Outputs are checked against golden too.
``streams``
    Random idle cycles and backpressure; sequences of length 1, short and long, back to back,
    restarts (a sequence cut short without ``tlast``, the next one starting with ``tuser``), and
    a reset in the middle of a sequence followed by new sequences. Every output of every
    timestep is compared with golden exactly.

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
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from sim.axis import AxisMonitor, AxisSink, AxisSource, Beat, Scoreboard
from sim.design import Design

PERIOD_NS = 10


def _config() -> dict:
    return json.loads(Path(os.environ["SHIFTRNN_SIM_CONFIG"]).read_text())


def _report(cfg: dict, name: str, data: dict) -> None:
    path = Path(cfg["report_dir"]) / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, default=int))


class Bench:
    """Clock, reset, source, sink, monitor and scoreboard around one DUT."""

    def __init__(self, dut, design: Design, rng: np.random.Generator, *, idle_prob: float,
                 backpressure: float):
        self.dut = dut
        self.design = design
        self.rng = rng
        self.period_steps = self._period_steps()
        self.expected: dict[int, np.ndarray] = {}
        self.sb = Scoreboard(design.m_port, self._golden)
        common = {"rst": dut.rst}
        self.source = AxisSource(dut, "s_axis", dut.clk, self.period_steps, rng=rng,
                                 idle_prob=idle_prob, on_accept=self.sb.expect, **common)
        self.sink = AxisSink(dut, "m_axis", dut.clk, self.period_steps, rng=rng,
                             backpressure=backpressure, **common)
        self.monitor = AxisMonitor(dut, "m_axis", dut.clk, self.period_steps,
                                   callback=self.sb.observe, **common)
        self.sequences: list[np.ndarray] = []

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

    async def start(self) -> None:
        self.t_wall = time.perf_counter()
        self.t_sim = get_sim_time()
        Clock(self.dut.clk, PERIOD_NS, unit="ns").start()
        self.dut.rst.value = 1
        self.dut.s_axis_tvalid.value = 0
        self.dut.m_axis_tready.value = 0
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        for part in (self.source, self.sink, self.monitor):
            cocotb.start_soon(part.run())

    def add_sequences(self, seqs: list[np.ndarray], *, last: list[bool] | None = None,
                      gap: int | None = None) -> None:
        """Queue sequences (each gets tuser on its first step, tlast on its last unless told)."""
        gold = self.design.golden_outputs(seqs)
        for k, (s, g) in enumerate(zip(seqs, gold, strict=True)):
            idx = len(self.sequences)
            self.sequences.append(s)
            self.expected[idx] = g
            end = True if last is None else last[k]
            for t in range(len(s)):
                self.source.send(Beat(self.design.s_port.pack_int(s[t]), user=t == 0,
                                      last=end and t == len(s) - 1, gap=gap, tag=(idx, t)))

    async def drain(self, beats: int) -> None:
        """Wait (with a generous cycle budget) until everything queued came out."""
        cpt = self.design.cycles_per_timestep
        budget_cycles = 200 + beats * (cpt + 8) * 8
        await with_timeout(self.source.wait_sent(), budget_cycles * PERIOD_NS, "ns")
        await with_timeout(self.sb.drained.wait(), budget_cycles * PERIOD_NS, "ns")
        await ClockCycles(self.dut.clk, 2)

    async def reset_mid_stream(self, after_beats: int, cycles: int = 3) -> int:
        """Assert rst once ``after_beats`` more beats were taken; return beats dropped."""
        target = self.source.accepted + after_beats
        budget = 200 + after_beats * (self.design.cycles_per_timestep + 8) * 8
        while self.source.accepted < target:
            await RisingEdge(self.dut.clk)
            budget -= 1
            assert budget > 0, "the design stopped taking input beats (s_axis_tready stuck low)"
        self.dut.rst.value = 1
        self.sink.paused = True
        dropped = self.source.flush()
        await ClockCycles(self.dut.clk, cycles)
        lost = self.sb.drop_pending()
        self.dut.rst.value = 0
        self.sink.paused = False
        return dropped + lost


def _setup(dut, test: str):
    cfg = _config()
    design = Design(cfg["design_dir"])
    seed = int(cfg["seed"]) + (0 if test == "timing" else 1)
    rng = np.random.default_rng(seed)
    dut._log.info("shiftrnn bench %s: design %s seed=%d (config seed %d)", test, design.name, seed,
                  int(cfg["seed"]))
    return cfg, design, rng, seed


@cocotb.test()
async def timing(dut):
    """Back-to-back beats, no stalls: intervals == cycles_per_timestep, delay == latency."""
    cfg, design, rng, seed = _setup(dut, "timing")
    bench = Bench(dut, design, rng, idle_prob=0.0, backpressure=0.0)
    await bench.start()
    length = max(2, min(int(cfg["length"]), 12))
    seqs = [design.random_inputs(rng, length) for _ in range(2)]
    bench.add_sequences(seqs, gap=0)
    beats = sum(len(s) for s in seqs)
    await bench.drain(beats)
    res = bench.sb.result()
    lat = np.array(bench.sb.latencies, dtype=np.int64).reshape(-1, 3)
    in_cycles = lat[:, 0]
    intervals = np.diff(in_cycles)
    delays = lat[:, 1] - lat[:, 0]
    cpt, latency = design.cycles_per_timestep, design.latency
    res.update(
        test="timing",
        seed=seed,
        beats=beats,
        intervals=sorted(set(intervals.tolist())),
        delays=sorted(set(delays.tolist())),
        cycles_per_timestep=float(np.median(intervals)) if intervals.size else None,
        latency=float(np.median(delays)) if delays.size else None,
        manifest_cycles_per_timestep=cpt,
        manifest_latency=latency,
        **bench.speed(),
    )
    problems = []
    if intervals.size and not (intervals == cpt).all():
        problems.append(f"input handshakes {sorted(set(intervals.tolist()))} cycles apart, "
                        f"manifest cycles_per_timestep {cpt}")
    if delays.size and not (delays == latency).all():
        problems.append(f"outputs valid {sorted(set(delays.tolist()))} cycles after their input "
                        f"handshake, manifest latency {latency}")
    if problems:
        res["passed"] = False
        res["message"] = "\n".join(filter(None, [res["message"], *problems]))
    _report(cfg, "timing", res)
    assert res["passed"], f"seed={seed}: " + res["message"]


@cocotb.test()
async def streams(dut):
    """Random gaps and backpressure, all sequence shapes, a reset mid-stream: bit-exact."""
    cfg, design, rng, seed = _setup(dut, "streams")
    bench = Bench(dut, design, rng, idle_prob=float(cfg["idle_prob"]),
                  backpressure=float(cfg["backpressure"]))
    await bench.start()
    n, T = int(cfg["sequences"]), max(1, int(cfg["length"]))
    short = max(1, min(T, 4))
    lengths = [1, T, short] + [int(rng.integers(1, T + 1)) for _ in range(max(0, n - 3))]
    lengths = lengths[:max(n, 1)]
    seqs = [design.random_inputs(rng, L) for L in lengths]
    # Every third sequence (when longer than one step) is cut short: no tlast, the next one
    # restarts with tuser. Even-numbered sequences go back to back with no idle cycles.
    lasts = [not (k % 3 == 2 and len(s) > 1) for k, s in enumerate(seqs)]
    half = len(seqs) // 2 + 1
    for k in range(half):
        bench.add_sequences([seqs[k]], last=[lasts[k]], gap=0 if k % 2 == 0 else None)
    beats = sum(len(s) for s in seqs[:half])
    await bench.drain(beats)
    # A reset in the middle of a sequence, then the rest starting with tuser.
    cut_len = max(2, min(T, 6))
    cut = design.random_inputs(rng, cut_len)
    bench.add_sequences([cut])
    dropped = await bench.reset_mid_stream(after_beats=int(rng.integers(1, cut_len)))
    rest = seqs[half:] + [design.random_inputs(rng, short)]
    for k, s in enumerate(rest):
        bench.add_sequences([s], last=[lasts[half + k] if half + k < len(lasts) else True])
    await bench.drain(sum(len(s) for s in rest))
    res = bench.sb.result()
    res.update(test="streams", seed=seed, sequences=len(bench.sequences),
               lengths=[len(s) for s in bench.sequences], beats_dropped_by_reset=dropped,
               beats_sent=bench.source.accepted, **bench.speed())
    if cfg.get("record", True):
        # What the RTL produced, for comparisons with other simulators (sim.fast).
        res["inputs"] = [np.asarray(s).tolist() for s in bench.sequences]
        res["observed"] = {"tags": [list(t) for t in bench.sb.tags],
                           "got": np.asarray(bench.sb.got, dtype=np.int64).tolist()}
    _report(cfg, "streams", res)
    assert res["passed"], f"seed={seed}: " + res["message"]
