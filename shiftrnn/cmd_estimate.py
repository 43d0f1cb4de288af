"""``shiftrnn estimate`` (area, fmax, energy of one design) and ``shiftrnn compare``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import estimate
import golden

from .cli import CliError
from .flow.compare import ACCURACY_PATHS
from .options import add_data_options, add_output_options, eval_data_from_args, positive

__all__ = ["register"]

#: Shown in --help; validated in the commands so that a bad value is one clear error line.
TARGET_CHOICES = ", ".join(estimate.TARGETS)
DEVICE_CHOICES = "; ".join(
    f"{', '.join(d for d, v in estimate.DEVICES.items() if v.family == fam)} ({fam})"
    for fam in dict.fromkeys(v.family for v in estimate.DEVICES.values()))


def _tools(fn, *a, **kw):
    """Turn a tool failure into one CLI error line (the full log stays in the work folder)."""
    try:
        return fn(*a, **kw)
    except estimate.ToolError as e:
        tail = [ln for ln in e.log_tail.splitlines() if ln.strip()]
        last = f"; log ends: {tail[-1].strip()}" if tail else ""
        raise CliError(f"{e.tool} failed ({e.detail}): {' '.join(e.command)}{last}") from None
    except RuntimeError as e:  # the Verilator path of --accuracy sim
        raise CliError(str(e).splitlines()[0]) from None


def _resolve(target: str, device: str | None) -> None:
    try:
        estimate.resolve_device(target, device)
    except ValueError as e:
        raise CliError(str(e)) from None


def _print_estimate(rep: estimate.DesignEstimate, path: Path) -> None:
    from .flow.compare_report import fmt_pj, fmt_time

    cfg, hwr, en = rep.config, rep.hardware, rep.energy
    s, a, p = hwr.synth, hwr.audit, hwr.pnr
    layout = "unrolled" if cfg["unrolled"] else f"lanes={cfg['lanes']}"
    print(f"design {rep.design_dir}: {cfg['cell']} {cfg['input_size']}->{cfg['hidden_size']} "
          f"{cfg['method']} datapath={cfg['datapath']} {layout}, "
          f"{hwr.cycles_per_timestep} cycles/timestep")
    area = (f"{s.cells_total:,} cells (gates) FF {s.ff:,}" if rep.target == "generic"
            else f"LUT {s.lut:,}  FF {s.ff:,}  carry {s.carry:,}  DSP {s.dsp}  BRAM {s.bram}")
    print(f"synthesis ({rep.target}, yosys {s.yosys_version}): {area}")
    if a.multiplier_free:
        verdict = "multiplier-free" + (", as the shiftadd datapath requires" if a.required
                                       else "")
    elif a.required:
        verdict = "FAILED: the shiftadd datapath must have no multipliers"
    else:
        verdict = "the multiplier baseline, as expected"
    print(f"multiplier audit: {a.mul_cells} $mul/$macc cell(s), {a.dsp} DSP -- {verdict}")
    if p is None:
        print(f"place and route: none for target {rep.target} (area only; use --target ice40 "
              f"or ecp5 for fmax)")
    elif p.fits and p.fmax_mhz:
        print(f"place and route ({p.device}, I/O wrapped): fmax {p.fmax_mhz:.1f} MHz -> "
              f"{fmt_time(hwr.time_per_timestep_s)}/timestep ({hwr.timesteps_per_s:,.0f} "
              "timesteps/s)")
    else:
        print(f"place and route ({p.device}, I/O wrapped): {p.message}")
    d, i8, f32, n = en["design"], en["int8-mult"], en["float32"], rep.length
    print(f"energy per timestep ({d.label}): {fmt_pj(d.per_timestep_pj)}; int8-mult "
          f"{fmt_pj(i8.per_timestep_pj)} ({rep.ratio('int8-mult'):.2f}x), float32 "
          f"{fmt_pj(f32.per_timestep_pj)} ({rep.ratio('float32'):.2f}x)")
    print(f"energy per sequence of {n}: {fmt_pj(d.per_sequence_pj(n))}; int8-mult "
          f"{fmt_pj(i8.per_sequence_pj(n))}, float32 {fmt_pj(f32.per_sequence_pj(n))}  "
          f"[45 nm op-count model, docs/estimates.md]")
    if rep.note:
        print(f"  ({rep.note})")
    print(f"wrote {path}")


def _estimate(args) -> int:
    """Synthesise a design folder with yosys (resources and a multiplier audit), place and
    route it with nextpnr (ice40/ecp5, I/O wrapped so pins do not limit; 'does not fit' is a
    result) and price its operations per timestep and per sequence beside float32 and
    int8-multiplier baselines. Writes DESIGN/estimate_<target>.json."""
    _resolve(args.target, args.device)
    d, _ = estimate.read_design(args.design)
    path = d / f"estimate_{args.target}.json"
    if path.exists() and not args.force:
        raise CliError(f"{path} exists; pass --force to overwrite it (tool results are cached, "
                       f"so re-running is quick)")
    rep = _tools(estimate.estimate_design, d, args.target, args.device, length=args.length,
                 progress=not args.no_progress and sys.stderr.isatty())
    doc = rep.to_dict()
    golden.atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        _print_estimate(rep, path)
    return 0 if rep.hardware.audit.passed else 1


def _method_params(items) -> dict[str, dict]:
    params: dict[str, dict] = {}
    for item in items or []:
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
    return params


def _compare(args) -> int:
    """Build the model's network as an int8-multiplier design (mult datapath) and as each
    low-precision method (shiftadd, re-quantized from the model's effective weights) at the
    same lanes, estimate area, fmax and energy, score bits per character on a text, and write a
    table, compare.json, compare.md and plots into --out."""
    from .flow.compare import compare

    _resolve(args.target, args.device)
    model = golden.load(args.model)
    methods = None
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    params = _method_params(args.method_param)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise CliError(f"{out} exists; pass --force to overwrite it")
    data = eval_data_from_args(args, model, args.model, required=False)
    if data is not None and data.kind != "lm":
        raise CliError(f"{data.describe}: bits per character needs a character language model "
                       "(token input and a head over the same vocabulary)")
    res = _tools(compare, model, args.lanes, out, tokens=None if data is None else data.tokens,
                 target=args.target, progress=not args.no_progress and sys.stderr.isatty(),
                 device=args.device, methods=methods, length=args.length,
                 accuracy=args.accuracy, force=args.force, place=not args.no_pnr,
                 method_params=params or None, corpus=None if data is None else data.describe)
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
        if r.note:
            print(f"  {r.method}: {r.note}")
    print(f"wrote {res.json_path}, {res.md_path}, "
          + ", ".join(str(p) for p in res.plots.values()))
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "estimate", help="area, fmax and energy of a generated design",
        description=_estimate.__doc__)
    p.add_argument("design", metavar="rtl_out/NAME", help="generated design folder")
    p.add_argument("--target", default="ice40", metavar="T",
                   help=f"synthesis target: {TARGET_CHOICES} (default ice40)")
    p.add_argument("--device", metavar="D",
                   help=f"place-and-route device: {DEVICE_CHOICES} (default up5k for ice40, "
                        f"ecp5-25k for ecp5)")
    p.add_argument("--length", type=positive, default=256, metavar="T",
                   help="sequence length for the energy per sequence (default 256)")
    add_output_options(p, json="print the JSON report instead of text",
                       force="overwrite estimate_<target>.json",
                       progress="no status line while tools run")
    p.set_defaults(func=_estimate)

    p = sub.add_parser(
        "compare", help="the same network as float32, int8-multiplier and each low precision",
        description=_compare.__doc__)
    p.add_argument("model", help="model file (.npz)")
    p.add_argument("--lanes", type=positive, required=True, metavar="N",
                   help="hidden units computed in parallel, for every variant")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_data_options(p, inputs=False, default="the test split of the corpus the model was "
                     "trained on, if it records one; else no BPC")
    p.add_argument("--target", default="ice40", metavar="T",
                   help=f"synthesis target: {TARGET_CHOICES} (default ice40)")
    p.add_argument("--device", metavar="D", help=f"place-and-route device: {DEVICE_CHOICES}")
    p.add_argument("--methods", metavar="M,M",
                   help=f"low-precision methods (default: {','.join(golden.METHODS)})")
    p.add_argument("--method-param", action="append", metavar="METHOD:KEY=VALUE",
                   help="parameter of a re-quantized method instead of the one fitted to the "
                        "weights, e.g. pow2-ternary:f=3 (repeatable)")
    p.add_argument("--length", type=positive, default=256, metavar="T",
                   help="sequence length for the energy per sequence (default 256)")
    p.add_argument("--accuracy", choices=ACCURACY_PATHS, default="golden",
                   help="BPC from golden's integer path (default) or from the RTL (Verilator)")
    p.add_argument("--no-pnr", action="store_true",
                   help="area only: skip place and route (faster)")
    add_output_options(p, json="print compare.json instead of the table",
                       force="write into an existing --out folder")
    p.set_defaults(func=_compare)
