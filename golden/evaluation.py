"""Evaluation data: text to tokens, input arrays, evaluation streams and bits per character.

The one owner of how shiftrnn reads data, shared by the trainer, the flow, ``shiftrnn eval``,
``simulate``, ``compare`` and ``run``, so that every number is measured the same way:

* **text to tokens**: :func:`read_text` reads a corpus file (``plain``, or ``ptb``: the Penn
  Treebank character format, characters separated by spaces and ``'_'`` for a space; ``auto``
  detects it); :func:`text_tokens` maps characters through the model's vocabulary
  (``meta['vocab']``; an unknown character is an error naming the fix), or a model without one
  by UTF-8 byte modulo its input size. :func:`load_corpus` splits a corpus for training.
* **input arrays**: :func:`load_arrays` reads ``.npy`` (inputs) or ``.npz`` (``x``, optional
  labels ``y``); :func:`model_inputs` turns them into the integers the hardware receives.
* **evaluation streams**: :func:`lm_streams` caps a token stream at ``max_timesteps`` and cuts it
  into :func:`eval_streams` contiguous chunks (:func:`chunk_tokens`); each runs from the zero
  state and every step predicts the next token.
* **bits per character**: :func:`bits_per_char` (softmax in float64), :func:`golden_bpc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ShiftrnnError

__all__ = [
    "CORPUS_FORMATS", "DEFAULT_MAX_TIMESTEPS", "PTB_SPACE", "Corpus", "DataError",
    "bits_per_char", "chunk_tokens", "detect_format", "encode_text", "eval_streams",
    "golden_bpc", "is_language_model", "lm_streams", "load_arrays", "load_corpus",
    "model_inputs", "read_text", "text_tokens",
]

#: Corpus formats: ``auto`` detects the Penn Treebank character format.
CORPUS_FORMATS = ("auto", "plain", "ptb")
#: A PTB-char line is single characters separated by single spaces, '_' marking a space.
PTB_SPACE = "_"
#: Default cap on evaluated timesteps (flow ``[data] max_timesteps``, ``--max-timesteps``).
DEFAULT_MAX_TIMESTEPS = 8192
_PTB_HINT = ("a Penn Treebank character file (characters separated by spaces, '_' for a space) "
             "needs corpus format 'ptb'")


class DataError(ShiftrnnError, ValueError):
    """Evaluation data cannot be read or does not fit the model; the message names the fix."""


# ----------------------------------------------------------------------------- text
def detect_format(text: str) -> str:
    """``'ptb'`` when the text looks like Penn Treebank char format, else ``'plain'``.

    PTB char format writes every character separated by single spaces and ``'_'`` for a space:
    ``a e r _ b a n k n o t e``. A text is taken for PTB when at least 95 % of its first 200
    non-empty lines have a space at every odd position and none elsewhere, and either a ``'_'``
    occurs or most of those lines hold three characters or more (so a PTB file without a word
    break is not read as plain text).
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()][:200]
    if not lines:
        return "plain"

    def ptb_line(ln: str) -> bool:
        return all(ch == " " for ch in ln[1::2]) and all(ch != " " for ch in ln[0::2])

    if sum(map(ptb_line, lines)) < 0.95 * len(lines):
        return "plain"
    long_lines = sum(len(ln) >= 5 for ln in lines)
    return "ptb" if PTB_SPACE in text or long_lines > len(lines) / 2 else "plain"


def read_text(path, fmt: str = "auto") -> tuple[str, str]:
    """Read a corpus file as plain text; returns ``(text, format_used)``.

    PTB char files become plain text: characters joined, ``'_'`` to a space, one line per line.

    Raises
    ------
    DataError
        Unknown format, no such file, not UTF-8.
    """
    if fmt not in CORPUS_FORMATS:
        raise DataError(f"corpus format must be one of {', '.join(CORPUS_FORMATS)}, got {fmt!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"corpus file {path} not found (no such file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"corpus file {path} is not UTF-8 text ({e.reason}); save it as "
                        "UTF-8") from None
    if fmt == "auto":
        fmt = detect_format(text)
    if fmt == "ptb":
        text = "\n".join("".join(ln.split()).replace(PTB_SPACE, " ")
                         for ln in text.splitlines()) + "\n"
    return text, fmt


def encode_text(text: str, vocab, *, source: str = "the text") -> np.ndarray:
    """Token indices of ``text`` in ``vocab``.

    Raises
    ------
    DataError
        A character is not in ``vocab``; the message names them and the fix.
    """
    index = {ch: i for i, ch in enumerate(vocab)}
    missing = sorted(set(text) - set(index))
    if missing:
        shown = ", ".join(repr(ch) for ch in missing[:10])
        raise DataError(f"{len(missing)} character(s) of {source} are not in the model's "
                        f"vocabulary: {shown}; evaluate a text written in the characters the "
                        f"model was trained on ({_PTB_HINT})")
    return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))


def text_tokens(text: str, model, *, source: str = "the text") -> np.ndarray:
    """Token indices of a text for a token-input model.

    Characters map through ``model.meta['vocab']`` when the model records one (an unknown
    character is an error), else each UTF-8 byte modulo ``model.input_size``.
    """
    if model.input_kind != "token":
        raise DataError(f"{source} is text for a token-input model; this model takes vectors "
                        "(give input arrays instead)")
    vocab = (model.meta or {}).get("vocab")
    if vocab:
        return encode_text(text, vocab, source=source)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64) % \
        model.input_size


@dataclass
class Corpus:
    """A character corpus split into train/valid/test token arrays with one vocabulary."""

    vocab: list[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    source: str
    fmt: str

    @property
    def index(self) -> dict[str, int]:
        return {ch: i for i, ch in enumerate(self.vocab)}

    def describe(self) -> str:
        return (f"{self.source} ({self.fmt}): {len(self.vocab)} symbols, train/valid/test "
                f"{len(self.train)}/{len(self.valid)}/{len(self.test)} characters")


def load_corpus(path, *, fmt: str = "auto", valid=None, test=None,
                split=(0.9, 0.05, 0.05), source: str | None = None) -> Corpus:
    """Load a character corpus and its vocabulary.

    Parameters
    ----------
    path : path-like
        Text file (plain or PTB char format).
    fmt : {'auto', 'plain', 'ptb'}
        Corpus format; ``'auto'`` detects PTB char format.
    valid, test : path-like, optional
        Separate validation/test files (e.g. ``ptb.char.valid.txt``); without them the single
        file is split contiguously by ``split`` (train, valid, test fractions).
    source : str, optional
        How the corpus is named in :attr:`Corpus.source` (default: the file's absolute path, so
        that a model trained on it finds it again from another folder).
    """
    text, used = read_text(path, fmt)
    if (valid is None) != (test is None):
        raise DataError("give both a validation and a test file, or neither")
    if valid is not None:
        parts = [text, read_text(valid, used)[0], read_text(test, used)[0]]
    else:
        if len(split) != 3 or min(split) <= 0:
            raise DataError(f"split must be three positive fractions, got {split}")
        n = len(text)
        a = int(n * split[0] / sum(split))
        b = a + int(n * split[1] / sum(split))
        parts = [text[:a], text[a:b], text[b:]]
    if min(len(p) for p in parts) < 2:
        raise DataError(f"corpus {path} is too short to split into train/valid/test "
                        f"({len(text)} characters)")
    vocab = sorted(set("".join(parts)))
    enc = [encode_text(p, vocab) for p in parts]
    return Corpus(vocab, *enc, source=source or str(Path(path).resolve()), fmt=used)


# -------------------------------------------------------------------------- streams
def eval_streams(n: int) -> int:
    """Number of contiguous evaluation chunks for ``n`` tokens: ``clip(n // 256, 1, 128)``."""
    return int(np.clip(n // 256, 1, 128))


def chunk_tokens(tokens: np.ndarray, streams: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-token targets ``(streams, L)`` of the evaluation scheme; the tail is
    dropped."""
    tokens = np.asarray(tokens, dtype=np.int64)
    streams = eval_streams(len(tokens)) if streams is None else int(streams)
    L = (len(tokens) - 1) // streams
    if L < 1:
        raise DataError(f"text of {len(tokens)} characters is too short to evaluate")
    starts = np.arange(streams) * L
    idx = starts[:, None] + np.arange(L)[None, :]
    return tokens[idx], tokens[idx + 1]


def lm_streams(tokens, max_timesteps: int = DEFAULT_MAX_TIMESTEPS
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation streams of a token stream with at most ``max_timesteps`` timesteps.

    Returns
    -------
    x, y : ndarray of int64, shape ``(streams, L)``
        Inputs and next-token targets (:func:`chunk_tokens` of the first ``max_timesteps + 1``
        tokens).
    tokens : ndarray of int64
        The tokens evaluated (after the cap).
    """
    tokens = np.asarray(tokens, np.int64)[: int(max_timesteps) + 1]
    if tokens.size < 3:
        raise DataError(f"too short to evaluate ({tokens.size} characters); give a longer text")
    x, y = chunk_tokens(tokens)
    return x, y, tokens


def is_language_model(model) -> bool:
    """A character language model: token input and a head over the same vocabulary."""
    return (model.input_kind == "token" and model.head is not None
            and model.output_size == model.input_size)


def bits_per_char(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean ``-log2 softmax(logits)[target]``, computed in float64.

    Raises
    ------
    DataError
        A target is not one of the logits' symbols (text from another vocabulary).
    """
    z = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    n = z.shape[-1]
    outside = targets[(targets < 0) | (targets >= n)]
    if outside.size:
        raise DataError(f"target symbol {int(outside[0])} is outside the model's {n}-symbol "
                        "vocabulary (0.." + f"{n - 1}): the text was encoded for another model")
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return float(-picked.mean() / np.log(2.0))


def golden_bpc(model, tokens: np.ndarray, mode: str = "int", streams: int | None = None) -> float:
    """Bits per character of a ``golden.Model`` (token LM) on ``tokens``, integer or float path."""
    if model.input_kind != "token" or model.head is None:
        raise DataError("bits per character needs a token-input model with a dense head")
    if model.output_size != model.input_size:
        raise DataError(f"a character LM predicts its own vocabulary: head outputs "
                        f"{model.output_size} but the input has {model.input_size} symbols")
    x, y = chunk_tokens(tokens, streams)
    return bits_per_char(model.run(x, mode=mode).logits, y)


# --------------------------------------------------------------------------- arrays
def load_arrays(path, *, labels: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Input arrays from ``.npy`` (the inputs) or ``.npz`` (``x`` and optional labels ``y``).

    Parameters
    ----------
    path : path-like
        The file.
    labels : bool
        Labels ``y`` are required (and checked: one non-negative integer per sequence).

    Returns
    -------
    x : ndarray
    y : ndarray of int64 or None

    Raises
    ------
    DataError
        No such file, not a numpy file, no ``x``, bad labels.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # ValueError, OSError, EOFError, BadZipFile, ...
        why = "pickled objects" if "pickle" in str(e) else f"{type(e).__name__}: {e}"
        raise DataError(f"{path}: not a readable .npy/.npz file ({' '.join(why.split())}); "
                        "save it with numpy.save or numpy.savez") from None
    y = None
    if isinstance(z, np.ndarray):
        x = z
    else:
        with z:
            if "x" not in z.files:
                raise DataError(f"{path}: an .npz needs an array 'x' (and optional labels "
                                f"'y'); it has {sorted(z.files)}")
            x = z["x"]
            y = z["y"] if "y" in z.files else None
    if labels and y is None:
        raise DataError(f"{path}: needs labels 'y' (one integer per sequence) beside 'x'")
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer) or \
                (y.size and y.min() < 0):
            raise DataError(f"{path}: 'y' must hold one non-negative integer label per "
                            f"sequence of 'x' ({len(x)}); got {y.dtype} {y.shape}")
        y = y.astype(np.int64)
    return x, y


def model_inputs(x, model) -> np.ndarray:
    """The integers the hardware receives for inputs ``x`` (what ``run_int`` takes).

    Token models take integer indices ``(batch, time)`` (a 1-D array is one sequence). Vector
    models take ``(batch, time, input)`` (a 2-D array is one sequence): integers are the on-wire
    ``formats.x`` integers and are used as they are; floats are quantized to ``formats.x``.

    Raises
    ------
    DataError
        Wrong shape, dtype or range; the message names the expected form.
    """
    x = np.asarray(x)
    if model.input_kind == "token":
        x = x[None] if x.ndim == 1 else x
        if not np.issubdtype(x.dtype, np.integer):
            raise DataError(f"a token model needs integer token indices shaped (batch, time), "
                            f"got {x.dtype} {x.shape}")
    else:
        x = x[None] if x.ndim == 2 else x
        if np.issubdtype(x.dtype, np.integer):
            fx = model.formats["x"]
            if x.ndim != 3 or x.shape[2] != model.input_size:
                raise DataError(f"expected (batch, time, {model.input_size}), got {x.shape}")
            if x.size and (x.min() < fx.min_int or x.max() > fx.max_int):
                raise DataError(f"integers outside formats.x {fx} ([{fx.min_int}, "
                                f"{fx.max_int}]); pass floats to have them quantized, or widen "
                                "formats.x")
            return x.astype(np.int64)
    try:
        return model.quantize_inputs(x)
    except ValueError as e:
        raise DataError(str(e)) from None
