"""Hardware quality of results (issue 12): the generated designs before and after the fast
datapath (pipelined, zero-skipping, registered ports), from one run.

Designs (the issue's): the demo GRU (trained as ``shiftrnn demo`` trains it: hidden 32, ternary,
token 50, head 50) with lanes 1 on an iCE40 UP5K; a random ternary GRU-64 (token 64, head 64,
seed 1) with lanes 4 on an ECP5-25k; the ``examples/lstm.toml`` model (trained as its flow
does) with lanes 1 on an iCE40 HX8K; a random ternary GRU-16 (token 16, head 16, seed 1),
unrolled, on an ECP5-25k.

Variants of each, shift-add and the multiplier baseline: ``before`` is the generator at commit
:data:`BEFORE` (the one issue 12 measured), generated from ``git archive`` of that commit in
a subprocess; ``dense`` is this generator with dense weight codes (``--no-skip``: the new
pipeline, every weight streamed); ``after`` is this generator. Area from yosys for the device's
family, fmax from nextpnr (I/O wrapped, nextpnr's default target), timesteps/s = fmax /
cycles per timestep. Results are cached (``estimate``'s cache), so a rerun only does what
changed.

Run: ``.venv/bin/python bench/hw_qor.py [--only NAME ...] [--no-before]``; prints the table and
writes the ``## Hardware QoR`` section of docs/benchmarks.md. Expect hours on a loaded 2-core
machine (ECP5 place and route of the GRU-64 dominates).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
from datetime import date
from io import BytesIO
from pathlib import Path

from benchdoc import DOC, write_section

import golden
import hw
from estimate import place_and_route, synthesize
from golden.manifest import Manifest

ROOT = Path(__file__).resolve().parent.parent
#: The generator before issue 12 (main when the issue was filed and measured).
BEFORE = "e971200"
#: ``shiftrnn train`` arguments that reproduce the flows' trained models (examples/*.toml).
TRAIN = {
    "demo": ["--cell", "gru", "--method", "ternary", "--hidden", "32"],
    "lstm": ["--cell", "lstm", "--method", "exponential", "--method-param", "kmin=-4",
             "--method-param", "kmax=0", "--hidden", "24"],
}
#: name: (model source, generate options, device, what it is)
DESIGNS = {
    "demo": ("demo", {"lanes": 1}, "up5k", "demo GRU (hidden 32, token 50, head 50), lanes 1"),
    "gru64": ("gru64", {"lanes": 4}, "ecp5-25k", "GRU-64 (token 64, head 64), lanes 4"),
    "lstm": ("lstm", {"lanes": 1}, "hx8k", "examples/lstm.toml (LSTM-24, exponential), lanes 1"),
    "gru16u": ("gru16", {"unrolled": True}, "ecp5-25k", "GRU-16 (token 16, head 16), unrolled"),
}
FAMILY = {"up5k": "ice40", "hx8k": "ice40", "ecp5-25k": "ecp5"}
#: (variant, datapath) columns, in table order.
VARIANTS = [("before", "shiftadd"), ("dense", "shiftadd"), ("after", "shiftadd"),
            ("before", "mult"), ("after", "mult")]


def model_file(source: str, work: Path) -> Path:
    """The model of a design: trained like its flow (cached in ``work``), or random."""
    path = work / f"{source}.npz"
    if path.exists():
        return path
    if source in TRAIN:
        subprocess.run([sys.executable, "-m", "shiftrnn.cli", "train", *TRAIN[source],
                        "--nonlinearity", "hard", "--epochs", "20", "--fake-quant",
                        "--eval-every", "5", "--out", str(path), "--force"], check=True)
    else:
        n = int(source[3:])
        golden.Model.random("gru", "ternary", n, n, output_size=n, seed=1).save(path)
    return path


def before_generator(work: Path) -> Path | None:
    """``golden`` and ``hw`` of commit :data:`BEFORE`, unpacked in ``work`` (None: no git)."""
    src = work / f"src-{BEFORE}"
    if not src.exists():
        try:
            tar = subprocess.run(["git", "archive", BEFORE, "golden", "hw"], cwd=ROOT,
                                 check=True, capture_output=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"no 'before' column: git archive {BEFORE} failed ({e})")
            return None
        with tarfile.open(fileobj=BytesIO(tar)) as t:
            t.extractall(src, filter="data")
    return src


def generate(variant: str, model: Path, out: Path, kw: dict, datapath: str, src: Path | None):
    """Generate one variant; returns (verilog path, top, cycles per timestep, latency)."""
    if not out.exists():
        if variant == "before":
            code = (f"import golden, hw; hw.generate(golden.load({str(model)!r}), "
                    f"out_dir={str(out)!r}, datapath={datapath!r}, **{kw!r})")
            subprocess.run([sys.executable, "-c", code], check=True, cwd=src,
                           env={**os.environ, "PYTHONPATH": str(src)})
        else:
            hw.generate(golden.load(model), out_dir=out, datapath=datapath,
                        skip=variant != "dense", **kw)
    man = json.loads((out / "manifest.json").read_text())
    if variant != "before":
        Manifest.read(out)  # this generator's manifest must parse
    return out / man["verilog"], man["top"], man["cycles_per_timestep"], man["latency"]


def measure(name: str, variant: str, datapath: str, work: Path, src: Path | None) -> dict:
    """One row of the table, kept in ``work/rows`` so that a rerun (or another process working
    on other designs in the same folder) reuses it."""
    saved = work / "rows" / f"{name}_{variant}_{datapath}.json"
    if saved.exists():
        return json.loads(saved.read_text())
    row = _measure(name, variant, datapath, work, src)
    saved.parent.mkdir(exist_ok=True)
    golden.atomic_write_bytes(saved, json.dumps(row).encode())
    return row


def _measure(name: str, variant: str, datapath: str, work: Path, src: Path | None) -> dict:
    source, kw, device, _ = DESIGNS[name]
    out = work / f"{name}_{variant}_{datapath}"
    v, top, cpt, lat = generate(variant, model_file(source, work), out, kw, datapath, src)
    s = synthesize(v, top, FAMILY[device], timeout=7200)
    p = place_and_route(v, top, device, wrap_io=True, timeout=7200)
    row = {"design": name, "variant": variant, "datapath": datapath, "cycles": cpt,
           "latency": lat, "lut": s.lut, "ff": s.ff, "bram": s.bram, "dsp": s.dsp,
           "fmax": p.fmax_mhz if p.fits else None, "fits": p.fits, "message": p.message}
    row["tps"] = row["fmax"] * 1e6 / cpt if row["fmax"] else None
    return row


def table(rows: list[dict]) -> str:
    lines = ["| design | datapath | variant | cycles/timestep | latency | LUT | FF | BRAM | DSP "
             "| fmax MHz | timesteps/s |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        fmax = f"{r['fmax']:.1f}" if r["fmax"] else ("does not fit" if not r["fits"] else "-")
        tps = f"{r['tps']:,.0f}" if r["tps"] else "-"
        lines.append(f"| {r['design']} ({DESIGNS[r['design']][2]}) | {r['datapath']} | "
                     f"{r['variant']} | {r['cycles']:,} | {r['latency']:,} | {r['lut']:,} | "
                     f"{r['ff']:,} | {r['bram']} | {r['dsp']} | {fmax} | {tps} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=tuple(DESIGNS), help="these designs only")
    ap.add_argument("--no-before", action="store_true", help="skip the before column")
    ap.add_argument("--work", help="keep the designs, models and rows here (default: a temp "
                    "folder); rows already in it are reused")
    ap.add_argument("--variants", nargs="+", choices=[f"{v}/{d}" for v, d in VARIANTS],
                    help="these variants only")
    ap.add_argument("--no-write", action="store_true", help="measure, do not write the doc")
    ap.add_argument("--measured-only", action="store_true",
                    help="with --work: the table of the rows already measured there, nothing new")
    args = ap.parse_args()
    names = args.only or list(DESIGNS)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        src = None if args.no_before else before_generator(work)
        rows = []
        for name in names:
            for variant, datapath in VARIANTS:
                if (variant == "before" and src is None) or (
                        args.variants and f"{variant}/{datapath}" not in args.variants):
                    continue
                if args.measured_only and not (
                        work / "rows" / f"{name}_{variant}_{datapath}.json").exists():
                    continue
                rows.append(measure(name, variant, datapath, work, src))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
        if args.no_write:
            return
    designs = "; ".join(f"{n}: {DESIGNS[n][3]} on {DESIGNS[n][2]}" for n in names)
    text = (f"`bench/hw_qor.py`, run {date.today()} on {platform.machine()} with "
            f"{os.cpu_count()} cores (load {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at "
            f"the end: other jobs running). {designs}. `before`: the generator at {BEFORE}; "
            "`dense`: this generator with `--no-skip`; `after`: this generator. LUT/FF/BRAM/DSP "
            "from yosys for the device's family; fmax from nextpnr (I/O wrapped, default "
            "target); timesteps/s = fmax / cycles per timestep.\n\n" + table(rows))
    print(table(rows))
    write_section("Hardware QoR", text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
