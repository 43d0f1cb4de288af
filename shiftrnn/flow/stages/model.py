"""Stage 1, model: train the network, or take a PyTorch ``.pt`` file or a shiftrnn model file."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import golden
from train.recipes import get_recipe

from ..engine import RunContext, StageBase, StageOutput, file_sha256
from ..errors import FlowError

__all__ = ["EpochPoint", "ModelResult", "ModelStage", "model_error", "one_line",
           "torch_state_dict"]


def one_line(text) -> str:
    return " ".join(str(text).split())


def model_error(e) -> str:
    """A model-file error on one line, without numpy's advice to unpickle an unknown file."""
    return re.sub(r"\((ValueError: )?This file contains pickled.*\)", "(not an .npz archive)",
                  one_line(e))


@dataclass(frozen=True)
class EpochPoint:
    """One epoch of training: running training BPC and validation BPC (None: not validated)."""

    epoch: int
    train_bpc: float
    valid_bpc: float | None


@dataclass(frozen=True)
class ModelResult:
    """Where the network came from.

    Attributes
    ----------
    source : {'train', 'torch', 'file'}
    path : str or None
        The ``.pt`` or model file (None when trained).
    hash : str or None
        Model hash of the trained or read model (None for a PyTorch file: quantized later).
    corpus : str or None
        The training corpus (trained only), as :meth:`golden.evaluation.Corpus.describe`.
    test_bpc, float_test_bpc : float or None
        Test BPC of the trainer (quantized weights) and of the float network (if trained).
    selected_epoch : int or None
        The exported epoch.
    fake_quant : bool or None
        Whether training narrowed activations to the Fixed formats (both networks; None when
        not trained here).
    epochs, float_epochs : tuple of EpochPoint
        Training curves (quantized network, float network).
    """

    source: str
    path: str | None
    hash: str | None
    corpus: str | None
    test_bpc: float | None
    float_test_bpc: float | None
    selected_epoch: int | None
    fake_quant: bool | None
    epochs: tuple[EpochPoint, ...]
    float_epochs: tuple[EpochPoint, ...]


def _read(source: str, path: Path, model_hash: str | None) -> ModelResult:
    """The record of a model that was read, not trained."""
    return ModelResult(source=source, path=str(path), hash=model_hash, corpus=None,
                       test_bpc=None, float_test_bpc=None, selected_epoch=None, fake_quant=None,
                       epochs=(), float_epochs=())


def _curve(rows: list[dict]) -> tuple[EpochPoint, ...]:
    return tuple(EpochPoint(int(r["epoch"]), float(r["train_bpc"]),
                            None if r.get("valid_bpc") is None else float(r["valid_bpc"]))
                 for r in rows)


def _corpus_path(cfg) -> Path:
    from train import data as D

    c = cfg.train.corpus
    p = D.builtin_corpus_path() if c == "builtin" else Path(c)
    if not p.is_file():
        raise FlowError(f"{cfg.source}: [train] corpus: {p}: no such file; fix the path "
                        "(relative to the config file) or use corpus = \"builtin\"")
    return p


def torch_state_dict(cfg, p: Path) -> dict:
    """A PyTorch file's state dict, or one clear error."""
    from golden.importer import StateDictError, load_torch

    try:
        return load_torch(p)
    except ImportError as e:
        raise FlowError(one_line(e)) from None
    except (StateDictError, FileNotFoundError) as e:
        raise FlowError(f"{cfg.source}: [model] path: {one_line(e)}") from None


def _train_config(cfg):
    try:
        import train.trainer as T
    except ModuleNotFoundError as e:
        if e.name == "torch":
            raise FlowError("training needs PyTorch, which is not installed: pip install -e "
                            "'.[train]' (or use source = 'file' with a model file)") from None
        raise
    m, tr = cfg.model, cfg.train
    # Every [train] key that TrainConfig knows goes through by name (a new key is one edit).
    known = {f.name for f in dataclasses.fields(T.TrainConfig)}
    kw = {k: v for k, v in cfg.section("train").items() if k in known}
    kw.update(cell=m.cell, method=m.method, nonlinearity=m.nonlinearity,
              method_params=dict(m.method_params), scale_terms=m.scale_terms,
              bias_mode=m.bias_mode, keep_best=not tr.keep_last)
    try:
        return T, T.TrainConfig(**kw)
    except ValueError as e:
        raise FlowError(f"{cfg.source}: [train]/[model]: {one_line(e)}") from None


class ModelStage(StageBase):
    """Train (quantization-aware), or check the model or PyTorch file."""

    name, result_type = "model", ModelResult

    def what(self, ctx: RunContext) -> str:
        cfg = ctx.cfg
        if cfg.model.source == "train":
            tr, corpus = cfg.train, cfg.train.corpus
            return (f"train {cfg.model.cell} {cfg.model.method} (hidden {tr.hidden}, "
                    f"{tr.epochs} epochs, "
                    f"{'built-in corpus' if corpus == 'builtin' else corpus})")
        verb = "import" if cfg.model.source == "torch" else "load"
        return f"{verb} {cfg.model.path}"

    def inputs(self, ctx: RunContext) -> dict:
        cfg = ctx.cfg
        if cfg.model.source == "train":
            # the recipe by value: a recipe whose choices change under its name trains again
            return {"model": cfg.section("model"), "train": cfg.section("train"),
                    "recipe": dataclasses.asdict(get_recipe(cfg.train.recipe)),
                    "corpus": file_sha256(_corpus_path(cfg))}
        p = Path(cfg.model.path)
        if not p.is_file():
            raise FlowError(f"{cfg.source}: [model] path: {p}: no such file; fix the path "
                            "(relative to the config file)")
        return {"model": cfg.section("model"), "file": file_sha256(p)}

    def shared(self, ctx: RunContext) -> bool:
        """A trained network is kept for other folders with the same model and training keys
        (sweep points that differ in hardware keys train once); reading a file is cheap."""
        return ctx.cfg.model.source == "train"

    def run(self, ctx: RunContext) -> StageOutput:
        cfg = ctx.cfg
        if cfg.model.source == "train":
            return self._train(ctx)
        for stale in ("trained.npz", "train_log.json"):
            (ctx.work / stale).unlink(missing_ok=True)
        p = Path(cfg.model.path)
        if cfg.model.source == "torch":
            torch_state_dict(cfg, p)  # fail early on an unreadable file
            return StageOutput(_read("torch", p, None), (), f"PyTorch file {p.name}")
        try:
            model = golden.load(p)
        except golden.ModelFileError as e:
            raise FlowError(f"{cfg.source}: [model] path: {model_error(e)}; point path at a "
                            "model written by shiftrnn (train, import, random-model)") from None
        return StageOutput(_read("file", p, model.hash()), (), f"model file {p.name}: "
                           f"{model.cell} {model.method}, hidden {model.hidden_size}")

    def _train(self, ctx: RunContext) -> StageOutput:
        from train import data as D

        cfg, tr = ctx.cfg, ctx.cfg.train
        T, tc = _train_config(cfg)
        try:
            corpus = D.load_corpus(None if tr.corpus == "builtin" else tr.corpus,
                                   fmt=tr.corpus_format)
        except golden.DataError as e:
            raise FlowError(f"{cfg.source}: [train] corpus: {e}; fix the path (relative to the "
                            "config file) or use corpus = \"builtin\"") from None
        float_log = None
        if tr.float_baseline:
            fc = T.TrainConfig(**{**tc.to_dict(), "method": "float", "stochastic": False,
                                  "method_params": {}})
            float_log = T.Trainer(fc, task="lm", corpus=corpus, progress=ctx.progress).run()
        trainer = T.Trainer(tc, task="lm", corpus=corpus, progress=ctx.progress)
        try:
            log = trainer.run()
            model = trainer.export()
        except ValueError as e:
            raise FlowError(f"{cfg.source}: training failed: {one_line(e)}") from None
        model.save(ctx.work / "trained.npz", force=True)
        golden.atomic_write_bytes(ctx.work / "train_log.json", (log.to_json() + "\n").encode())
        res = ModelResult(
            source="train", path=None, hash=model.hash(), corpus=corpus.describe(),
            test_bpc=log.final.get("test_bpc"),
            float_test_bpc=None if float_log is None else float_log.final["test_bpc"],
            selected_epoch=log.final.get("selected_epoch"), fake_quant=tr.fake_quant,
            epochs=_curve(log.epochs),
            float_epochs=() if float_log is None else _curve(float_log.epochs))
        note = f"test BPC {res.test_bpc:.3f} (trainer, quantized weights)"
        if res.float_test_bpc is not None:
            note += f"; float network {res.float_test_bpc:.3f}"
        return StageOutput(res, ("trained.npz", "train_log.json"), note)
