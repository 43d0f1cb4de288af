"""The ``shiftrnn`` command line: one front door, one subcommand module per stage.

Each ``shiftrnn/cmd_*.py`` module exposes ``register(subparsers)`` which adds its subcommands and
sets ``func`` on them. A subcommand raises :class:`CliError` (or one of the known user-facing
errors) for bad input; ``main`` prints one clear line and exits non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from golden.errors import ShiftrnnError

__all__ = ["CliError", "main"]

#: Subcommand modules, in the order their commands appear in ``--help``.
COMMAND_MODULES = (
    "shiftrnn.cmd_model",
    "shiftrnn.cmd_hw",
    "shiftrnn.cmd_sim",
    "shiftrnn.cmd_estimate",
    "shiftrnn.cmd_train",
    "shiftrnn.cmd_flow",
)


class CliError(ShiftrnnError):
    """A user-facing error: the message names the problem and, where possible, the fix."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shiftrnn",
        description="Low-precision RNN/GRU/LSTM to multiplier-free, verified Verilog.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # stage not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except (ShiftrnnError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"shiftrnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"shiftrnn {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
