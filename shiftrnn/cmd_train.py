"""``shiftrnn train`` (quantization-aware training to a golden model file) and ``shiftrnn eval``.

``train`` needs the optional torch extra (``pip install -e '.[train]'``); ``eval`` runs golden's
float and bit-accurate integer paths on a model file and needs numpy only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shiftrnn.cli import CliError

__all__ = ["register"]

CELLS = ("rnn", "gru", "lstm")
METHODS = ("float", "binary", "ternary", "pow2-ternary", "exponential")
NONLINEARITIES = ("exact", "hard", "plan", "lut")
#: The recipe of ``shiftrnn train`` without --recipe: the most accurate one whose models the
#: hardware generator builds today (per-matrix scales).
CLI_RECIPE = "accurate-matrix"


def _method_param(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. W0=0.1 or f=2), got {text!r}")
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key}: {value!r} is not a number") from None
    return key, int(v) if key in ("i", "f", "kmin", "kmax") and v == int(v) else v


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="quantization-aware training (char LM or sequence classification)",
        description="Train a quantized RNN/GRU/LSTM with full-precision shadow weights and write "
                    "a golden model file (deterministic quantization of the shadow weights). "
                    "Needs torch (pip install -e '.[train]').")
    from train.recipes import RECIPES

    p.add_argument("--recipe", choices=list(RECIPES), default=CLI_RECIPE,
                   help="training recipe (default %(default)s): " + "; ".join(
                       f"'{r.name}': {r.description}".replace("%", "%%") for r in RECIPES.values()))
    p.add_argument("--cell", choices=CELLS, default="gru")
    p.add_argument("--method", choices=METHODS, required=True,
                   help="weight quantizer; 'float' is the unquantized baseline (no model file)")
    p.add_argument("--stochastic", action="store_true",
                   help="stochastic quantization in training steps (binary, ternary, exponential)")
    p.add_argument("--nonlinearity", choices=NONLINEARITIES, default="hard")
    p.add_argument("--hidden", type=int, default=None, metavar="N", help="default 128")
    p.add_argument("--layers", type=int, default=1, choices=(1, 2))
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="default 5")
    p.add_argument("--batch", type=int, default=None, metavar="N", help="default 64")
    p.add_argument("--seq-len", type=int, default=None, metavar="N",
                   help="truncated back-propagation length of the char LM (default 32)")
    p.add_argument("--lr", type=float, default=None, metavar="X",
                   help="Adam learning rate, cosine-decayed to a tenth (default 0.005)")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--task", choices=("lm", "classify"), default="lm")
    p.add_argument("--corpus", metavar="FILE",
                   help="text file for the char LM (default: the built-in corpus)")
    p.add_argument("--corpus-format", choices=("auto", "plain", "ptb"), default="auto",
                   help="'ptb': Penn Treebank char format (space-separated, '_' for spaces)")
    p.add_argument("--valid", metavar="FILE", help="separate validation text (with --test)")
    p.add_argument("--test", metavar="FILE", help="separate test text (with --valid)")
    p.add_argument("--data", metavar="FILE.npz", help="classification data: arrays 'x' and 'y'")
    p.add_argument("--fake-quant", action="store_true",
                   help="narrow activations to the Fixed formats in training, like golden's "
                        "integer path")
    p.add_argument("--method-param", type=_method_param, action="append", default=[],
                   metavar="KEY=VALUE", help="golden method parameter: H, W0, i, f, kmin, kmax")
    p.add_argument("--scale-terms", type=int, default=2, metavar="K")
    p.add_argument("--bias-mode", choices=("quantized", "fixed"), default="quantized")
    p.add_argument("--max-batches", type=int, default=None, metavar="N",
                   help="cap on training batches per epoch")
    p.add_argument("--eval-every", type=int, default=1, metavar="N",
                   help="validate every N epochs (and after the last)")
    p.add_argument("--keep-last", action="store_true",
                   help="test and export the last epoch's weights, not the best validated ones")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads (fixed for determinism)")
    p.add_argument("--checkpoint", metavar="FILE", help="save a checkpoint after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--out", metavar="MODEL.npz", help="model file to write (not for 'float')")
    p.add_argument("--log", metavar="LOG.csv", help="training log (.csv, or .json)")
    p.add_argument("--force", action="store_true", help="overwrite --out and --log")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)

    e = subparsers.add_parser(
        "eval", help="BPC (or accuracy) of a model file: float path and integer path",
        description="Evaluate a model file on a text (bits per character) or on classification "
                    "data (accuracy), with golden's float path and its bit-accurate integer path "
                    "side by side.")
    e.add_argument("model", metavar="MODEL")
    e.add_argument("--corpus", metavar="FILE",
                   help="text to evaluate, whole file (default: the test split of the corpus "
                        "the model was trained on)")
    e.add_argument("--corpus-format", choices=("auto", "plain", "ptb"), default="auto")
    e.add_argument("--data", metavar="FILE.npz", help="classification data: arrays 'x' and 'y'")
    e.add_argument("--json", action="store_true", help="print the numbers as JSON")
    e.set_defaults(func=run_eval)


def _check_writable(path, force: bool, what: str) -> None:
    if path is not None and Path(path).exists() and not force:
        raise CliError(f"{what} {path} exists; pass --force to overwrite")


def run_train(args) -> int:
    if args.method == "float" and args.out:
        raise CliError("method 'float' is the full-precision baseline and has no hardware form, "
                       "so it cannot be written as a model file; drop --out (the log still "
                       "records its BPC) or pick binary, ternary, pow2-ternary or exponential")
    if args.method != "float" and not args.out:
        raise CliError("--out MODEL.npz is required")
    if args.task == "classify" and not args.data:
        raise CliError("--task classify needs --data FILE.npz")
    if args.task == "lm" and args.data:
        raise CliError("--data is for --task classify; give the char LM text with --corpus")
    if args.resume and not args.checkpoint:
        raise CliError("--resume needs --checkpoint FILE")
    _check_writable(args.out, args.force, "model file")
    _check_writable(args.log, args.force or args.resume, "log file")
    try:
        import train.trainer as T
    except ModuleNotFoundError as e:
        if e.name == "torch":
            raise CliError("training needs torch: pip install -e '.[train]'") from None
        raise
    from train import data as D

    optional = {k: getattr(args, k) for k in ("hidden", "epochs", "batch", "seq_len", "lr")
                if getattr(args, k) is not None}
    cfg = T.TrainConfig(
        cell=args.cell, method=args.method, stochastic=args.stochastic,
        nonlinearity=args.nonlinearity, layers=args.layers, seed=args.seed,
        fake_quant=args.fake_quant, method_params=dict(args.method_param),
        scale_terms=args.scale_terms, bias_mode=args.bias_mode, max_batches=args.max_batches,
        eval_every=args.eval_every, keep_best=not args.keep_last, threads=args.threads,
        recipe=args.recipe, **optional)
    common = dict(checkpoint=args.checkpoint, resume=args.resume,
                  progress=not args.no_progress, log_path=args.log)
    if args.task == "lm":
        corpus = D.load_corpus(args.corpus, fmt=args.corpus_format, valid=args.valid,
                               test=args.test)
        print(f"corpus: {corpus.describe()}")
        tr = T.Trainer(cfg, task="lm", corpus=corpus, **common)
    else:
        x, y = D.load_classify(args.data)
        ds = T.split_classify(x, y, cfg.seed)
        print(f"data: {args.data}: {len(y)} sequences, {ds['classes']} classes")
        tr = T.Trainer(cfg, task="classify", dataset=ds, **common)
    log = tr.run()
    key = "test_bpc" if args.task == "lm" else "test_acc"
    how = "no quantization" if cfg.method == "float" else "deterministic quantization"
    print(f"{cfg.label()}: {key} {log.final[key]:.4f} (trainer, {how}"
          f"{', fake-quant' if cfg.fake_quant else ''})")
    if args.out:
        model = tr.export()
        if args.task == "lm":
            ib = D.golden_bpc(model, corpus.test, "int")
            model.meta["test_bpc_int"] = ib
            print(f"{cfg.label()}: test_bpc {ib:.4f} (golden integer path)")
        model.save(args.out, force=args.force)
        print(f"wrote {args.out}")
    if args.log:
        print(f"wrote {args.log}")
    return 0


def _eval_tokens(model, args):
    from train import data as D

    vocab = model.meta.get("vocab")
    if vocab is None:
        raise CliError(f"{args.model} records no vocabulary (meta['vocab']); it was not trained "
                       f"as a char LM by shiftrnn train")
    if args.corpus:
        text, fmt = D.read_text(args.corpus, args.corpus_format)
        return D.encode_text(text, vocab), f"{args.corpus} ({fmt}, whole file)"
    src = model.meta.get("corpus")
    if src == "<builtin>":
        path = None
    elif src and Path(src).is_file():
        path = src
    else:
        raise CliError(f"the corpus the model was trained on ({src}) is not here; pass --corpus")
    corpus = D.load_corpus(path, fmt=model.meta.get("corpus_format", "auto"))
    return D.encode_text("".join(corpus.vocab[i] for i in corpus.test), vocab), \
        f"{src} (test split)"


def run_eval(args) -> int:
    import numpy as np

    import golden
    from train import data as D

    model = golden.load(args.model)
    desc = (f"{args.model}: {model.cell} {model.method}, hidden {model.hidden_size}, "
            f"{len(model.layers)} layer(s), nonlinearity {model.nonlinearity.describe()}")
    if args.data:
        x, y = D.load_classify(args.data)
        res = {}
        for mode in ("float", "int"):
            logits = model.run(x if x.ndim == 2 else x.astype(np.float64), mode=mode).logits
            res[mode] = float((logits[:, -1].argmax(-1) == y).mean())
        what, unit = f"{args.data} ({len(y)} sequences)", "accuracy"
    else:
        tokens, what = _eval_tokens(model, args)
        res = {mode: D.golden_bpc(model, tokens, mode) for mode in ("float", "int")}
        unit = "BPC"
        what += f", {len(tokens)} characters in {D.eval_streams(len(tokens))} streams"
    if args.json:
        print(json.dumps({"model": str(args.model), "data": what, "metric": unit, **res}))
        return 0
    print(desc)
    print(f"data: {what}")
    print(f"{'path':<8}{unit:>10}")
    print(f"{'float':<8}{res['float']:>10.4f}")
    print(f"{'int':<8}{res['int']:>10.4f}   (bit-accurate integer path = hardware)")
    return 0
