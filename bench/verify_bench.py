"""The cocotb bench (``sim.verify``) against a named baseline revision: speed and waveform size.

One design shaped like the demo (GRU, ternary, token input 50, hidden 32, head 50, lanes 1; a
random model: activity, not accuracy, sets the cost), the flow's bench settings (4 sequences up
to length 12, idle and backpressure 0.3, seed 0). The baseline's ``sim/`` package is taken from
``--baseline`` (a git revision) into a temporary folder and run the same way in a subprocess;
runs alternate (baseline, this tree, baseline, this tree) so both see the same machine load.
Builds are warmed first. Cycles/s are simulated clock cycles per wall second inside the
simulator process (the bench's Python included). Prints Markdown tables; no averaging.

Usage: ``.venv/bin/python bench/verify_bench.py [--baseline e971200] [--simulator icarus]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import golden
import hw

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import json, sys, time
import sim
d, waves, out, simulator = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
kw = {} if simulator == "verilator" else {"simulator": simulator}
waves = {"none": False, "true": True}.get(waves, waves)
t0 = time.perf_counter()
r = sim.verify(d, sequences=4, length=12, seed=0, waves=waves, waves_path=out or None, **kw)
wall = time.perf_counter() - t0
assert r.passed, r.summary()
cyc = sum(t.get("cycles", 0) for t in r.tests.values())
ins = sum(t.get("wall_seconds", 0) for t in r.tests.values())
size = r.waves.stat().st_size if r.waves else 0
print(json.dumps({"outputs": r.outputs, "cycles": cyc, "insim": ins, "wall": wall,
                  "bytes": size}))
"""


def run(pythonpath: str | None, design: Path, waves: str, out: str, simulator: str) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    p = subprocess.run([sys.executable, "-c", RUN, str(design), waves, out, simulator],
                       env=env, cwd=design.parent, capture_output=True, text=True, check=False)
    if p.returncode:
        raise SystemExit(f"verify failed ({pythonpath or 'this tree'}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="e971200", help="git revision of the baseline bench")
    ap.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="verify_bench-"))
    base = work / "baseline"
    base.mkdir()
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "sim"],
                         capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(base)], input=tar, check=True)
    model = golden.Model.random("gru", "ternary", 50, 32, output_size=50, input_kind="token",
                                seed=0)
    d = hw.generate(model, out_dir=work / "gru", lanes=1)
    sides = {f"baseline {args.baseline}": str(base), "this tree": None}
    if args.simulator != "verilator":  # the baseline has no Icarus bench
        sides.pop(f"baseline {args.baseline}")
    for path in sides.values():
        run(path, d, "none", "", args.simulator)  # warm the builds
    rows = [(name, run(path, d, "none", "", args.simulator))
            for _ in range(2) for name, path in sides.items()]
    print(f"design: GRU ternary token 50 hidden 32 head 50 lanes 1, {args.simulator}; "
          f"load {os.getloadavg()[0]:.2f} at the end")
    print("\n| bench | outputs | cycles | in-sim s | cycles/s | verify s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['outputs']} | {r['cycles']:,} | {r['insim']:.1f} | "
              f"{r['cycles'] / r['insim']:,.0f} | {r['wall']:.1f} |")
    ext = "vcd" if args.simulator == "verilator" else "fst"
    print("\n| waveform | bytes |\n|---|---:|")
    for name, path in sides.items():
        modes = ["true"] if path else ["debug", "full"]
        for mode in modes:
            r = run(path, d, mode, str(work / f"{name[:4]}-{mode}.{ext}"), args.simulator)
            label = f"{name}, waves={'True (full dump)' if path else repr(mode)}"
            print(f"| {label} | {r['bytes']:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
