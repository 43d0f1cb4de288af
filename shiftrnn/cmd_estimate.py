"""``shiftrnn estimate`` (area, fmax, energy of one design) and ``shiftrnn compare``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli import CliError

__all__ = ["register"]

#: Shown in --help; validated in the commands so that a bad value is one clear error line.
TARGET_CHOICES = "generic, xilinx7, ice40, ecp5"
DEVICE_CHOICES = "up5k, hx8k, lp384 (ice40); ecp5-25k (ecp5)"


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _tools(fn, *a, **kw):
    """Turn a tool failure into one CLI error line (the full log stays in the work folder)."""
    from estimate import ToolError

    try:
        return fn(*a, **kw)
    except ToolError as e:
        tail = [ln for ln in e.log_tail.splitlines() if ln.strip()]
        last = f"; log ends: {tail[-1].strip()}" if tail else ""
        raise CliError(f"{e.tool} failed ({e.detail}): {' '.join(e.command)}{last}") from None
    except RuntimeError as e:  # the Verilator path of --accuracy sim
        raise CliError(str(e).splitlines()[0]) from None


def _pj(v: float) -> str:
    from .compare import _fmt_pj

    return _fmt_pj(v)


def _print_estimate(rep: dict, path: Path) -> None:
    from .compare import _fmt_time

    cfg, hwr, en = rep["config"], rep["hardware"], rep["energy"]
    s, a, p = hwr["synth"], hwr["audit"], hwr["pnr"]
    datapath = cfg.get("datapath", "shiftadd")
    layout = "unrolled" if cfg.get("unrolled") else f"lanes={cfg.get('lanes')}"
    print(f"design {rep['design_dir']}: {cfg['cell']} {cfg['input_size']}->{cfg['hidden_size']} "
          f"{cfg['method']} datapath={datapath} {layout}, "
          f"{hwr['cycles_per_timestep']} cycles/timestep")
    area = (f"{s['cells_total']:,} cells (gates) FF {s['ff']:,}" if rep["target"] == "generic"
            else f"LUT {s['lut']:,}  FF {s['ff']:,}  carry {s['carry']:,}  DSP {s['dsp']}  "
                 f"BRAM {s['bram']}")
    print(f"synthesis ({rep['target']}, yosys {s['yosys_version']}): {area}")
    if a["multiplier_free"]:
        verdict = "multiplier-free" + (", as the shiftadd datapath requires" if a["required"]
                                       else "")
    elif a["required"]:
        verdict = "FAILED: the shiftadd datapath must have no multipliers"
    else:
        verdict = "the multiplier baseline, as expected"
    print(f"multiplier audit: {a['mul_cells']} $mul/$macc cell(s), {a['dsp']} DSP -- {verdict}")
    if p is None:
        print(f"place and route: none for target {rep['target']} (area only; use --target ice40 "
              f"or ecp5 for fmax)")
    elif p["fits"] and p["fmax_mhz"]:
        t = hwr["time_per_timestep_s"]
        print(f"place and route ({p['device']}, I/O wrapped): fmax {p['fmax_mhz']:.1f} MHz -> "
              f"{_fmt_time(t)}/timestep ({hwr['timesteps_per_s']:,.0f} timesteps/s)")
    else:
        print(f"place and route ({p['device']}, I/O wrapped): {p['message']}")
    d, i8, f32 = en["design"], en["int8-mult"], en["float32"]
    print(f"energy per timestep ({d['label']}): {_pj(d['per_timestep_pj'])}; int8-mult "
          f"{_pj(i8['per_timestep_pj'])} ({en['ratio_int8_mult']:.2f}x), float32 "
          f"{_pj(f32['per_timestep_pj'])} ({en['ratio_float32']:.2f}x)")
    print(f"energy per sequence of {en['length']}: {_pj(d['per_sequence_pj'])}; int8-mult "
          f"{_pj(i8['per_sequence_pj'])}, float32 {_pj(f32['per_sequence_pj'])}  "
          f"[45 nm op-count model, docs/estimates.md]")
    if en.get("note"):
        print(f"  ({en['note']})")
    print(f"wrote {path}")


def _estimate(args) -> int:
    from .compare import estimate_design, read_design, resolve_device, write_json

    try:
        resolve_device(args.target, args.device)
    except ValueError as e:
        raise CliError(str(e)) from None
    d, _ = read_design(args.design)
    path = d / f"estimate_{args.target}.json"
    if path.exists() and not args.force:
        raise CliError(f"{path} exists; pass --force to overwrite it (tool results are cached, "
                       f"so re-running is quick)")
    rep = _tools(estimate_design, d, args.target, args.device, length=args.length,
                 progress=not args.no_progress and sys.stderr.isatty())
    write_json(path, rep, force=True)
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        _print_estimate(rep, path)
    return 0 if rep["hardware"]["audit"]["passed"] else 1


def _compare(args) -> int:
    import golden

    from .compare import compare, resolve_device

    try:
        resolve_device(args.target, args.device)
    except ValueError as e:
        raise CliError(str(e)) from None
    model = golden.load(args.model)
    methods = None
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    params: dict[str, dict] = {}
    for item in args.method_param or []:
        method, sep, kv = item.partition(":")
        key, eq, value = kv.partition("=")
        if not sep or not eq or not key:
            raise CliError(f"--method-param {item!r}: expected METHOD:KEY=VALUE, e.g. "
                           f"pow2-ternary:f=3")
        try:
            params.setdefault(method, {})[key] = float(value) if key in ("H", "W0") else \
                int(value)
        except ValueError:
            raise CliError(f"--method-param {item!r}: {value!r} is not a number") from None
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise CliError(f"{out} exists; pass --force to overwrite it")
    res = _tools(compare, model, args.lanes, out, corpus=args.corpus, target=args.target,
                 progress=not args.no_progress and sys.stderr.isatty(), device=args.device,
                 methods=methods, length=args.length, accuracy=args.accuracy, force=args.force,
                 place=not args.no_pnr, method_params=params or None)
    if args.json:
        print(res.json_path.read_text(), end="")
        return 0
    c = res.config
    print(f"{c['cell']} {c['input_size']}->{c['hidden_size']} ({c['method']} model), "
          f"lanes={c['lanes']}, target {c['target']}"
          + (f", place and route on {c['device']}" if c["device"] else " (area only)")
          + (f", BPC on {c['corpus']}" if c["corpus"] else ""))
    print(res.table, end="")
    for r in res.rows:
        if r.get("note"):
            print(f"  {r['method']}: {r['note']}")
    print(f"wrote {res.json_path}, {res.md_path}, "
          + ", ".join(str(p) for p in res.plots.values()))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "estimate", help="area, fmax and energy of a generated design",
        description="Synthesise a design folder with yosys (resources and a multiplier audit), "
                    "place and route it with nextpnr (ice40/ecp5, I/O wrapped so pins do not "
                    "limit; 'does not fit' is a result) and price its operations per timestep "
                    "and per sequence beside float32 and int8-multiplier baselines. Writes "
                    "DESIGN/estimate_<target>.json.")
    p.add_argument("design", metavar="rtl_out/NAME", help="generated design folder")
    p.add_argument("--target", default="ice40", metavar="T",
                   help=f"synthesis target: {TARGET_CHOICES} (default ice40)")
    p.add_argument("--device", metavar="D",
                   help=f"place-and-route device: {DEVICE_CHOICES} (default up5k for ice40, "
                        f"ecp5-25k for ecp5)")
    p.add_argument("--length", type=_positive, default=256, metavar="T",
                   help="sequence length for the energy per sequence (default 256)")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of text")
    p.add_argument("--force", action="store_true", help="overwrite estimate_<target>.json")
    p.add_argument("--no-progress", action="store_true", help="no status line while tools run")
    p.set_defaults(func=_estimate)

    p = sub.add_parser(
        "compare", help="the same network as float32, int8-multiplier and each low precision",
        description="Build the model's network as an int8-multiplier design (mult datapath) "
                    "and as each low-precision method (shiftadd, re-quantized from the model's "
                    "effective weights) at the same lanes, estimate area, fmax and energy (and "
                    "bits per character with --corpus), and write a table, compare.json, "
                    "compare.md and plots into --out.")
    p.add_argument("model", help="model file (.npz)")
    p.add_argument("--lanes", type=_positive, required=True, metavar="N",
                   help="hidden units computed in parallel, for every variant")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--corpus", metavar="FILE", help="text file for bits per character")
    p.add_argument("--target", default="ice40", metavar="T",
                   help=f"synthesis target: {TARGET_CHOICES} (default ice40)")
    p.add_argument("--device", metavar="D", help=f"place-and-route device: {DEVICE_CHOICES}")
    p.add_argument("--methods", metavar="M,M",
                   help="low-precision methods (default: binary,ternary,pow2-ternary,"
                        "exponential)")
    p.add_argument("--method-param", action="append", metavar="METHOD:KEY=VALUE",
                   help="parameter of a re-quantized method instead of the one fitted to the "
                        "weights, e.g. pow2-ternary:f=3 (repeatable)")
    p.add_argument("--length", type=_positive, default=256, metavar="T",
                   help="sequence length for the energy per sequence (default 256)")
    p.add_argument("--accuracy", choices=("golden", "sim"), default="golden",
                   help="BPC from golden's integer path (default) or from the RTL (Verilator)")
    p.add_argument("--no-pnr", action="store_true",
                   help="area only: skip place and route (faster)")
    p.add_argument("--json", action="store_true", help="print compare.json instead of the table")
    p.add_argument("--force", action="store_true", help="write into an existing --out folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_compare)
