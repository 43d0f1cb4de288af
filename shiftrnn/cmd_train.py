"""``shiftrnn train`` (quantization-aware training to a golden model file) and ``shiftrnn eval``.

``train`` needs the optional torch extra (``pip install -e '.[train]'``); ``eval`` runs golden's
float and bit-accurate integer paths on a model file and needs numpy only (a float network
saved by ``train --method float`` is evaluated with torch).

The training options take the defaults of the flow's ``[train]`` section (one owner:
:data:`shiftrnn.flow.SCHEMA`), so ``shiftrnn train`` and ``shiftrnn flow`` train the same network
from the same settings.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import golden
from golden.evaluation import CORPUS_FORMATS

from .cli import CliError
from .options import add_data_options, add_output_options, eval_data_from_args, positive

__all__ = ["FLOAT_FORMAT", "register"]

#: ``format`` of the file ``train --method float --out FILE.pt`` writes.
FLOAT_FORMAT = "shiftrnn-float-network"


def _method_param(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. W0=0.1 or f=2), got {text!r}")
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key}: {value!r} is not a number") from None
    return key, int(v) if key in ("i", "f", "kmin", "kmax") and v == int(v) else v


def _flow_default(key: str):
    from .flow import SCHEMA

    return SCHEMA["train"][key].default


def _add_budget(p) -> None:
    """Options that are keys of the flow's ``[train]`` section, with its defaults."""
    for flag, key, typ, meta, what in (
            ("--hidden", "hidden", positive, "N", "hidden units"),
            ("--epochs", "epochs", positive, "N", "passes over the training data"),
            ("--batch", "batch", positive, "N", "parallel streams / batch size"),
            ("--seq-len", "seq_len", positive, "N",
             "truncated back-propagation length of the char LM"),
            ("--lr", "lr", float, "X", "Adam learning rate, cosine-decayed to a tenth"),
            ("--seed", "seed", int, "S", "seed of everything random"),
            ("--eval-every", "eval_every", positive, "N",
             "validate every N epochs (and after the last)"),
            ("--max-batches", "max_batches", positive, "N", "cap on training batches per epoch"),
            ("--threads", "threads", positive, "N", "torch threads (fixed for determinism)")):
        d = _flow_default(key)
        p.add_argument(flag, type=typ, default=d, metavar=meta,
                       help=f"{what} (default {'none' if d is None else d}, as the flow's "
                            f"[train] {key})")
    p.add_argument("--fake-quant", action=argparse.BooleanOptionalAction,
                   default=_flow_default("fake_quant"),
                   help="narrow activations to the Fixed formats in training, like golden's "
                        "integer path (default on, as the flow's [train] fake_quant)")


def _register_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="quantization-aware training (char LM or sequence classification)",
        description=run_train.__doc__)
    from train.recipes import RECIPES

    p.add_argument("--recipe", choices=list(RECIPES), default=_flow_default("recipe"),
                   help="training recipe (default %(default)s, as the flow's [train] recipe): "
                        + "; ".join(f"'{r.name}': {r.description}".replace("%", "%%")
                                    for r in RECIPES.values()))
    p.add_argument("--cell", choices=tuple(golden.CELLS), default="gru")
    p.add_argument("--method", choices=("float", *golden.METHODS), required=True,
                   help="weight quantizer; 'float' is the unquantized baseline (written as a "
                        "PyTorch file FILE.pt that `shiftrnn eval` evaluates and `shiftrnn "
                        "import` quantizes)")
    p.add_argument("--stochastic", action="store_true",
                   help="stochastic quantization in training steps (binary, ternary, exponential)")
    p.add_argument("--nonlinearity", choices=golden.KINDS, default="hard")
    p.add_argument("--layers", type=int, default=_flow_default("layers"), choices=(1, 2))
    _add_budget(p)
    p.add_argument("--task", choices=("lm", "classify"), default="lm")
    p.add_argument("--corpus", metavar="FILE",
                   help="text file for the char LM (default: the built-in corpus)")
    p.add_argument("--corpus-format", choices=CORPUS_FORMATS, default="auto",
                   help="'ptb': Penn Treebank char format (space-separated, '_' for spaces); "
                        "'auto' (default) detects it")
    p.add_argument("--valid", metavar="FILE", help="separate validation text (with --test)")
    p.add_argument("--test", metavar="FILE", help="separate test text (with --valid)")
    p.add_argument("--data", metavar="FILE.npz", help="classification data: arrays 'x' and 'y'")
    p.add_argument("--method-param", type=_method_param, action="append", default=[],
                   metavar="KEY=VALUE", help="golden method parameter: H, W0, i, f, kmin, kmax")
    p.add_argument("--scale-terms", type=positive, default=2, metavar="K")
    p.add_argument("--bias-mode", choices=golden.BIAS_MODES, default="quantized")
    p.add_argument("--keep-last", action="store_true",
                   help="test and export the last epoch's weights, not the best validated ones")
    p.add_argument("--checkpoint", metavar="FILE", help="save a checkpoint after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--out", metavar="MODEL.npz",
                   help="model file to write (MODEL.pt for --method float)")
    p.add_argument("--log", metavar="LOG.csv", help="training log (.csv, or .json)")
    add_output_options(p, force="overwrite --out and --log")
    p.set_defaults(func=run_train)


def register(subparsers) -> None:
    _register_train(subparsers)
    e = subparsers.add_parser(
        "eval", help="BPC (or accuracy) of a model file: float path and integer path",
        description=run_eval.__doc__)
    e.add_argument("model", metavar="MODEL", help="model file (.npz), or a float network (.pt)")
    add_data_options(e)
    e.add_argument("--data", dest="inputs", metavar="FILE.npz", help=argparse.SUPPRESS)
    e.add_argument("--json", action="store_true", help="print the numbers as JSON")
    e.set_defaults(func=run_eval)


def _check_writable(path, force: bool, what: str) -> None:
    if path is not None and Path(path).exists() and not force:
        raise CliError(f"{what} {path} exists; pass --force to overwrite")


def _check_train_args(args) -> None:
    if args.method == "float" and args.out and not args.out.endswith(".pt"):
        raise CliError("method 'float' is the full-precision baseline and has no hardware form, "
                       "so it cannot be written as a model file; write the float network with "
                       "--out FILE.pt (`shiftrnn eval FILE.pt` evaluates it, `shiftrnn import "
                       "FILE.pt` quantizes it) or pick binary, ternary, pow2-ternary or "
                       "exponential")
    if args.method != "float" and not args.out:
        raise CliError("--out MODEL.npz is required")
    if args.method != "float" and args.out.endswith(".pt"):
        raise CliError(f"--out {args.out}: a quantized model is written as MODEL.npz")
    if args.task == "classify" and not args.data:
        raise CliError("--task classify needs --data FILE.npz")
    if args.task == "lm" and args.data:
        raise CliError("--data is for --task classify; give the char LM text with --corpus")
    if args.resume and not args.checkpoint:
        raise CliError("--resume needs --checkpoint FILE")
    _check_writable(args.out, args.force, "model file")
    _check_writable(args.log, args.force or args.resume, "log file")


def _trainer(args):
    """The :class:`train.Trainer` the options describe, and the corpus (None: classify)."""
    try:
        import train.trainer as T
    except ModuleNotFoundError as e:
        if e.name == "torch":
            raise CliError("training needs torch: pip install -e '.[train]'") from None
        raise
    from train import data as D

    cfg = T.TrainConfig(
        cell=args.cell, method=args.method, stochastic=args.stochastic,
        nonlinearity=args.nonlinearity, layers=args.layers, seed=args.seed,
        fake_quant=args.fake_quant, method_params=dict(args.method_param),
        scale_terms=args.scale_terms, bias_mode=args.bias_mode, max_batches=args.max_batches,
        eval_every=args.eval_every, keep_best=not args.keep_last, threads=args.threads,
        hidden=args.hidden, epochs=args.epochs, batch=args.batch, seq_len=args.seq_len,
        lr=args.lr, recipe=args.recipe)
    common = dict(checkpoint=args.checkpoint, resume=args.resume,
                  progress=not args.no_progress, log_path=args.log)
    if args.task == "classify":
        x, y = D.load_classify(args.data)
        ds = T.split_classify(x, y, cfg.seed)
        print(f"data: {args.data}: {len(y)} sequences, {ds['classes']} classes")
        return T.Trainer(cfg, task="classify", dataset=ds, **common), None
    corpus = D.load_corpus(args.corpus, fmt=args.corpus_format, valid=args.valid,
                           test=args.test)
    print(f"corpus: {corpus.describe()}")
    return T.Trainer(cfg, task="lm", corpus=corpus, **common), corpus


def _how(cfg) -> str:
    """How the trainer's network computes: weights, and activations under fake quantization."""
    weights = ("float weights (no quantization)" if cfg.method == "float" else
               f"deterministic {cfg.method} weights")
    return weights + (", activations narrowed to the Fixed formats" if cfg.fake_quant else
                      ", float activations")


def _save_float(tr, path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save({"format": FLOAT_FORMAT, "config": tr.config.to_dict(), "task": tr.task,
                "vocab": list(getattr(tr.net, "vocab", None) or []),
                "state_dict": tr.net.state_dict()}, buf)
    golden.atomic_write_bytes(path, buf.getvalue())


def run_train(args) -> int:
    """Train a quantized RNN/GRU/LSTM with full-precision shadow weights and write a golden
    model file (deterministic quantization of the shadow weights). The defaults are the flow's
    [train] defaults. Needs torch (pip install -e '.[train]')."""
    from golden.evaluation import golden_bpc

    _check_train_args(args)
    tr, corpus = _trainer(args)
    log = tr.run()
    key = "test_bpc" if args.task == "lm" else "test_acc"
    label = tr.config.label()
    print(f"{label}: {key} {log.final[key]:.4f} (trainer, {_how(tr.config)})")
    if args.out and args.method == "float":
        _save_float(tr, args.out)
        print(f"wrote {args.out} (PyTorch state dict of the float network; `shiftrnn eval "
              f"{args.out} --corpus FILE` evaluates it)")
    elif args.out:
        model = tr.export()
        if corpus is not None:
            ib = golden_bpc(model, corpus.test, "int")
            model.meta["test_bpc_int"] = ib
            print(f"{label}: test_bpc {ib:.4f} (golden integer path)")
        model.save(args.out, force=args.force)
        print(f"wrote {args.out}")
    if args.log:
        print(f"wrote {args.log}")
    return 0


# ------------------------------------------------------------------------------------ eval
def _float_network(path: Path):
    """The float network ``train --method float`` wrote, as a model-like object."""
    try:
        import torch

        import train.trainer as T
        from train.nets import QuantRNN
    except ModuleNotFoundError as e:
        if e.name == "torch":
            raise CliError(f"{path}: a float network is evaluated with torch: pip install -e "
                           "'.[train]'") from None
        raise
    try:
        st = torch.load(path, weights_only=True)
    except Exception as e:  # any unreadable file is one clear error
        raise CliError(f"{path}: not a readable PyTorch file ({type(e).__name__})") from None
    if not isinstance(st, dict) or st.get("format") != FLOAT_FORMAT or st.get("task") != "lm":
        raise CliError(f"{path}: not a float language model written by `shiftrnn train "
                       "--method float --out FILE.pt`; quantized models are MODEL.npz")
    c = T.TrainConfig.from_dict(st["config"])
    vocab = list(st["vocab"])
    net = QuantRNN(c.cell, len(vocab), c.hidden, len(vocab), num_layers=c.layers,
                   method="float", nonlinearity=golden.Nonlinearity(c.nonlinearity),
                   fake_quant=c.fake_quant, input_kind="token", recipe=c.recipe)
    net.load_state_dict(st["state_dict"])
    net.vocab = vocab
    return net, c


def _eval_float(args) -> tuple[str, str, str, dict]:
    from golden import evaluation as E
    from train.trainer import net_logits

    from .flow.data import lm_data

    net, c = _float_network(Path(args.model))
    if not args.corpus:
        raise CliError("a float network records no corpus; give the text with --corpus FILE")
    try:
        text, used = E.read_text(args.corpus, args.corpus_format)
        tokens = E.encode_text(text, net.vocab, source=args.corpus)
        data = lm_data(tokens, args.max_timesteps, f"{args.corpus} ({used}, whole file)")
    except E.DataError as e:
        raise CliError(f"--corpus: {e}") from None
    bpc = E.bits_per_char(net_logits(net, data.x, "quant"), data.y)
    return (f"{args.model}: float network, {c.cell}, hidden {c.hidden}, {c.layers} layer(s), "
            f"{_how(c)}", data.describe, "BPC", {"float": bpc})


def _eval_model(args) -> tuple[str, str, str, dict]:
    from .flow.data import score

    model = golden.load(args.model)
    desc = (f"{args.model}: {model.cell} {model.method}, hidden {model.hidden_size}, "
            f"{len(model.layers)} layer(s), nonlinearity {model.nonlinearity.describe()}")
    data = eval_data_from_args(args, model, args.model)
    if data.metric is None:
        raise CliError(f"{data.describe}: no targets to score (give labels 'y' in an .npz, or "
                       "a text for a character language model)")
    float_in = data.x if model.input_kind == "token" else model.formats["x"].to_float(data.x)
    res = {"float": score(model, data, model.run(float_in, mode="float").logits, integer=False),
           "int": score(model, data, model.run_int(data.x).logits_int, integer=True)}
    return desc, data.describe, data.metric, res


def run_eval(args) -> int:
    """Evaluate a model file on a text (bits per character) or on labelled arrays (accuracy),
    with golden's float path and its bit-accurate integer path side by side; the data options
    are those of `shiftrnn simulate` and the flow's [data]. A float network (train --method
    float) is evaluated with PyTorch."""
    run = _eval_float if str(args.model).endswith(".pt") else _eval_model
    desc, what, unit, res = run(args)
    if args.json:
        print(json.dumps({"model": str(args.model), "data": what, "metric": unit, **res}))
        return 0
    print(desc)
    print(f"data: {what}")
    print(f"{'path':<8}{unit:>10}")
    for mode, v in res.items():
        note = "   (bit-accurate integer path = hardware)" if mode == "int" else ""
        print(f"{mode:<8}{v:>10.4f}{note}")
    return 0
