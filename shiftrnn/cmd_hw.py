"""``shiftrnn generate``: a model file to Verilog, a manifest and a lint waiver."""

from __future__ import annotations

import argparse
from pathlib import Path

import golden
import hw
from golden.manifest import Manifest

from .cli import CliError

__all__ = ["register"]


def _generate(args: argparse.Namespace) -> int:
    model = golden.load(args.model)
    out = Path(args.out)
    if args.lanes is None and not args.unrolled:
        raise CliError("give --lanes N (folded) or --unrolled")
    if args.lanes is not None and not 1 <= args.lanes <= model.hidden_size:
        raise CliError(f"--lanes {args.lanes}: must be in 1..{model.hidden_size} (the hidden "
                       f"size of {args.model}); use --unrolled for a fully parallel design")
    try:
        design = hw.generate(model, out_dir=out, lanes=args.lanes, unrolled=args.unrolled,
                             datapath=args.datapath, name=args.name, force=args.force,
                             skip=not args.no_skip)
    except FileExistsError:
        raise CliError(f"{out} exists; pass --force to overwrite it") from None
    man = Manifest.read(design)
    print(f"wrote {design / man.verilog} ({man.verilog_bytes} bytes, top {man.top}) "
          f"in {man.generation_seconds:.2f} s")
    print(f"  {man.config.cell} {man.config.method} datapath={args.datapath} "
          f"lanes={man.config.lanes}{' (unrolled)' if args.unrolled else ''}: "
          f"{man.cycles_per_timestep} cycles/timestep, latency {man.latency}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate Verilog + manifest from a model file")
    p.add_argument("model", help="model file (.npz)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--lanes", type=int, help="hidden units computed in parallel (folded)")
    g.add_argument("--unrolled", action="store_true", help="weights as wiring, fully parallel")
    p.add_argument("--datapath", choices=hw.DATAPATHS, default="shiftadd",
                   help="shiftadd (multiplier-free) or mult (the multiplier baseline)")
    p.add_argument("--no-skip", action="store_true",
                   help="folded designs: keep every weight in the ROMs, zeros too (the dense "
                        "design, for comparison; default: zero weights are skipped)")
    p.add_argument("--out", required=True, help="design folder, e.g. rtl_out/NAME")
    p.add_argument("--name", help="design name (default: the folder name)")
    p.add_argument("--force", action="store_true", help="overwrite an existing design folder")
    p.set_defaults(func=_generate)
