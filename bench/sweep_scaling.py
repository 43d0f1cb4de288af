"""Scale-out on Dask: a design-space sweep and a sharded RTL simulation, 1 worker vs 2 workers.

Two halves (``--only sweep`` or ``--only sim``; both by default), each printing a markdown table,
the machine (cores, platform) and the load average at its start and end. Configurations alternate
for ``--rounds`` rounds and each keeps its fastest round (the machine is shared).

**Sweep.** ``run_sweep`` (what ``shiftrnn sweep`` runs) on an embedded LocalCluster of 1 and of 2
workers, over a sweep file this benchmark writes: a tiny base flow configuration (a GRU of
``--sweep-hidden`` units trained for a few batches on a generated 8-symbol corpus, a short cocotb
bench, 512 timesteps on the fast path, ice40 synthesis, and place and route only with
``--device``) and a grid of
weight methods x lanes 1 and 2: ``--points`` points (8: 4 methods x 2 lanes). The two points of
a method share their training through the cross-folder stage cache (one trains, the other takes
it from the cache), and all points share Verilator's run-time objects (compiled once per cache by
the first builds); everything else (Verilog, two Verilator builds, yosys) is each point's own,
except where two methods quantize this tiny network to the same Verilog (pow2-ternary and
ternary, here), whose points then share builds through the caches. The reference is the same
points' flows run by hand, one after the other in one fresh Python process, as a user's script
that calls ``run_flow`` per point would: the process imports the flow's modules once, as each
of the sweep's workers does. A second reference runs each point's flow in a fresh Python process
of its own, one after the other, as ``shiftrnn flow`` per point would: every process imports
the flow's modules. Every run starts cold: a fresh
``$SHIFTRNN_CACHE`` folder (stage cache, Verilator builds, yosys results) and a fresh output
folder, so nothing is reused between runs. A run's time is the whole call, wall clock (cluster
start and stop included). The overhead of the sweep is 1 worker's time over each of the runs
by hand;
the speed-up is 1 worker's time over 2 workers'. Every point must pass (RTL bit-exact); the
figures of the runs (BPC, cycles, LUTs) are compared.

**Sharded simulation.** ``sim.simulate(design, x, workers=N)`` splits the sequences into shards
(``sim.shard.shard_count``: for its 48 sequences, 2 on 1 worker and 1 per worker on 2), runs
each shard's fast-path harness on a worker of an embedded LocalCluster (started and stopped by
the call) and merges the results; it must equal one process's run bit
for bit, which this benchmark asserts for every run. The time of a run is the whole call: cluster
start and stop, shipping the harness, the shards (each repeats one sequence as warm-up), merging,
the golden comparison and BPC. The harness is built (cached) before timing. One process without
Dask is the reference. "cores used" is the harness loops' seconds, summed over the shards, over
the wall time: how many cores the shards actually had (the kernel shares the CPUs fairly between
sessions, so on a busy machine two workers get no more CPU than one).

``--warm-runtime`` compiles Verilator's run-time objects (the design-independent part of every
build, compiled once per cache) into each run's fresh cache before its timing starts: what every
sweep after a machine's first one finds. Without it every run also compiles them (twice, once per
kind of build), with ``make -j`` over all cores, so even the 1-worker run uses both cores then.

Usage: ``.venv/bin/python bench/sweep_scaling.py [--only sweep|sim] [--points 8] [--rounds N]
[--warm-runtime]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import golden
import hw
import sim
from golden.files import CACHE_ENV
from shiftrnn.flow.points import Cluster
from shiftrnn.flow.sweep import load_sweep, run_sweep
from sim.build import build_jobs, runtime_objects
from sim.harness import fast_build, fast_runtime

#: The sweep's lanes values; its methods are the first ``points / 2`` of golden.METHODS.
LANES = (1, 2)
#: Sweep points' flows one after the other in one Python process (argv: sweep file, output
#: folder, point indices), through the sweep's own point function; prints each point's name and
#: row as one JSON line.
BY_HAND = """
import json, sys
from shiftrnn.flow.sweep import POINTS_DIR, load_sweep, run_point
points = load_sweep(sys.argv[1]).points
for i in sys.argv[3:]:
    p = points[int(i)]
    row = run_point(p.config, f"{sys.argv[2]}/{POINTS_DIR}/{p.name}", False)
    print(json.dumps({"name": p.name, **row}, default=str), flush=True)
"""
#: Row keys that say when, where or how long, not what: left out when runs are compared.
NOT_FIGURES = ("seconds", "flow_seconds", "ran", "reused", "skipped", "report", "id")
BASE_TOML = """\
name = "tiny"
description = "bench/sweep_scaling.py: a tiny GRU, short training, small verify, ice40 synthesis"
[model]
source = "train"
cell = "gru"
[train]
corpus = "corpus.txt"
hidden = {hidden}
epochs = 1
max_batches = 20
batch = 16
seq_len = 32
eval_every = 1
[data]
max_timesteps = 512
[verify]
sequences = 2
length = 6
waves = false
[estimate]
targets = ["ice40"]
devices = [{devices}]
baseline = false
"""


def machine_line(load0: tuple, load1: tuple, rounds: int) -> str:
    """The machine and its load average (1 minute) at the start and end of a half."""
    return (f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, load "
            f"average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end; best of {rounds} "
            f"round{'s' if rounds > 1 else ''}")


# ============================================================================ the sweep half
@dataclass(frozen=True)
class SweepRun:
    """One timed run of the sweep's points.

    Attributes
    ----------
    wall : float
        Seconds, wall clock, of the whole run.
    point_seconds : float
        The points' own flow times, summed.
    rows : dict
        Point name -> its figures (``point_figures``, without :data:`NOT_FIGURES`).
    ran : dict
        Point name -> the stages it ran (the others came from the stage cache).
    """

    wall: float
    point_seconds: float
    rows: dict
    ran: dict


def write_sweep_files(folder: Path, points: int, hidden: int, device: str | None) -> Path:
    """The corpus, the base flow configuration (place and route on ``device`` if given) and the
    sweep file; returns the sweep file."""
    rng = np.random.default_rng(0)
    words = ("abc", "bad", "cab", "dace", "face", "bead", "deaf", "fade", "cafe", "be", "a")
    (folder / "corpus.txt").write_text(" ".join(rng.choice(words, size=6000)) + "\n")
    (folder / "base.toml").write_text(BASE_TOML.format(
        hidden=hidden, devices=f'"{device}"' if device else ""))
    methods = ", ".join(f'"{m}"' for m in golden.METHODS[:points // len(LANES)])
    (folder / "sweep.toml").write_text(
        f'base = "base.toml"\nname = "bench"\n[grid]\n"model.method" = [{methods}]\n'
        f'"hardware.lanes" = [{", ".join(map(str, LANES))}]\n')
    return folder / "sweep.toml"


@contextlib.contextmanager
def cold_start(work: Path, label: str, warm_runtime: bool = False):
    """A fresh ``$SHIFTRNN_CACHE`` (inherited by the Dask workers started inside) and a fresh
    output folder, which is yielded; the variable is restored on exit. ``warm_runtime``: compile
    Verilator's run-time objects into the fresh cache first (both kinds, before any timing)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder / "cache")
    try:
        if warm_runtime:
            runtime_objects("cocotb")
            fast_runtime()
        yield folder / "out"
    finally:
        if before is None:
            os.environ.pop(CACHE_ENV)
        else:
            os.environ[CACHE_ENV] = before


def figures_of(row: dict) -> dict:
    """What a point's row measured (BPC, cycles, LUTs, energy), without :data:`NOT_FIGURES`, as
    JSON gives it back (so that rows printed by another process compare equal)."""
    return json.loads(json.dumps({k: v for k, v in row.items() if k not in NOT_FIGURES},
                                 default=str))


def sweep_on_dask(sweep_file: Path, work: Path, workers: int, warm_runtime: bool) -> SweepRun:
    """The sweep on an embedded LocalCluster of ``workers`` workers, cold."""
    with cold_start(work, f"dask{workers}", warm_runtime) as out:
        t0 = time.perf_counter()
        res = run_sweep(load_sweep(sweep_file), out=out, cluster=Cluster(workers=workers),
                        progress=False, echo=lambda line: None)
        wall = time.perf_counter() - t0
    assert not res.failed, [(r["name"], r["error"]) for r in res.failed]
    return SweepRun(wall, sum(r["flow_seconds"] for r in res.rows),
                    {r["name"]: figures_of(r) for r in res.rows},
                    {r["name"]: r["ran"] for r in res.rows})


def by_hand(sweep_file: Path, out: Path, processes: list[list[int]]) -> list[dict]:
    """Run :data:`BY_HAND` once per list of point indices, one process after the other; the
    points' rows."""
    rows = []
    for indices in processes:
        lines = subprocess.run([sys.executable, "-c", BY_HAND, str(sweep_file), str(out),
                                *map(str, indices)], check=True, capture_output=True,
                               text=True).stdout.splitlines()
        rows += [json.loads(line) for line in lines if line.startswith("{")]
    return rows


def sweep_by_hand(sweep_file: Path, work: Path, warm_runtime: bool, one_process: bool
                  ) -> SweepRun:
    """The same points' flows one after the other, cold: in one fresh Python process (a
    user's script), or each in a fresh process of its own (``shiftrnn flow`` per point)."""
    n = len(load_sweep(sweep_file).points)
    processes = [list(range(n))] if one_process else [[i] for i in range(n)]
    with cold_start(work, "by-hand" if one_process else "by-hand-processes", warm_runtime) as out:
        t0 = time.perf_counter()
        runs = by_hand(sweep_file, out, processes)
        wall = time.perf_counter() - t0
    return SweepRun(wall, sum(r["flow_seconds"] for r in runs),
                    {r["name"]: figures_of(r) for r in runs}, {r["name"]: r["ran"] for r in runs})


def differences(runs: dict[str, SweepRun]) -> list[str]:
    """Point figures that differ between the runs (one line each)."""
    (ref_name, ref), *others = runs.items()
    out = []
    for name, run in others:
        for point, row in ref.rows.items():
            bad = sorted(k for k in row if row[k] != run.rows[point].get(k))
            if bad:
                out.append(f"{point}: {name} differs from {ref_name} in {', '.join(bad)}")
    return out


def print_sweep(runs: dict[str, SweepRun], load0, load1, rounds: int, args) -> None:
    """The sweep half's setup lines, markdown table, speed-up, overhead and figures check."""
    hand, one = runs["by hand"].wall, runs["Dask, 1 worker"].wall
    n = len(runs["by hand"].rows)
    names = list(runs["by hand"].rows)
    hidden, device = args.sweep_hidden, args.device
    print(f"sweep: {n} points = {len(names) // len(LANES)} methods x lanes "
          f"{', '.join(map(str, LANES))}; GRU hidden {hidden} trained on an 8-symbol corpus, "
          "cocotb bench, 512 timesteps on the fast path, ice40 synthesis"
          + (f", place and route on {device}" if device else ", no place and route")
          + "; every run cold (fresh cache and output folder"
          + (", with Verilator's run-time objects compiled into it before timing"
             if args.warm_runtime else "") + "); Verilator builds use make -j "
          f"{build_jobs()} in every run")
    shared = [p for p in names if "model" not in runs["Dask, 1 worker"].ran[p]]
    print(f"shared between points: the training of each method (points {', '.join(shared)} "
          "took it from the stage cache)" + ("" if args.warm_runtime else " and Verilator's "
          "run-time objects (compiled once per cache, for the first cocotb and fast-path "
          "builds)") + "; nothing else")
    print(machine_line(load0, load1, rounds) + "\n")
    print("| run | points | wall s | wall s per point | points' own s | points at once | "
          "vs by hand | vs 1 worker |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, run in runs.items():
        print(f"| {name} | {n} | {run.wall:.1f} | {run.wall / n:.1f} | {run.point_seconds:.1f} "
              f"| {run.point_seconds / run.wall:.2f} | {run.wall / hand:.3f} | "
              f"{one / run.wall:.2f}x |")
    procs = runs["by hand, a process per point"].wall
    print(f"\nspeed-up, 2 workers over 1: {one / runs['Dask, 2 workers'].wall:.2f}x; overhead of "
          f"the sweep on 1 worker over the runs by hand in one process: "
          f"{100 * (one - hand) / hand:+.1f}% ({(one - hand) / n:+.2f} s per point; outside the "
          f"points' flows: {one - runs['Dask, 1 worker'].point_seconds:.1f} s); over the runs by "
          f"hand in a process each: {100 * (one - procs) / procs:+.1f}% "
          f"({(one - procs) / n:+.2f} s per point)")
    diff = differences(runs)
    print("figures (BPC, cycles, LUTs, energy) of every point: "
          + ("the same in every run" if not diff else "DIFFER: " + "; ".join(diff)))


def sweep_half(args) -> None:
    """Time the sweep by hand, on 1 worker and on 2 workers; print the table."""
    work = Path(tempfile.mkdtemp(prefix="sweep_scaling-sweep-"))
    sweep_file = write_sweep_files(work, args.points, args.sweep_hidden, args.device)
    rounds = args.rounds or 1
    load0 = os.getloadavg()
    best: dict[str, SweepRun] = {}
    warm = args.warm_runtime
    runs = (("by hand", lambda: sweep_by_hand(sweep_file, work, warm, True)),
            ("by hand, a process per point",
             lambda: sweep_by_hand(sweep_file, work, warm, False)),
            ("Dask, 1 worker", lambda: sweep_on_dask(sweep_file, work, 1, warm)),
            ("Dask, 2 workers", lambda: sweep_on_dask(sweep_file, work, 2, warm)))
    for _ in range(rounds):
        for name, run in runs:
            res = run()
            if name not in best or res.wall < best[name].wall:
                best[name] = res
    print_sweep(best, load0, os.getloadavg(), rounds, args)
    print(f"(sweep files and every run's folder: {work})")


# ============================================================================== the sim half
def same_run(a: sim.SimResult, b: sim.SimResult) -> bool:
    """Outputs, cycles, toggles, handshake cycles and BPC all equal."""
    return bool(np.array_equal(a.outputs, b.outputs) and a.cycles == b.cycles
                and a.toggles == b.toggles and np.array_equal(a.in_cycles, b.in_cycles)
                and np.array_equal(a.out_cycles, b.out_cycles) and a.bpc == b.bpc)


def time_shards(design: sim.Design, x: np.ndarray, rounds: int
                ) -> tuple[float, sim.SimResult, dict[int, tuple[float, sim.SimResult]]]:
    """One process (the reference), then 1 and 2 workers alternating; each one's fastest."""
    t0 = time.perf_counter()
    ref = sim.simulate(design, x)
    ref_s = time.perf_counter() - t0
    assert ref.golden_equal and ref.timing_ok, ref.message
    best: dict[int, tuple[float, sim.SimResult]] = {}
    for _ in range(rounds):
        for workers in (1, 2):
            t0 = time.perf_counter()
            res = sim.simulate(design, x, workers=workers)
            wall = time.perf_counter() - t0
            assert same_run(ref, res) and res.toggles_exact, f"{workers} worker(s) differ"
            if workers not in best or wall < best[workers][0]:
                best[workers] = (wall, res)
    return ref_s, ref, best


def sim_half(args) -> None:
    """Time sharded simulation on 1 and 2 workers against one process; print the table."""
    model = golden.Model.random(args.cell, args.method, args.vocab, args.hidden,
                                output_size=args.vocab, input_kind="token", seed=args.seed)
    work = Path(tempfile.mkdtemp(prefix="sweep_scaling-"))
    design = sim.Design(hw.generate(model, out_dir=work / "design", lanes=args.lanes))
    t0 = time.perf_counter()
    fast_build(design)
    build_s = time.perf_counter() - t0
    x = np.random.default_rng(args.seed).integers(0, args.vocab,
                                                  size=(args.sequences, args.length))
    rounds = args.rounds or 2
    load0 = os.getloadavg()
    ref_s, ref, best = time_shards(design, x, rounds)
    load1 = os.getloadavg()

    n = x.size
    print(f"design: {args.cell} {args.method}, vocab {args.vocab}, hidden {args.hidden}, "
          f"folded on {args.lanes} lanes; {design.cycles_per_timestep} cycles/timestep; harness "
          f"build {build_s:.1f} s (0 if cached)")
    print(f"data: {args.sequences} sequences of {args.length} tokens = {n:,} timesteps, "
          f"{ref.cycles:,} cycles")
    print(machine_line(load0, load1, rounds) + "\n")
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


# ====================================================================================== main
def parse_args(argv=None) -> argparse.Namespace:
    """The command line (``--only``, ``--rounds``, and each half's sizes)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("sweep", "sim"), help="run one half (default: both)")
    p.add_argument("--rounds", type=int, help="rounds, each configuration's fastest kept "
                   "(default: 1 for the sweep, 2 for the simulation)")
    sweep = p.add_argument_group("sweep half")
    sweep.add_argument("--points", type=int, default=8, choices=(2, 4, 6, 8),
                       help="sweep points: methods x lanes 1 and 2")
    sweep.add_argument("--sweep-hidden", type=int, default=8, help="hidden units of the "
                       "sweep's GRU")
    sweep.add_argument("--device", help="also place and route every point on this device "
                       "(e.g. hx8k; default: synthesis only)")
    sweep.add_argument("--warm-runtime", action="store_true", help="compile Verilator's "
                       "run-time objects into each run's fresh cache before timing it (what "
                       "every sweep after a machine's first one finds; default: fully cold)")
    shard = p.add_argument_group("sharded simulation half")
    shard.add_argument("--cell", default="gru", choices=("rnn", "gru", "lstm"))
    shard.add_argument("--method", default="ternary")
    shard.add_argument("--hidden", type=int, default=128)
    shard.add_argument("--vocab", type=int, default=50)
    shard.add_argument("--lanes", type=int, default=8)
    shard.add_argument("--sequences", type=int, default=48)
    shard.add_argument("--length", type=int, default=256)
    shard.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        p.error("--rounds must be >= 1")
    return args


def main(argv=None) -> int:
    """Run the chosen halves; print their tables."""
    args = parse_args(argv)
    if args.only in (None, "sweep"):
        print("## Sweep on Dask\n")
        sweep_half(args)
    if args.only in (None, "sim"):
        if args.only is None:
            print()
        print("## Sharded simulation on Dask\n")
        sim_half(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
