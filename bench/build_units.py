"""Compile cost of a Verilator build: its main in the model's C++ unit, or on its own.

Both builds of a design, the cocotb simulator (``sim.build.cocotb_build``) and the fast-path
harness (``sim.harness.fast_build``), run ``--rounds`` times each way, alternating, from one
cache of Verilator's run-time objects (the design's own build folder is removed before every
build, so each one runs Verilator, make and gcc in full). "one unit" is today's build
(``sim.build.one_unit``); "two units" is the same build with that function patched to add
nothing, which compiles the main (cocotb's ``verilator.cpp``, our ``harness.cpp``) on its own,
in parallel with the model under ``make -j``, as before. Where Verilator splits a large model
over several C++ files, the main stays a file of its own either way (the table says so). CPU
seconds are the build's child processes (Verilator, make, gcc). The table keeps each
configuration's fastest round. Every harness build runs a short sequence and must equal golden.

Usage: ``.venv/bin/python bench/build_units.py [--rounds 3]``
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import golden
import hw
import sim
from golden.files import CACHE_ENV
from sim import build
from sim.build import build_jobs
from sim.harness import fast_build

#: (label, cell, vocabulary, hidden, lanes): the design of bench/sim_speed.py and a larger one.
DESIGNS = (("GRU-16, 4 lanes", "gru", 16, 16, 4), ("GRU-64, 8 lanes", "gru", 50, 64, 8))
WAYS = ("two units", "one unit")


def children_cpu() -> float:
    """CPU seconds of this process's finished children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_build(kind: str, design: sim.Design, way: str) -> tuple[float, float, bool]:
    """(wall s, CPU s, model split over files) of one full build of ``kind`` ('cocotb' or
    'fast') built ``way``."""
    one_unit = build.one_unit
    if way == "two units":
        build.one_unit = lambda main: ([], [])
    try:
        t0, c0 = time.perf_counter(), children_cpu()
        if kind == "fast":
            folder, built = fast_build(design)
        else:
            folder, built = build.cocotb_build(design.verilog, design.top,
                                               verilog_hash=design.verilog_hash)
        wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    finally:
        build.one_unit = one_unit
    assert built, f"{kind} build of {design.name} came from the cache"
    whole = folder / "Vtop__ALL.cpp"  # absent where Verilator split the model over files
    main = "harness" if kind == "fast" else "verilator"
    assert not whole.exists() or (f"{main}.cpp" in whole.read_text()) == (way == "one unit"), \
        f"{kind} build of {design.name} was not built as {way}"
    if kind == "fast":
        x = np.random.default_rng(0).integers(0, design.model.input_size, size=(2, 8))
        res = sim.simulate(design, x)
        assert res.golden_equal, res.message
    split = not whole.exists()
    shutil.rmtree(folder)
    return wall, cpu, split


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (fastest kept)")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="build_units-"))
    os.environ[CACHE_ENV] = str(work / "cache")
    designs = []
    for label, cell, vocab, hidden, lanes in DESIGNS:
        model = golden.Model.random(cell, "ternary", vocab, hidden, output_size=vocab,
                                    input_kind="token", seed=0)
        d = hw.generate(model, out_dir=work / label.split(",")[0], lanes=lanes)
        designs.append((label, sim.Design(d)))
    # Verilator's run-time objects, compiled once per cache: outside the timing.
    build.runtime_objects("cocotb")
    timed_build("fast", designs[0][1], "one unit")
    load0 = os.getloadavg()
    best: dict[tuple, tuple[float, float, bool]] = {}
    for _ in range(args.rounds):
        for label, design in designs:
            for kind in ("cocotb", "fast"):
                for way in WAYS:
                    run = timed_build(kind, design, way)
                    key = (label, kind, way)
                    if key not in best or run[0] < best[key][0]:
                        best[key] = run
    load1 = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, make -j {build_jobs()}, load "
          f"average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end; best of "
          f"{args.rounds} rounds\n")
    print("| design | build | model C++ | two units: wall s | CPU s | one unit: wall s | CPU s "
          "| CPU saved |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for label, _ in designs:
        for kind in ("cocotb", "fast"):
            (w2, c2, _), (w1, c1, split) = (best[(label, kind, way)] for way in WAYS)
            files = "split (main on its own)" if split else "one file"
            print(f"| {label} | {kind} | {files} | {w2:.2f} | {c2:.2f} | {w1:.2f} | {c1:.2f} | "
                  f"{1 - c1 / c2:.0%} |")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
