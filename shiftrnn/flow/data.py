"""Evaluation data of the flow and of every command that reads data, via :mod:`golden.evaluation`.

One way to read data everywhere: the flow's ``[data]`` section and the command-line options
``--corpus``, ``--corpus-format``, ``--inputs`` and ``--max-timesteps`` (``shiftrnn eval``,
``simulate``, ``compare``) go through the same functions, with the same defaults, so that
``shiftrnn eval``, ``shiftrnn simulate`` and the flow report the same bits per character for
the same text:

* a text: the whole file (capped at ``max_timesteps``), characters through the model's
  vocabulary, cut into the evaluation streams of :func:`golden.evaluation.lm_streams`;
* no text: the test split of the corpus the model was trained on (``meta['corpus']``; a file
  that moved is looked for beside the model file too);
* arrays: ``.npy`` inputs or ``.npz`` with ``x`` and labels ``y`` (accuracy);
* nothing: random sequences (bit-exactness only).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden import evaluation as E
from golden.evaluation import DataError

__all__ = [
    "EvalData", "array_data", "digest", "eval_data", "lm_data", "random_data", "recorded_corpus",
    "score", "split_data", "text_data", "token_data",
]


def digest(obj) -> str:
    """sha256 of a JSON-able value (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class EvalData:
    """What is evaluated: integer inputs, and next-token targets or labels.

    Attributes
    ----------
    x : ndarray of int64
        Tokens ``(batch, time)`` or ``formats.x`` integers ``(batch, time, input)``.
    kind : {'lm', 'classify', 'outputs'}
        Bits per character, accuracy from the last step's logits, or bit-exactness only.
    describe : str
        One line for people.
    y : ndarray of int64 or None
        Next tokens ``(batch, time)`` (``lm``) or labels ``(batch,)`` (``classify``).
    digest : str
        Content hash of ``x`` and ``y``.
    tokens : ndarray of int64 or None
        The evaluated token stream (``lm``).
    """

    x: np.ndarray
    kind: str
    describe: str
    y: np.ndarray | None
    digest: str
    tokens: np.ndarray | None = None

    @property
    def metric(self) -> str | None:
        """``'BPC'``, ``'accuracy'`` or None (bit-exactness only)."""
        return {"lm": "BPC", "classify": "accuracy"}.get(self.kind)


def lm_data(tokens, max_timesteps: int, what: str) -> EvalData:
    """Evaluation data of a character language model's token stream: the evaluation streams of
    :func:`golden.evaluation.lm_streams` and their next-token targets (BPC)."""
    try:
        x, y, used = E.lm_streams(tokens, max_timesteps)
    except DataError as e:
        raise DataError(f"{what}: {e}") from None
    if used.size < len(tokens):
        what += f", first {used.size} characters"
    return EvalData(x, "lm", f"{what}: {x.size} characters in {x.shape[0]} streams of "
                    f"{x.shape[1]}", y, digest([x.tolist(), y.tolist()]), used)


def token_data(model, tokens, max_timesteps: int, what: str, *, length: int = 32) -> EvalData:
    """Evaluation data of a token stream.

    A character language model gets :func:`lm_data` (BPC); another token model gets sequences
    of ``8 * length`` tokens (bit-exactness only).
    """
    tokens = np.asarray(tokens, np.int64)
    if E.is_language_model(model):
        return lm_data(tokens, max_timesteps, what)
    if tokens.size == 0:
        raise DataError(f"{what}: no tokens to evaluate")
    T = min(tokens.size, length * 8)
    x = tokens[: (tokens.size // T) * T].reshape(-1, T)[: max(1, max_timesteps // T)]
    return EvalData(x, "outputs", f"{what}: {x.size} tokens", None, digest(x.tolist()))


def text_data(model, path, fmt: str, max_timesteps: int, *, where: str,
              arrays: str = "input arrays (.npy/.npz)", length: int = 32) -> EvalData:
    """Evaluation data of a text file (the whole file, capped at ``max_timesteps``).

    Parameters
    ----------
    model : golden.Model
        A token-input model.
    path : path-like
        The text.
    fmt : {'auto', 'plain', 'ptb'}
        Corpus format.
    max_timesteps : int
        Cap on evaluated timesteps.
    where : str
        Prefix of error messages (the option or configuration key).
    arrays : str
        How to give arrays instead (named in the error for a vector model).
    length : int
        Sequence length for token models that are not language models.

    Raises
    ------
    DataError
        No such file, characters outside the vocabulary, a vector model, too short.
    """
    if model.input_kind != "token":
        raise DataError(f"{where} is text for a token-input model; this model takes vectors: "
                        f"give {arrays} instead")
    try:
        text, used = E.read_text(path, fmt)
        tokens = E.text_tokens(text, model, source=str(path))
    except DataError as e:
        raise DataError(f"{where}: {e}") from None
    return token_data(model, tokens, max_timesteps, f"{path} ({used}, whole file)",
                      length=length)


def recorded_corpus(model, model_path=None) -> tuple[Path, str] | None:
    """The corpus a trained model records (``meta['corpus']``), if it can be found.

    ``'<builtin>'`` is the built-in corpus; a path is taken as recorded (absolute since
    shiftrnn records absolute paths; older models recorded it relative to where training ran),
    then relative to the model file's folder, then by its name beside the model file.

    Returns
    -------
    (Path, str) or None
        The file and its recorded format, or None when the model records no corpus or the
        file is not found.
    """
    from train import data as D

    meta = model.meta or {}
    src, fmt = meta.get("corpus"), meta.get("corpus_format", "auto")
    if not src:
        return None
    if src == D.BUILTIN_SOURCE:
        return D.builtin_corpus_path(), fmt
    tries = [Path(src)]
    if model_path is not None and not Path(src).is_absolute():
        tries.append(Path(model_path).parent / src)
    if model_path is not None:
        tries.append(Path(model_path).parent / Path(src).name)
    found = next((p for p in tries if p.is_file()), None)
    return None if found is None else (found, fmt)


def split_data(model, corpus_path: Path, fmt: str, max_timesteps: int) -> EvalData:
    """The test split of a training corpus (the split :func:`train.data.load_corpus` makes)."""
    from train import data as D

    builtin = Path(corpus_path) == D.builtin_corpus_path()
    name = "built-in corpus" if builtin else str(corpus_path)
    c = D.load_corpus(None if builtin else corpus_path, fmt=fmt)
    text = "".join(c.vocab[i] for i in c.test)
    tokens = E.text_tokens(text, model, source=f"the test split of {name}")
    return token_data(model, tokens, max_timesteps, f"{name} (test split)")


def array_data(model, path, max_timesteps: int, *, where: str) -> EvalData:
    """Evaluation data of ``.npy`` inputs or an ``.npz`` with ``x`` and labels ``y``.

    Integers are used as they are (token indices, or the on-wire ``formats.x`` integers of a
    vector model); floats are quantized to ``formats.x``.
    """
    path = Path(path)
    try:
        x, y = E.load_arrays(path)
    except DataError as e:
        raise DataError(f"{where}: {e}") from None
    try:
        x = E.model_inputs(x, model)
    except DataError as e:
        raise DataError(f"{where}: {path}: {e}") from None
    x = x[: max(1, max_timesteps // x.shape[1])]
    kind = "outputs"
    if y is not None:
        if model.head is None:
            raise DataError(f"{where}: {path}: labels 'y' need a model with a dense head "
                            "(logits)")
        y = y[: x.shape[0]]
        kind = "classify"
    return EvalData(x, kind, f"{path.name}: {x.shape[0]} sequences of {x.shape[1]} steps", y,
                    digest([x.tolist(), None if y is None else y.tolist()]))


def random_data(model, sequences: int, length: int, seed: int) -> EvalData:
    """Random inputs (bit-exactness only), seeded."""
    rng = np.random.default_rng(seed)
    if model.input_kind == "token":
        x = rng.integers(0, model.input_size, size=(sequences, length), dtype=np.int64)
    else:
        fx = model.formats["x"]
        x = rng.integers(fx.min_int, fx.max_int + 1, size=(sequences, length, model.input_size),
                         dtype=np.int64)
    return EvalData(x, "outputs", f"{sequences} random sequences of {length} steps (seed "
                    f"{seed}; no data given)", None, digest(x.tolist()))


def score(model, data: EvalData, logits, *, integer: bool) -> float | None:
    """BPC (``lm``) or accuracy (``classify``) of outputs; None for ``outputs`` data.

    Parameters
    ----------
    model : golden.Model
    data : EvalData
    logits : ndarray
        ``(batch, time, outputs)``: real logits, or integers in ``formats.out`` (``integer``).
    integer : bool
        ``logits`` are ``formats.out`` integers (the integer path, the RTL).
    """
    if data.kind == "outputs":
        return None
    z = np.asarray(logits, np.float64)
    if integer:
        z = z * 2.0 ** -model.formats["out"].frac
    if data.kind == "lm":
        return E.bits_per_char(z, data.y)
    return float((z[:, -1].argmax(-1) == data.y).mean())


def eval_data(cfg, model) -> EvalData:
    """The flow's evaluation data for a model (``[data]``; deterministic, cheap).

    ``corpus`` or ``inputs`` when given; else the test split of the training corpus (trained
    here, or recorded by a model file); else random sequences.

    Raises
    ------
    DataError
        The data cannot be read or does not fit the model (the message names the key).
    """
    from train import data as D

    d = cfg.data
    if d.corpus is not None:
        return text_data(model, d.corpus, d.corpus_format, d.max_timesteps,
                         where=f"{cfg.source}: [data] corpus",
                         arrays='[data] inputs = "X.npy"', length=d.length)
    if d.inputs is not None:
        return array_data(model, d.inputs, d.max_timesteps,
                          where=f"{cfg.source}: [data] inputs")
    found = None
    if cfg.model.source == "train":
        c = cfg.train.corpus
        found = (D.builtin_corpus_path() if c == "builtin" else Path(c),
                 cfg.train.corpus_format)
    elif E.is_language_model(model):
        found = recorded_corpus(model, cfg.model.path)
    if found is not None and E.is_language_model(model):
        try:
            return split_data(model, *found, d.max_timesteps)
        except DataError as e:
            raise DataError(f"{cfg.source}: [data]: {e}") from None
    return random_data(model, d.sequences, d.length, d.seed)
