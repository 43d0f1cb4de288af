"""Waveform size and bench time of ``sim.verify`` with ``waves="debug"`` against ``"full"``.

One design shaped like the demo (GRU, ternary, token input 50, hidden 32, head 50, lanes 1; a
random model, since activity, not accuracy, sets the size), the flow's default bench settings
(4 sequences up to length 12, idle and backpressure 0.3), one run per mode, builds cached first
so that the times compare simulations. Prints a Markdown table; no averaging.

Usage: ``.venv/bin/python bench/waves_size.py [--simulator icarus]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import golden
import hw
import sim


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--simulator", default="verilator", choices=sim.SIMULATORS)
    p.add_argument("--lanes", type=int, default=1)
    args = p.parse_args(argv)
    model = golden.Model.random("gru", "ternary", 50, 32, output_size=50, input_kind="token",
                                seed=0)
    work = Path(tempfile.mkdtemp(prefix="waves_size-"))
    d = hw.generate(model, out_dir=work / "gru", lanes=args.lanes)
    ext = "vcd" if args.simulator == "verilator" else "fst"
    kw = {"sequences": 4, "length": 12, "seed": 0, "simulator": args.simulator}
    rows = []
    for mode in ("none", "debug", "full"):
        sim.verify(d, waves=mode, tests=("timing",), length=2, sequences=1,
                   simulator=args.simulator, waves_path=work / f"warm.{ext}")  # build once
        t0 = time.perf_counter()
        res = sim.verify(d, waves=mode, waves_path=work / f"{mode}.{ext}", **kw)
        wall = time.perf_counter() - t0
        assert res.passed, res.summary()
        size = res.waves.stat().st_size if res.waves else 0
        rows.append((mode, size, wall, res.outputs))
    print(f"design: {sim.Design(d).summary()}; {args.simulator}; load {os.getloadavg()[0]:.2f}")
    print("\n| waves | file bytes | vs full | verify s (warm build) | outputs |")
    print("|---|---:|---:|---:|---:|")
    full = rows[-1][1]
    for mode, size, wall, outs in rows:
        ratio = f"{size / full:.4f}" if size else "-"
        print(f"| {mode} | {size:,} | {ratio} | {wall:.1f} | {outs} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
