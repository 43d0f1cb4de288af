"""Generation time and Verilog size vs hidden size (issue 3): GRU, token input 64, head 64.

Run: ``.venv/bin/python bench/generate_speed.py [--quick]``. Prints a table and writes it into
the ``## Generation`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

from benchdoc import DOC, write_section

import golden
import hw


def measure(hidden: int, mode: str) -> tuple[float, int, int]:
    model = golden.Model.random("gru", "ternary", 64, hidden, output_size=64, seed=0)
    kw = {"unrolled": True} if mode == "unrolled" else {"lanes": 8}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        d = hw.generate(model, out_dir=Path(tmp) / "g", **kw)
        seconds = time.perf_counter() - t0
        size = (d / "g.v").stat().st_size
    return seconds, size, hw.timing(model, lanes=kw.get("lanes"),
                                    unrolled=mode == "unrolled").cycles_per_timestep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    args = ap.parse_args()
    cases = [("folded lanes=8", h) for h in ((32, 64) if args.quick else (32, 64, 128, 256))]
    cases += [("unrolled", h) for h in ((16,) if args.quick else (16, 32, 64))]
    rows = ["| mode | hidden | seconds | Verilog bytes | cycles/timestep |",
            "|---|---|---|---|---|"]
    for mode, hidden in cases:
        s, size, cpt = measure(hidden, "unrolled" if mode == "unrolled" else "folded")
        rows.append(f"| {mode} | {hidden} | {s:.1f} | {size:,} | {cpt} |")
        print(rows[-1], flush=True)
    text = (f"GRU, ternary, token input 64, head 64; `bench/generate_speed.py`, run {date.today()} "
            f"on {platform.machine()} with {os.cpu_count()} cores (other jobs running: "
            f"load {os.getloadavg()[0]:.1f}). Time covers elaboration, Verilog emission by "
            "Amaranth's bundled yosys and writing the design folder.\n\n" + "\n".join(rows))
    write_section("Generation", text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
