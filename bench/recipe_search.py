"""One training run of a recipe with some of its knobs changed, at the paper table's budget.

The paper table (``bench/paper_table.py``) compares named recipes; this script asks what one
knob is worth. It trains one network on the same corpus, budget and seed as the table (KJV,
hidden 64, 6 x 100 steps of 64 x 32 characters, Adam 5e-3, seed 0, default activation formats
with fake quantization), with ``--base``'s recipe changed by ``--set FIELD=VALUE`` (any
:class:`train.recipes.Recipe` field) and ``--method-param KEY=VALUE``, and prints one JSON line:
the trainer's test BPC of the best validated epoch, the exported model's golden integer BPC,
and the validation curve. ``--results FILE`` appends the line to a file.

Usage (two runs at a time on two cores)::

    python bench/recipe_search.py --cell gru --method ternary --set lr_scale=false quant_lr=4
    printf '%s\\n' "--method float" "--method ternary" | \\
        xargs -P 2 -L 1 python bench/recipe_search.py --cell lstm --results runs.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paper_table  # noqa: E402  (run as a script: bench/ is on the path)

from shiftrnn.cli import CliError  # noqa: E402
from shiftrnn.cmd_model import parse_method_param  # noqa: E402
from train import data as D  # noqa: E402
from train import recipes  # noqa: E402


def _value(field: dataclasses.Field, text: str):
    """``text`` as the type of a Recipe field; ``SystemExit`` naming the allowed values."""
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    if kind == "bool":
        if text.lower() not in ("true", "false", "1", "0"):
            sys.exit(f"--set {field.name}: expected true or false, got {text!r}")
        return text.lower() in ("true", "1")
    if kind == "float | None" and text.lower() == "none":
        return None
    try:
        return {"float": float, "float | None": float, "str": str}[kind](text)
    except (KeyError, ValueError):
        sys.exit(f"--set {field.name}: expected a {kind}, got {text!r}")


def variant(base: str, settings: list[str]) -> recipes.Recipe:
    """``base``'s recipe with ``FIELD=VALUE`` settings, registered under a new name."""
    fields = {f.name: f for f in dataclasses.fields(recipes.Recipe)}
    changes = {}
    for item in settings:
        key, sep, text = item.partition("=")
        if not sep or key not in fields or key in ("name", "description"):
            sys.exit(f"--set {item!r}: expected FIELD=VALUE with FIELD one of "
                     f"{', '.join(k for k in fields if k not in ('name', 'description'))}")
        changes[key] = _value(fields[key], text)
    name = base + "".join(f"+{k}={v}" for k, v in changes.items())
    try:
        recipe = dataclasses.replace(recipes.get_recipe(base), name=name, **changes)
    except ValueError as e:
        sys.exit(f"--set: {e}")
    recipes.RECIPES[name] = recipe  # this process only: the Trainer finds recipes by name
    return recipe


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="gru", choices=("rnn", "gru", "lstm"))
    ap.add_argument("--method", required=True,
                    choices=("float", "binary", "ternary", "pow2-ternary", "exponential"))
    ap.add_argument("--stochastic", action="store_true")
    ap.add_argument("--base", default="paper", choices=tuple(recipes.RECIPES))
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--method-param", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--steps-per-epoch", type=int, help="default: the table's (100)")
    ap.add_argument("--lr", type=float, help="Adam base learning rate (default: the table's, "
                                             "5e-3)")
    ap.add_argument("--hidden", type=int, help="hidden units (default: the table's, 64)")
    ap.add_argument("--seq-len", type=int, help="characters per training sequence (default: "
                                                "the table's, 32)")
    ap.add_argument("--seed", type=int, help="seed (default: the table's, 0)")
    ap.add_argument("--nonlinearity", choices=("exact", "hard", "plan", "lut"),
                    help="default: the table's (hard)")
    ap.add_argument("--formats", choices=tuple(paper_table.WIDE_FORMATS),
                    help="wider activation formats (default: the 8-bit defaults)")
    ap.add_argument("--bias-mode", default="quantized", choices=("quantized", "fixed"),
                    help="biases quantized with their matrix (default) or fixed point")
    ap.add_argument("--results", help="append the JSON line to this file")
    args = ap.parse_args(argv)
    import torch

    from train.trainer import TrainConfig, Trainer

    recipe = variant(args.base, args.set)
    try:
        mparams = dict(parse_method_param(t) for t in args.method_param)
    except CliError as e:
        sys.exit(str(e))
    table = paper_table.parse_args([])  # the table's budget, with this run's changes
    for name in ("steps_per_epoch", "lr", "hidden", "seq_len", "seed", "nonlinearity"):
        if getattr(args, name) is not None:
            setattr(table, name, getattr(args, name))
    torch.set_num_threads(1)
    corpus = D.load_corpus(paper_table.kjv_corpus(table.chars))
    cfg = TrainConfig(**paper_table.train_config(table, args.cell, args.method, args.stochastic,
                                                 recipe.name), method_params=mparams,
                      bias_mode=args.bias_mode)
    t0 = time.perf_counter()
    tr = Trainer(cfg, task="lm", corpus=corpus)
    if args.formats:
        tr.net.formats.update(paper_table.wide_formats(args.formats))
    log = tr.run()
    out = {"recipe": recipe.name, "cell": args.cell, "method": args.method,
           "stochastic": args.stochastic, "method_params": mparams, "lr": table.lr,
           "hidden": table.hidden, "seq_len": table.seq_len, "seed": table.seed,
           "nonlinearity": table.nonlinearity, "formats": args.formats,
           "bias_mode": args.bias_mode,
           "steps": tr.step, "test_bpc": round(log.final["test_bpc"], 4),
           "int_bpc": None if args.method == "float" else
           round(D.golden_bpc(tr.export(), corpus.test, "int"), 4),
           "valid": [round(r["valid_bpc"], 3) for r in log.epochs],
           "seconds": round(time.perf_counter() - t0, 1)}
    line = json.dumps(out)
    print(line)
    if args.results:
        with open(args.results, "a") as fh:
            fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
