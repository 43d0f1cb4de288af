"""The training corpus and classification data; numpy only (no torch).

Text to tokens, corpus formats and splits, evaluation chunks and bits per character belong to
:mod:`golden.evaluation` (one owner, shared by the trainer, the flow and every command) and are
re-exported here for the trainer. This module adds what is training's own: the built-in corpus
shipped inside the ``train`` package, and classification data sets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from golden import evaluation as E
from golden.evaluation import (
    CORPUS_FORMATS,
    PTB_SPACE,
    Corpus,
    DataError,
    bits_per_char,
    chunk_tokens,
    detect_format,
    encode_text,
    eval_streams,
    golden_bpc,
    read_text,
)

__all__ = [
    "BUILTIN_CORPUS", "BUILTIN_SOURCE", "CORPUS_FORMATS", "PTB_SPACE", "Corpus", "DataError",
    "bits_per_char", "builtin_corpus_path", "chunk_tokens", "detect_format", "encode_text",
    "eval_streams", "golden_bpc", "load_classify", "load_corpus", "read_text",
]

#: File name of the built-in corpus, shipped inside the ``train`` package.
BUILTIN_CORPUS = "corpus.txt"
#: How a model trained on the built-in corpus records it (``meta['corpus']``).
BUILTIN_SOURCE = "<builtin>"


def builtin_corpus_path() -> Path:
    """Path of the built-in corpus (original English prose written for shiftrnn)."""
    return Path(__file__).with_name(BUILTIN_CORPUS)


def load_corpus(path=None, *, fmt: str = "auto", valid=None, test=None,
                split=(0.9, 0.05, 0.05)) -> Corpus:
    """Load a character corpus (:func:`golden.evaluation.load_corpus`); None: the built-in one.

    The built-in corpus is recorded as ``'<builtin>'``, a file by its absolute path.
    """
    if path is None:
        return E.load_corpus(builtin_corpus_path(), fmt=fmt, valid=valid, test=test,
                             split=split, source=BUILTIN_SOURCE)
    return E.load_corpus(path, fmt=fmt, valid=valid, test=test, split=split)


def load_classify(path) -> tuple[np.ndarray, np.ndarray]:
    """Sequences ``x`` (N, T) integer tokens or (N, T, D) floats and labels ``y`` (N,) from .npz."""
    x, y = E.load_arrays(path, labels=True)
    if x.ndim not in (2, 3):
        raise DataError(f"{path}: 'x' must be (N, T) or (N, T, D); got {x.shape}")
    if x.ndim == 2 and not np.issubdtype(x.dtype, np.integer):
        raise DataError(f"{path}: 2-D 'x' must hold integer tokens (N, T)")
    if x.ndim == 2 and x.size and x.min() < 0:
        raise DataError(f"{path}: token indices must be >= 0")
    return x, y
