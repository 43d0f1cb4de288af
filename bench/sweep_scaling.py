"""Scale-out on Dask: sharded whole-dataset RTL simulation on 1 worker vs 2 workers.

``sim.simulate(design, x, workers=N)`` splits the sequences into shards (two per worker), runs
each shard's fast-path harness on a worker of an embedded ``distributed.LocalCluster`` (started
and stopped by the call) and merges the results; it must equal one process's run bit for bit,
which this benchmark asserts for every run. The time of a run is the whole call, wall clock:
cluster start and stop, shipping the harness, the shards (each repeats one sequence as
warm-up), merging, the golden comparison and BPC. The harness is built (cached) before timing.
Configurations alternate for ``--rounds`` rounds and each keeps its fastest round (the machine is
shared); the speed-up is 1 worker's time over 2 workers'. One process without Dask is the
reference. "cores used" is the harness loops' seconds, summed over the shards, over the wall
time: how many cores the shards actually had (the kernel shares the CPUs fairly between
sessions, so on a busy machine two workers get no more CPU than one). The load average is
printed at the start and the end.

(The design-space sweep half of this benchmark comes with ``shiftrnn sweep``.)

Usage: ``.venv/bin/python bench/sweep_scaling.py [--hidden 128 --lanes 8 --sequences 48]``
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
from sim.harness import fast_build


def same_run(a: sim.SimResult, b: sim.SimResult) -> bool:
    return bool(np.array_equal(a.outputs, b.outputs) and a.cycles == b.cycles
                and a.toggles == b.toggles and np.array_equal(a.in_cycles, b.in_cycles)
                and np.array_equal(a.out_cycles, b.out_cycles) and a.bpc == b.bpc)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", default="gru", choices=("rnn", "gru", "lstm"))
    p.add_argument("--method", default="ternary")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--vocab", type=int, default=50)
    p.add_argument("--lanes", type=int, default=8)
    p.add_argument("--sequences", type=int, default=48)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    model = golden.Model.random(args.cell, args.method, args.vocab, args.hidden,
                                output_size=args.vocab, input_kind="token", seed=args.seed)
    work = Path(tempfile.mkdtemp(prefix="sweep_scaling-"))
    design = sim.Design(hw.generate(model, out_dir=work / "design", lanes=args.lanes))
    t0 = time.perf_counter()
    fast_build(design)
    build_s = time.perf_counter() - t0
    x = np.random.default_rng(args.seed).integers(0, args.vocab,
                                                  size=(args.sequences, args.length))
    load0 = os.getloadavg()

    t0 = time.perf_counter()
    ref = sim.simulate(design, x)
    ref_s = time.perf_counter() - t0
    assert ref.golden_equal and ref.timing_ok, ref.message
    best: dict[int, tuple[float, sim.SimResult]] = {}
    for _ in range(max(1, args.rounds)):
        for workers in (1, 2):
            t0 = time.perf_counter()
            res = sim.simulate(design, x, workers=workers)
            wall = time.perf_counter() - t0
            assert same_run(ref, res) and res.toggles_exact, f"{workers} worker(s) differ"
            if workers not in best or wall < best[workers][0]:
                best[workers] = (wall, res)
    load1 = os.getloadavg()

    n = x.size
    print(f"design: {args.cell} {args.method}, vocab {args.vocab}, hidden {args.hidden}, "
          f"folded on {args.lanes} lanes; {design.cycles_per_timestep} cycles/timestep; harness "
          f"build {build_s:.1f} s (0 if cached)")
    print(f"data: {args.sequences} sequences of {args.length} tokens = {n:,} timesteps, "
          f"{ref.cycles:,} cycles")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{load0[0]:.1f} at the start, {load1[0]:.1f} at the end; best of "
          f"{max(1, args.rounds)} rounds\n")
    print("| run | shards | wall s | timesteps/s | cycles/s | cores used | vs 1 worker |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = [("one process, no Dask", ref_s, ref)] + [
        (f"Dask, {w} worker{'s' if w > 1 else ''}", *best[w]) for w in (1, 2)]
    for name, wall, res in rows:
        print(f"| {name} | {res.shards} | {wall:.1f} | {n / wall:,.0f} | "
              f"{ref.cycles / wall:,.0f} | {res.harness_seconds / wall:.2f} | "
              f"{best[1][0] / wall:.2f}x |")
    print(f"\nspeed-up, 2 workers over 1: {best[1][0] / best[2][0]:.2f}x; every run equal to "
          f"the one-process run (outputs, cycles, toggles, BPC {ref.bpc:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
