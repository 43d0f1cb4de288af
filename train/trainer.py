"""The training loops: character-level language model and sequence classification.

Both use Adam on the full-precision shadow weights, forward passes with quantized weights
(straight-through gradients), gradient-norm clipping and deterministic quantization for
evaluation and export; the recipe (:mod:`train.recipes`) decides scales, clipping of the shadow
weights, per-tensor learning rates and the schedule (``classic``: clipped to the quantizer's
range after every step, cosine decay to a tenth over the planned steps). A run is deterministic
for a given seed on one machine: torch and numpy are seeded, deterministic algorithms are on and
the thread count is fixed (``threads``). Checkpoints hold everything needed to resume
bit-identically.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

import golden

from . import data as D
from .nets import FEW_LEVELS, ExportError, QuantRNN
from .quant import TRAIN_METHODS
from .recipes import DEFAULT_RECIPE, get_recipe, paper_lr_scale

__all__ = [
    "TrainConfig",
    "TrainLog",
    "Trainer",
    "bpc",
    "train_classifier",
    "train_lm",
]


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and in the model's meta).

    Parameters
    ----------
    cell : {'rnn', 'gru', 'lstm'}
    method : {'float', 'binary', 'ternary', 'pow2-ternary', 'exponential'}
    stochastic : bool
        Stochastic weight quantization in every training step (binary, ternary, exponential).
    nonlinearity : {'exact', 'hard', 'plan', 'lut'}
    hidden, layers : int
    epochs : int
        Passes over the training data.
    batch, seq_len : int
        Parallel streams and truncated back-propagation length (LM); batch size (classify).
    lr : float
        Adam learning rate, decayed by a cosine to ``lr / 10`` over the planned steps.
    seed : int
    fake_quant : bool
        Narrow activations to golden's Fixed formats during training and evaluation.
    method_params : dict
        golden method parameters (``H``, ``W0``, ``i``, ``f``, ``kmin``, ``kmax``).
    scale_terms : int
        CSD terms per scale.
    bias_mode : {'quantized', 'fixed'}
    grad_clip : float
        Global gradient-norm limit.
    max_batches : int or None
        Cap on training batches per epoch (a budget knob); None: the whole pass.
    eval_every : int
        Validate every this many epochs (and after the last one).
    keep_best : bool
        Test and export the weights of the validated epoch with the best validation metric
        (early-stopping selection, as is usual for the paper's tables); False: the last epoch's.
    threads : int
        torch intra-op threads (fixed for determinism).
    recipe : str
        A name in :data:`train.RECIPES`: how scales, input normalisation, initialisation,
        per-tensor learning rates and the schedule are chosen (default ``'classic'``).
    """

    cell: str = "gru"
    method: str = "ternary"
    stochastic: bool = False
    nonlinearity: str = "hard"
    hidden: int = 128
    layers: int = 1
    epochs: int = 5
    batch: int = 64
    seq_len: int = 32
    lr: float = 5e-3
    seed: int = 0
    fake_quant: bool = False
    method_params: dict = field(default_factory=dict)
    scale_terms: int = 2
    bias_mode: str = "quantized"
    grad_clip: float = 5.0
    max_batches: int | None = None
    eval_every: int = 1
    keep_best: bool = True
    threads: int = 1
    recipe: str = DEFAULT_RECIPE

    def __post_init__(self):
        get_recipe(self.recipe)
        if self.method not in TRAIN_METHODS:
            raise ValueError(f"method must be one of {', '.join(TRAIN_METHODS)}, got "
                             f"{self.method!r}")
        if self.cell not in golden.CELLS:
            raise ValueError(f"cell must be one of {', '.join(golden.CELLS)}, got {self.cell!r}")
        if self.nonlinearity not in golden.KINDS:
            raise ValueError(f"nonlinearity must be one of {', '.join(golden.KINDS)}, got "
                             f"{self.nonlinearity!r}")
        if self.stochastic and self.method in ("float", "pow2-ternary"):
            raise ValueError(f"method {self.method!r} has no stochastic form")
        for name in ("hidden", "epochs", "batch", "seq_len", "threads", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.layers not in (1, 2):
            raise ValueError(f"layers must be 1 or 2, got {self.layers}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def label(self) -> str:
        m = self.method + (" (stoch)" if self.stochastic else "")
        r = "" if self.recipe == DEFAULT_RECIPE else f" [{self.recipe}]"
        return f"{self.cell} {m}{r}"


@dataclass
class TrainLog:
    """Per-epoch training log; ``final`` holds the test metrics after training."""

    task: str
    config: dict
    epochs: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"task": self.task, "config": self.config, "epochs": self.epochs,
                           "final": self.final}, indent=1, sort_keys=True)

    def to_csv(self) -> str:
        buf = io.StringIO()
        cols = list(self.epochs[0]) if self.epochs else ["epoch"]
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for row in self.epochs:
            w.writerow(row)
        return buf.getvalue()

    def save(self, path) -> Path:
        """Write JSON when ``path`` ends in ``.json``, CSV otherwise (atomically)."""
        path = Path(path)
        text = self.to_json() if path.suffix.lower() == ".json" else self.to_csv()
        golden.atomic_write_bytes(path, text.encode())
        return path


@contextlib.contextmanager
def deterministic(threads: int):
    """Fix torch's thread count and turn on deterministic algorithms; restore on exit."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def _save_checkpoint(path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    golden.atomic_write_bytes(path, buf.getvalue())


class Trainer:
    """One training run; :meth:`run` trains, :meth:`export` gives the golden model.

    Parameters
    ----------
    config : TrainConfig
    task : {'lm', 'classify'}
    corpus : data.Corpus
        For ``task='lm'``.
    dataset : dict
        For ``task='classify'``: ``x_train, y_train, x_valid, y_valid, x_test, y_test``.
    checkpoint : path, optional
        Saved after every epoch.
    resume : bool
        Continue from ``checkpoint`` (its configuration must match, except ``epochs``).
    progress : bool
        Show a tqdm progress bar.
    log_path : path, optional
        The log is rewritten after every epoch.
    """

    def __init__(self, config: TrainConfig, *, task: str = "lm", corpus: D.Corpus | None = None,
                 dataset: dict | None = None, checkpoint=None, resume: bool = False,
                 progress: bool = False, log_path=None):
        if task not in ("lm", "classify"):
            raise ValueError(f"task must be 'lm' or 'classify', got {task!r}")
        self.config, self.task = config, task
        self.corpus, self.dataset = corpus, dataset
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.progress, self.log_path = progress, log_path
        c = config
        with deterministic(c.threads):
            torch.manual_seed(c.seed)
            if task == "lm":
                if corpus is None:
                    raise ValueError("task 'lm' needs a corpus")
                n_in = n_out = len(corpus.vocab)
                kind = "token"
            else:
                if dataset is None:
                    raise ValueError("task 'classify' needs a dataset")
                x = dataset["x_train"]
                kind = "vector" if x.ndim == 3 else "token"
                n_in = x.shape[2] if x.ndim == 3 else dataset["vocab_size"]
                n_out = dataset["classes"]
            self.net = QuantRNN(
                c.cell, n_in, c.hidden, n_out, num_layers=c.layers, method=c.method,
                stochastic=c.stochastic, method_params=c.method_params,
                scale_terms=c.scale_terms, bias_mode=c.bias_mode,
                nonlinearity=golden.Nonlinearity(c.nonlinearity), fake_quant=c.fake_quant,
                input_kind=kind, recipe=c.recipe)
            self.net.generator = torch.Generator().manual_seed(c.seed + 1)
            self.opt = torch.optim.Adam(self._param_groups(), lr=c.lr)
        if task == "lm":
            self.net.vocab = list(corpus.vocab)
        self.log = TrainLog(task, c.to_dict())
        self.epoch = 0
        self.best: dict = {}  # state dict of the best validated epoch
        self.best_epoch, self.best_metric = 0, None
        self.step = 0
        if resume:
            self._resume()

    # ------------------------------------------------------------ checkpoints
    def _state(self) -> dict:
        return {
            "format": "shiftrnn-train-checkpoint",
            "task": self.task,
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "generator": self.net.generator.get_state(),
            "log_epochs": json.dumps(self.log.epochs),
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_metric": json.dumps(self.best_metric),
        }

    def _resume(self) -> None:
        if self.checkpoint is None:
            raise ValueError("--resume needs --checkpoint FILE")
        if not self.checkpoint.is_file():
            raise FileNotFoundError(f"checkpoint {self.checkpoint} not found")
        try:
            st = torch.load(self.checkpoint, weights_only=True)
        except Exception as e:
            raise ValueError(f"checkpoint {self.checkpoint} is not readable ({e})") from None
        if not isinstance(st, dict) or st.get("format") != "shiftrnn-train-checkpoint":
            raise ValueError(f"{self.checkpoint} is not a shiftrnn training checkpoint")
        mine = {k: v for k, v in self.config.to_dict().items() if k != "epochs"}
        theirs = {k: v for k, v in st["config"].items() if k != "epochs"}
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if diff or st["task"] != self.task:
            shown = ", ".join(f"{k}: {theirs.get(k)!r} -> {mine.get(k)!r}" for k in diff)
            raise ValueError(f"checkpoint {self.checkpoint} was made with different settings "
                             f"({shown or 'task'}); resume with the same ones")
        self.net.load_state_dict(st["net"])
        self.opt.load_state_dict(st["opt"])
        self.net.generator.set_state(st["generator"])
        self.epoch, self.step = int(st["epoch"]), int(st["step"])
        self.log.epochs = json.loads(st["log_epochs"])
        self.best, self.best_epoch = st["best"], int(st["best_epoch"])
        self.best_metric = json.loads(st["best_metric"])

    def _param_groups(self) -> list[dict]:
        """Adam parameter groups, each with its ``lr_scale`` (the recipe's per-layer rule)."""
        net, recipe = self.net, get_recipe(self.config.recipe)
        quant_lr = recipe.quant_lr if net.method in FEW_LEVELS else 1.0
        if not (recipe.lr_scale or quant_lr != 1.0 or net.log_scales) or net.method == "float":
            return [{"params": list(net.parameters()), "lr_scale": 1.0}]
        groups: dict[float, list] = {}
        H = net.hidden_size
        for name, p in net.named_parameters():
            q = net.quantizers.get(name)
            if name.startswith("log_scales."):
                scale = recipe.scale_lr
            elif q is None or q.method == "float":  # input normalisation, fixed-point biases
                scale = 1.0
            elif not recipe.lr_scale:
                scale = 1.0 if name in net.matrix_of else quant_lr
            elif name.startswith("head."):
                scale = paper_lr_scale(H, net.output_size)
            else:
                k = int(name.rsplit("_l", 1)[1])
                scale = paper_lr_scale(net.input_size if k == 0 else H, H)
            groups.setdefault(scale, []).append(p)
        return [{"params": ps, "lr_scale": s} for s, ps in groups.items()]

    # ------------------------------------------------------------- schedule
    def _batches_per_epoch(self) -> int:
        c = self.config
        if self.task == "lm":
            per_stream = (len(self.corpus.train) - 1) // self._streams()
            n = max(1, math.ceil(per_stream / self._seq_len()))
        else:
            n = max(1, math.ceil(len(self.dataset["y_train"]) / c.batch))
        return n if c.max_batches is None else min(n, int(c.max_batches))

    def _streams(self) -> int:
        # Keep every stream at least two windows long on a tiny corpus.
        n = len(self.corpus.train) - 1
        return max(1, min(self.config.batch, n // (2 * min(self.config.seq_len, n))))

    def _seq_len(self) -> int:
        n = (len(self.corpus.train) - 1) // self._streams()
        return max(1, min(self.config.seq_len, n))

    def _progress(self) -> float:
        total = max(1, self.config.epochs * self._batches_per_epoch())
        return min(1.0, self.step / total)

    def _lr(self) -> float:
        """The learning rate now; a quantized network's decay ends at the recipe's
        ``quant_final_lr`` when it has one."""
        recipe = get_recipe(self.config.recipe)
        final = None if self.net.method == "float" else recipe.quant_final_lr
        return self.config.lr * recipe.lr_factor(self._progress(), final)

    def _quantize_mode(self) -> str:
        """``'none'`` in the recipe's float start, else ``'train'``."""
        return "none" if self._progress() < get_recipe(self.config.recipe).float_start \
            else "train"

    # ------------------------------------------------------------- training
    def _train_step(self, loss: torch.Tensor) -> None:
        for g in self.opt.param_groups:
            g["lr"] = self._lr() * g.get("lr_scale", 1.0)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.opt.step()
        self.net.clip_()
        self.step += 1

    def _lm_epoch(self, bar) -> dict:
        c = self.config
        rng = np.random.default_rng([c.seed, self.epoch])
        S, L = self._streams(), self._seq_len()
        data = self.corpus.train[int(rng.integers(0, L)):]
        if len(data) - 1 < S * L:
            data = self.corpus.train
        n = (len(data) - 1) // S
        X = torch.as_tensor(data[:S * n].reshape(S, n).copy())
        Y = torch.as_tensor(data[1:S * n + 1].reshape(S, n).copy())
        state, total, count = None, 0.0, 0
        self.net.train()
        tail = get_recipe(c.recipe).det_tail
        for b in range(self._batches_per_epoch()):
            s = b * L
            if s >= n:
                break
            self.net.force_det = self._progress() >= 1.0 - tail if tail else False
            x, y = X[:, s:s + L], Y[:, s:s + L]
            logits, state = self.net(x, state, quantize=self._quantize_mode())
            state = [(h.detach(), cc.detach()) for h, cc in state]
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                               y.reshape(-1))
            self._train_step(loss)
            total += float(loss.detach()) * y.numel()
            count += y.numel()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(bpc=f"{total / count / math.log(2):.3f}")
        return {"train_bpc": total / max(count, 1) / math.log(2)}

    def _classify_epoch(self, bar) -> dict:
        c = self.config
        ds = self.dataset
        rng = np.random.default_rng([c.seed, self.epoch])
        order = rng.permutation(len(ds["y_train"]))
        total, correct, count = 0.0, 0, 0
        self.net.train()
        tail = get_recipe(c.recipe).det_tail
        for b in range(self._batches_per_epoch()):
            idx = order[b * c.batch:(b + 1) * c.batch]
            if len(idx) == 0:
                break
            self.net.force_det = self._progress() >= 1.0 - tail if tail else False
            x = torch.as_tensor(ds["x_train"][idx].copy())
            y = torch.as_tensor(ds["y_train"][idx].copy())
            logits, _ = self.net(x, None, quantize=self._quantize_mode())
            loss = nn.functional.cross_entropy(logits[:, -1], y)
            self._train_step(loss)
            total += float(loss.detach()) * len(idx)
            correct += int((logits[:, -1].argmax(-1) == y).sum())
            count += len(idx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total / count:.3f}")
        return {"train_loss": total / max(count, 1), "train_acc": correct / max(count, 1)}

    def run(self, stop_after: int | None = None) -> TrainLog:
        """Train the remaining epochs; evaluate on the validation data after each one.

        ``stop_after`` ends the run after that many epochs of this call (as if interrupted; the
        learning-rate schedule still follows ``config.epochs``), without the test evaluation.
        """
        c = self.config
        bar = None
        end = c.epochs if stop_after is None else min(c.epochs, self.epoch + int(stop_after))
        with deterministic(c.threads):
            if self.progress and self.epoch < end:
                from tqdm import tqdm

                bar = tqdm(total=(end - self.epoch) * self._batches_per_epoch(),
                           desc=c.label(), unit="batch", leave=True)
            try:
                while self.epoch < end:
                    t0 = time.perf_counter()
                    row = {"epoch": self.epoch + 1}
                    row.update(self._lm_epoch(bar) if self.task == "lm"
                               else self._classify_epoch(bar))
                    last = self.epoch + 1 == c.epochs
                    if last or (self.epoch + 1) % c.eval_every == 0:
                        row.update(self.evaluate("valid"))
                        self._track_best(row)
                    else:
                        row.update({"valid_bpc" if self.task == "lm" else "valid_acc": None})
                    row["steps"] = self.step
                    row["lr"] = self._lr()
                    row["seconds"] = round(time.perf_counter() - t0, 3)
                    self.epoch += 1
                    self.log.epochs.append(row)
                    key = "valid_bpc" if self.task == "lm" else "valid_acc"
                    if bar is not None and row[key] is not None:
                        bar.write(f"epoch {row['epoch']}: {key} {row[key]:.4f}")
                    if self.checkpoint is not None:
                        _save_checkpoint(self.checkpoint, self._state())
                    if self.log_path is not None:
                        self.log.save(self.log_path)
            finally:
                if bar is not None:
                    bar.close()
            if self.epoch < c.epochs:
                return self.log
            if c.keep_best and self.best:
                self.net.load_state_dict(self.best)
            self.log.final = self.evaluate("test")
            self.log.final["selected_epoch"] = self.best_epoch if c.keep_best else self.epoch
        if self.log_path is not None:
            self.log.save(self.log_path)
        return self.log

    def _track_best(self, row: dict) -> None:
        if self.task == "lm":
            m, better = row["valid_bpc"], lambda a, b: a < b
        else:
            m, better = row["valid_acc"], lambda a, b: a > b
        if self.best_metric is None or better(m, self.best_metric):
            self.best_metric, self.best_epoch = m, self.epoch + 1
            self.best = {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    # ----------------------------------------------------------- evaluation
    def evaluate(self, split: str = "test") -> dict:
        """Metrics of the deterministic quantized network on ``split`` (float64 arithmetic)."""
        if self.task == "lm":
            tokens = getattr(self.corpus, split)
            return {f"{split}_bpc": bpc(self.net, tokens, "quant")}
        x, y = self.dataset[f"x_{split}"], self.dataset[f"y_{split}"]
        logits = net_logits(self.net, x, "quant")
        return {f"{split}_acc": float((logits[:, -1].argmax(-1) == y).mean())}

    def export(self, meta: dict | None = None) -> golden.Model:
        """The golden model of the trained shadow weights (deterministic quantization)."""
        m = {"trained_by": "shiftrnn train", "task": self.task, "train_config": self.log.config,
             "epochs_trained": self.epoch}
        if self.task == "lm":
            m.update(vocab=list(self.corpus.vocab), corpus=self.corpus.source,
                     corpus_format=self.corpus.fmt)
        else:
            m.update(classes=int(self.dataset["classes"]))
        m.update({k: v for k, v in self.log.final.items()})
        sel = self.log.final.get("selected_epoch", self.epoch)
        for row in self.log.epochs:
            if row["epoch"] == sel:
                m.update({k: v for k, v in row.items() if k.startswith("valid")})
        m.update(meta or {})
        return self.net.export(meta=m)


# --------------------------------------------------------------------- evaluation
def net_logits(net: QuantRNN, x: np.ndarray, mode: str = "quant") -> np.ndarray:
    """Logits of a trainer network run from the zero state, in float64.

    ``mode='quant'``: deterministic quantized weights and the run's fake quantization (the
    trainer's own evaluation); ``'shadow'``: the full-precision shadow weights, float activations.
    """
    if mode not in ("quant", "shadow"):
        raise ValueError(f"mode for a trainer network must be 'quant' or 'shadow', got {mode!r}")
    net64 = copy.deepcopy(net).double().eval()
    if mode == "shadow":
        net64.fake_quant = False
    x = np.asarray(x)
    xt = torch.as_tensor(x.copy()) if np.issubdtype(x.dtype, np.integer) else \
        torch.as_tensor(x.astype(np.float64))
    with torch.no_grad(), deterministic(1):
        logits, _ = net64(xt, None, quantize="det" if mode == "quant" else "none")
    return logits.numpy()


def _tokens_for(model, corpus) -> np.ndarray:
    if isinstance(corpus, D.Corpus):
        return corpus.test
    if isinstance(corpus, np.ndarray):
        return corpus.astype(np.int64)
    vocab = getattr(model, "vocab", None) if isinstance(model, QuantRNN) else \
        model.meta.get("vocab")
    if vocab is None:
        raise ValueError("the model records no vocabulary (meta['vocab']); pass token indices")
    text, _ = D.read_text(corpus)
    return D.encode_text(text, vocab)


def bpc(model, corpus, mode: str = "int", streams: int | None = None) -> float:
    """Bits per character of a model on a corpus.

    Parameters
    ----------
    model : golden.Model or QuantRNN
        A golden model (file) or a trainer network.
    corpus : path, data.Corpus or ndarray
        A text file (the whole file is evaluated), a :class:`data.Corpus` (its test split) or
        token indices.
    mode : {'int', 'float', 'quant', 'shadow'}
        ``'int'``/``'float'``: golden's bit-accurate integer path / float path (a trainer network
        is exported first); ``'quant'``/``'shadow'``: a trainer network's own evaluation with
        deterministic quantized / full-precision weights.
    """
    tokens = _tokens_for(model, corpus)
    if isinstance(model, QuantRNN):
        if mode in ("int", "float"):
            model = model.export()
        else:
            x, y = D.chunk_tokens(tokens, streams)
            return D.bits_per_char(net_logits(model, x, mode), y)
    if mode not in ("int", "float"):
        raise ValueError(f"mode for a golden model must be 'int' or 'float', got {mode!r}")
    return D.golden_bpc(model, tokens, mode, streams)


# ------------------------------------------------------------------------- front
def _config(kw: dict) -> TrainConfig:
    return kw.pop("config") if "config" in kw else TrainConfig(**kw)


def train_lm(corpus=None, *, corpus_format: str = "auto", valid=None, test=None,
             checkpoint=None, resume: bool = False, progress: bool = False, log_path=None,
             return_trainer: bool = False, **config):
    """Train a character-level language model.

    Parameters
    ----------
    corpus : path or data.Corpus, optional
        Text file (plain or PTB char format) or a loaded corpus; None: the built-in corpus.
    corpus_format : {'auto', 'plain', 'ptb'}
    valid, test : path, optional
        Separate validation and test files (otherwise the corpus is split 90/5/5).
    checkpoint, resume, progress, log_path
        See :class:`Trainer`.
    return_trainer : bool
        Return the :class:`Trainer` instead of the golden model (needed for ``method='float'``,
        which has no hardware form).
    **config
        :class:`TrainConfig` fields (``cell``, ``method``, ``hidden``, ``epochs``, ...), or
        ``config=TrainConfig(...)``.

    Returns
    -------
    model : golden.Model (or Trainer with ``return_trainer``)
        Shadow weights quantized deterministically; ``meta['vocab']`` holds the characters.
    log : TrainLog
        Train/valid BPC per epoch and the final test BPC.
    """
    cfg = _config(config)
    if not isinstance(corpus, D.Corpus):
        corpus = D.load_corpus(corpus, fmt=corpus_format, valid=valid, test=test)
    if cfg.method == "float" and not return_trainer:
        raise ExportError("method 'float' has no hardware form; pass return_trainer=True to "
                          "get the trained network")
    tr = Trainer(cfg, task="lm", corpus=corpus, checkpoint=checkpoint, resume=resume,
                 progress=progress, log_path=log_path)
    log = tr.run()
    return (tr if return_trainer else tr.export()), log


def split_classify(x: np.ndarray, y: np.ndarray, seed: int = 0, split=(0.8, 0.1, 0.1)) -> dict:
    """Seeded random train/valid/test split of a classification set (80/10/10)."""
    n = len(y)
    if n < 3:
        raise ValueError(f"need at least 3 sequences to split, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    a = max(1, int(n * split[0]))
    b = min(n - 1, max(a + 1, a + int(n * split[1])))
    parts = {"train": order[:a], "valid": order[a:b], "test": order[b:]}
    ds = {}
    for k, idx in parts.items():
        ds[f"x_{k}"], ds[f"y_{k}"] = x[idx], y[idx]
    ds["classes"] = int(y.max()) + 1
    if x.ndim == 2:
        ds["vocab_size"] = int(x.max()) + 1
    return ds


def train_classifier(data, *, checkpoint=None, resume: bool = False, progress: bool = False,
                     log_path=None, return_trainer: bool = False, **config):
    """Train a sequence classifier on ``(x, y)`` arrays (or an .npz with keys 'x' and 'y').

    The label is read from the logits of the last timestep. ``x`` is (N, T) integer tokens or
    (N, T, D) real vectors; the data are split 80/10/10 with the run's seed. Returns
    ``(model, log)`` like :func:`train_lm`, with test accuracy in ``log.final``.
    """
    cfg = _config(config)
    x, y = D.load_classify(data) if not isinstance(data, tuple) else data
    if cfg.method == "float" and not return_trainer:
        raise ExportError("method 'float' has no hardware form; pass return_trainer=True to "
                          "get the trained network")
    ds = split_classify(np.asarray(x), np.asarray(y), cfg.seed)
    tr = Trainer(cfg, task="classify", dataset=ds, checkpoint=checkpoint, resume=resume,
                 progress=progress, log_path=log_path)
    log = tr.run()
    return (tr if return_trainer else tr.export()), log
