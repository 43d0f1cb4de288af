"""``shiftrnn flow CONFIG.toml`` and ``shiftrnn demo``: every stage, one command, a report.

``flow`` runs a configuration file (examples/*.toml); ``demo`` runs a built-in example (the
char-level GRU on the built-in corpus: no files, no downloads). Both skip the stages whose
inputs are unchanged and print a one-screen summary and the report's path.
"""

from __future__ import annotations

import sys

from .flow import DEMO_EXAMPLE, EXAMPLES, builtin_config, load_config, run_flow

__all__ = ["register"]


def _progress(args) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def _run(cfg, args) -> int:
    res = run_flow(cfg, out_dir=args.out_dir, force=args.force, progress=_progress(args))
    print(res.summary())
    return 0


def cmd_flow(args) -> int:
    return _run(load_config(args.config), args)


def cmd_demo(args) -> int:
    cfg = builtin_config(args.example)
    print(f"shiftrnn demo: the built-in example '{args.example}' ({cfg.description}); the same "
          f"configuration is examples/{args.example}.toml. First run: training, Verilator "
          "builds and the yosys/nextpnr WebAssembly compile take a few minutes; later runs "
          "skip what is unchanged.", flush=True)
    rc = _run(cfg, args)
    print(f"open {args.out_dir}/{cfg.name}/report.html in a browser (or read report.md)")
    return rc


def _common(p) -> None:
    p.add_argument("--out-dir", default="rtl_out", metavar="DIR",
                   help="parent of the design folder DIR/NAME (default: rtl_out)")
    p.add_argument("--force", action="store_true",
                   help="run every stage again (ignore recorded hashes) and replace a design "
                        "folder the flow did not make")
    p.add_argument("--no-progress", action="store_true", help="no status bars")


def register(sub) -> None:
    """Add ``flow`` and ``demo`` to the ``shiftrnn`` parser."""
    p = sub.add_parser(
        "flow", help="train/import -> quantize -> generate -> verify -> simulate -> estimate -> "
                     "report, from a TOML config",
        description="Run the whole flow from a TOML configuration (see examples/*.toml and "
                    "README.md): each stage is skipped when its inputs are unchanged (content "
                    "hashes in rtl_out/NAME/flow_state.json). Writes rtl_out/NAME/report.html "
                    "and report.md. A failing run leaves rtl_out/NAME as it was.")
    p.add_argument("config", metavar="CONFIG.toml")
    _common(p)
    p.set_defaults(func=cmd_flow)

    p = sub.add_parser(
        "demo", help="run the flow on a built-in example (no files, no downloads)",
        description="Run the flow on a built-in example configuration: a small char-level "
                    "language model trained on the built-in corpus, then quantized, generated, "
                    "verified, simulated and estimated; prints where the report is.")
    p.add_argument("--example", choices=tuple(EXAMPLES), default=DEMO_EXAMPLE,
                   help=f"which built-in example (default: {DEMO_EXAMPLE})")
    _common(p)
    p.set_defaults(func=cmd_demo)

