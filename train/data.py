"""Corpora, vocabularies, evaluation chunks and bits per character; numpy only (no torch).

The evaluation scheme is shared by the trainer and by ``shiftrnn eval`` so that their numbers
are comparable: a text is cut into :func:`eval_streams` contiguous chunks, each chunk runs from the
zero state, and every character after the first of a chunk is predicted from the ones before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BUILTIN_CORPUS",
    "Corpus",
    "bits_per_char",
    "builtin_corpus_path",
    "chunk_tokens",
    "detect_format",
    "encode_text",
    "eval_streams",
    "golden_bpc",
    "load_classify",
    "load_corpus",
    "read_text",
]

#: File name of the built-in corpus, shipped inside the ``train`` package.
BUILTIN_CORPUS = "corpus.txt"
CORPUS_FORMATS = ("auto", "plain", "ptb")
#: A PTB-char line is single characters separated by single spaces, '_' marking word breaks.
PTB_SPACE = "_"


def builtin_corpus_path() -> Path:
    """Path of the built-in corpus (original English prose written for shiftrnn)."""
    return Path(__file__).with_name(BUILTIN_CORPUS)


def detect_format(text: str) -> str:
    """``'ptb'`` when the text looks like Penn Treebank char format, else ``'plain'``.

    PTB char format writes every character separated by single spaces and ``'_'`` for a space:
    ``a e r _ b a n k n o t e``. A text is taken for PTB when at least 95 % of its first 200
    non-empty lines have a space at every odd position and no double space, and a ``'_'`` occurs.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()][:200]
    if not lines or PTB_SPACE not in text:
        return "plain"

    def ptb_line(ln: str) -> bool:
        return len(ln) >= 1 and all(ch == " " for ch in ln[1::2]) and \
            all(ch != " " for ch in ln[0::2])

    return "ptb" if sum(map(ptb_line, lines)) >= 0.95 * len(lines) else "plain"


def read_text(path, fmt: str = "auto") -> tuple[str, str]:
    """Read a corpus file as plain text; returns ``(text, format_used)``.

    PTB char files become plain text: characters joined, ``'_'`` to a space, one line per line.
    """
    if fmt not in CORPUS_FORMATS:
        raise ValueError(f"corpus format must be one of {', '.join(CORPUS_FORMATS)}, got {fmt!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"corpus file {path} is not UTF-8 text ({e})") from None
    if fmt == "auto":
        fmt = detect_format(text)
    if fmt == "ptb":
        text = "\n".join("".join(ln.split()).replace(PTB_SPACE, " ")
                         for ln in text.splitlines()) + "\n"
    return text, fmt


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


def encode_text(text: str, vocab) -> np.ndarray:
    """Token indices of ``text`` in ``vocab``; unknown characters raise ``ValueError``."""
    index = {ch: i for i, ch in enumerate(vocab)}
    missing = sorted(set(text) - set(index))
    if missing:
        shown = ", ".join(repr(ch) for ch in missing[:10])
        raise ValueError(f"{len(missing)} character(s) not in the model's vocabulary: {shown}")
    return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))


def load_corpus(path=None, *, fmt: str = "auto", valid=None, test=None,
                split=(0.9, 0.05, 0.05)) -> Corpus:
    """Load a character corpus.

    Parameters
    ----------
    path : str or Path, optional
        Text file (plain or PTB char format); None: the built-in corpus.
    fmt : {'auto', 'plain', 'ptb'}
        Corpus format; ``'auto'`` detects PTB char format.
    valid, test : str or Path, optional
        Separate validation/test files (e.g. ``ptb.char.valid.txt``); without them the single
        file is split contiguously by ``split`` (train, valid, test fractions).
    """
    source = "<builtin>" if path is None else str(path)
    path = builtin_corpus_path() if path is None else Path(path)
    text, used = read_text(path, fmt)
    if (valid is None) != (test is None):
        raise ValueError("give both a validation and a test file, or neither")
    if valid is not None:
        parts = [text, read_text(valid, used)[0], read_text(test, used)[0]]
    else:
        if len(split) != 3 or min(split) <= 0:
            raise ValueError(f"split must be three positive fractions, got {split}")
        n = len(text)
        a = int(n * split[0] / sum(split))
        b = a + int(n * split[1] / sum(split))
        parts = [text[:a], text[a:b], text[b:]]
    if min(len(p) for p in parts) < 2:
        raise ValueError(f"corpus {path} is too short to split into train/valid/test "
                         f"({len(text)} characters)")
    vocab = sorted(set("".join(parts)))
    enc = [encode_text(p, vocab) for p in parts]
    return Corpus(vocab, *enc, source=source, fmt=used)


def eval_streams(n: int) -> int:
    """Number of contiguous evaluation chunks for ``n`` tokens: ``clip(n // 256, 1, 128)``."""
    return int(np.clip(n // 256, 1, 128))


def chunk_tokens(tokens: np.ndarray, streams: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets (streams, L) of the evaluation scheme; the tail is dropped."""
    tokens = np.asarray(tokens, dtype=np.int64)
    streams = eval_streams(len(tokens)) if streams is None else int(streams)
    L = (len(tokens) - 1) // streams
    if L < 1:
        raise ValueError(f"text of {len(tokens)} characters is too short to evaluate")
    starts = np.arange(streams) * L
    idx = starts[:, None] + np.arange(L)[None, :]
    return tokens[idx], tokens[idx + 1]


def bits_per_char(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean ``-log2 softmax(logits)[target]``, computed in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, np.asarray(targets)[..., None], axis=-1)[..., 0]
    return float(-picked.mean() / np.log(2.0))


def golden_bpc(model, tokens: np.ndarray, mode: str = "int", streams: int | None = None) -> float:
    """Bits per character of a ``golden.Model`` (token LM) on ``tokens``, integer or float path."""
    if model.input_kind != "token" or model.head is None:
        raise ValueError("bits per character needs a token-input model with a dense head")
    if model.output_size != model.input_size:
        raise ValueError(f"a character LM predicts its own vocabulary: head outputs "
                         f"{model.output_size} but the input has {model.input_size} symbols")
    x, y = chunk_tokens(tokens, streams)
    return bits_per_char(model.run(x, mode=mode).logits, y)


def load_classify(path) -> tuple[np.ndarray, np.ndarray]:
    """Sequences ``x`` (N, T) integer tokens or (N, T, D) floats and labels ``y`` (N,) from .npz."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files or "y" not in z.files:
                raise ValueError(f"{path}: needs arrays 'x' and 'y', has {sorted(z.files)}")
            x, y = z["x"], z["y"]
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if x.ndim not in (2, 3) or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{path}: 'x' must be (N, T) or (N, T, D) and 'y' (N,); got "
                         f"{x.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"{path}: 'y' must hold non-negative integer labels")
    if x.ndim == 2 and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{path}: 2-D 'x' must hold integer tokens (N, T)")
    if x.ndim == 2 and x.size and x.min() < 0:
        raise ValueError(f"{path}: token indices must be >= 0")
    return x, y.astype(np.int64)
