"""Command-line options shared by several commands: numbers, and one way to read data.

Every command that evaluates on data (``eval``, ``simulate``, ``compare``) takes the same
options with the same defaults as the flow's ``[data]`` section: ``--corpus FILE``,
``--corpus-format auto|plain|ptb``, ``--max-timesteps N`` (8192) and, for arrays,
``--inputs X.npy|X.npz``. Without ``--corpus`` or ``--inputs`` a trained character model is
evaluated on the test split of the corpus it was trained on, as the flow does.
"""

from __future__ import annotations

import argparse

from golden.evaluation import (
    CORPUS_FORMATS,
    DEFAULT_MAX_TIMESTEPS,
    DataError,
    is_language_model,
)

from .cli import CliError

__all__ = ["add_data_options", "add_output_options", "eval_data_from_args", "positive",
           "probability"]


def positive(text: str) -> int:
    """An integer >= 1 (argparse type)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def probability(text: str) -> float:
    """A number in [0, 1) (argparse type)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {v}")
    return v


def add_output_options(p: argparse.ArgumentParser, *, force: str, json: str | None = None,
                       progress: str = "no progress bar") -> None:
    """``--json`` (when given), ``--force`` and ``--no-progress`` with their help texts."""
    if json is not None:
        p.add_argument("--json", action="store_true", help=json)
    p.add_argument("--force", action="store_true", help=force)
    p.add_argument("--no-progress", action="store_true", help=progress)


def add_data_options(p: argparse.ArgumentParser, *, inputs: bool = True,
                     default: str = "the test split of the corpus the model was trained on"
                     ) -> None:
    """``--corpus``, ``--corpus-format``, ``--max-timesteps`` (and ``--inputs``)."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--corpus", metavar="FILE",
                     help="text for a token model, the whole file: characters through the "
                          "model's vocabulary (meta['vocab']), else UTF-8 bytes modulo the input "
                          f"size (default: {default})")
    if inputs:
        src.add_argument("--inputs", metavar="X.npy",
                         help="arrays: .npy tokens (batch, time) or vectors (batch, time, "
                              "input), or .npz with 'x' and labels 'y' (accuracy); integers are "
                              "used as they are (token indices, on-wire formats.x integers), "
                              "floats are quantized")
    p.add_argument("--corpus-format", choices=CORPUS_FORMATS, default="auto",
                   help="'ptb': Penn Treebank character format (characters separated by "
                        "spaces, '_' for a space); 'auto' (default) detects it")
    p.add_argument("--max-timesteps", type=positive, default=DEFAULT_MAX_TIMESTEPS, metavar="N",
                   help=f"cap on evaluated timesteps (default {DEFAULT_MAX_TIMESTEPS}, as the "
                        "flow's [data] max_timesteps)")


def eval_data_from_args(args, model, model_path=None, *, required: bool = True):
    """The evaluation data the options name (:mod:`shiftrnn.flow.data`).

    Returns
    -------
    EvalData or None
        None only when nothing is given, the model records no corpus and ``required`` is
        False.

    Raises
    ------
    CliError
        The data cannot be read or does not fit the model; nothing to evaluate on.
    """
    from .flow import data as FD

    try:
        if args.corpus:
            return FD.text_data(model, args.corpus, args.corpus_format, args.max_timesteps,
                                where="--corpus", arrays="--inputs X.npy")
        if getattr(args, "inputs", None):
            return FD.array_data(model, args.inputs, args.max_timesteps, where="--inputs")
        found = FD.recorded_corpus(model, model_path) if is_language_model(model) else None
        if found is None:
            if not required:
                return None
            src = (model.meta or {}).get("corpus")
            why = (f"the corpus the model was trained on ({src}) is not here" if src else
                   "the model records no training corpus")
            raise CliError(f"{why}; give the data with --corpus FILE"
                           + (" or --inputs X.npy" if hasattr(args, "inputs") else ""))
        return FD.split_data(model, *found, args.max_timesteps)
    except DataError as e:
        raise CliError(str(e)) from None
