"""train: quantization-aware training (PyTorch) that exports golden models.

The only package of shiftrnn that imports torch, and only when a torch-backed name is used:
``import train`` and :mod:`train.data` (corpora, bits per character of golden models) work
without torch.

Public API
----------
train_lm(corpus=None, **config) -> (golden.Model, TrainLog)
train_classifier(data, **config) -> (golden.Model, TrainLog)
bpc(model, corpus, mode) -> float
TrainConfig, TrainLog, Trainer, QuantRNN, TensorQuantizer, fake_quant
load_corpus, builtin_corpus_path, golden_bpc (numpy only)
RECIPES (name -> Recipe, each with a one-line description), Recipe (no torch)
"""

from __future__ import annotations

import importlib

from .data import builtin_corpus_path, golden_bpc, load_corpus
from .recipes import RECIPES, Recipe

__all__ = [
    "RECIPES", "ExportError", "QuantRNN", "Recipe", "TensorQuantizer", "TrainConfig",
    "TrainLog", "Trainer", "bpc", "builtin_corpus_path", "fake_quant", "golden_bpc",
    "load_corpus", "train_classifier", "train_lm",
]

_LAZY = {
    "ExportError": "nets", "QuantRNN": "nets", "TensorQuantizer": "quant", "fake_quant": "quant",
    "TrainConfig": "trainer", "TrainLog": "trainer", "Trainer": "trainer", "bpc": "trainer",
    "train_classifier": "trainer", "train_lm": "trainer",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'train' has no attribute {name!r}")
