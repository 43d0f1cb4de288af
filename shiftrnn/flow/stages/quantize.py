"""Stage 2, quantize: the golden model (weights to the method, activation formats), evaluated
on the data with its float and bit-accurate integer paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import golden

from ..config import model_formats
from ..data import EvalData, eval_data, score
from ..engine import RunContext, StageBase, StageOutput, file_sha256
from ..errors import FlowError
from .model import ModelResult, model_error, one_line, torch_state_dict

__all__ = ["ModelInfo", "QuantizeResult", "QuantizeStage", "flow_data", "flow_model",
           "model_info"]


@dataclass(frozen=True)
class ModelInfo:
    """What the report says about the model."""

    cell: str
    method: str
    method_params: dict
    input_kind: str
    input_size: int
    hidden_size: int
    output_size: int | None
    layers: int
    nonlinearity: str
    formats: dict[str, str]
    scale_terms: int
    scale_granularity: str
    bias_mode: str
    weights: int
    nonzero_weights: int
    vocab: int | None


def model_info(m: golden.Model) -> ModelInfo:
    mats = [q for layer in m.layers for q in (layer.w_ih, layer.w_hh)]
    if m.head is not None:
        mats.append(m.head.w)
    return ModelInfo(
        cell=m.cell, method=m.method, method_params=dict(m.method_params),
        input_kind=m.input_kind, input_size=int(m.input_size), hidden_size=int(m.hidden_size),
        output_size=m.output_size, layers=len(m.layers), nonlinearity=m.nonlinearity.describe(),
        formats={k: str(v) for k, v in m.formats.items()}, scale_terms=m.scale_terms,
        scale_granularity=m.scale_granularity(), bias_mode=m.bias_mode,
        weights=sum(int(q.codes.size) for q in mats),
        nonzero_weights=sum(int(np.count_nonzero(q.codes)) for q in mats),
        vocab=len(m.meta.get("vocab", [])) or None)


@dataclass(frozen=True)
class QuantizeResult:
    """The quantized model and its golden evaluation.

    Attributes
    ----------
    hash : str
        Model hash (``model.npz``).
    info : ModelInfo
    data, data_kind, data_digest : str
        The evaluation data: description, kind (``lm``, ``classify``, ``outputs``), digest.
    timesteps : int
        Evaluated timesteps.
    metric : str or None
        ``BPC`` or ``accuracy`` (None: no targets, bit-exactness only).
    golden_float, golden_int : float or None
        The metric on golden's float and integer paths.
    max_abs_err, mean_abs_err : float or None
        Without targets: the integer path's distance from the float path.
    """

    hash: str
    info: ModelInfo
    data: str
    data_kind: str
    data_digest: str
    timesteps: int
    metric: str | None
    golden_float: float | None
    golden_int: float | None
    max_abs_err: float | None
    mean_abs_err: float | None


def flow_model(ctx: RunContext) -> golden.Model:
    """The quantized model of this run (``model.npz``), loaded once."""
    if "model" not in ctx.cache:
        ctx.cache["model"] = golden.load(ctx.work / "model.npz")
    return ctx.cache["model"]


def flow_data(ctx: RunContext) -> EvalData:
    """The evaluation data of this run, made once."""
    if "data" not in ctx.cache:
        try:
            ctx.cache["data"] = eval_data(ctx.cfg, flow_model(ctx))
        except golden.DataError as e:
            raise FlowError(one_line(e)) from None
    return ctx.cache["data"]


def _data_files_digest(cfg) -> dict:
    """sha256 of the evaluation files the configuration names (their content is an input)."""
    files = {"corpus": cfg.data.corpus, "inputs": cfg.data.inputs}
    return {k: file_sha256(p) for k, p in files.items() if p is not None and Path(p).is_file()}


def _build_model(ctx: RunContext) -> golden.Model:
    cfg, m = ctx.cfg, ctx.cfg.model
    formats = model_formats(cfg)
    try:
        if m.source == "torch":
            from golden.importer import from_state_dict

            return from_state_dict(
                torch_state_dict(cfg, Path(m.path)), m.cell, m.method,
                input_kind=m.input_kind, nonlinearity=golden.Nonlinearity(m.nonlinearity),
                formats=formats, scale_terms=m.scale_terms,
                method_params=dict(m.method_params), bias_mode=m.bias_mode,
                meta={"source": str(m.path)})
        src = ctx.work / "trained.npz" if m.source == "train" else Path(m.path)
        model = golden.load(src)
        return model.with_formats(**formats) if formats else model
    except golden.ModelFileError as e:
        msg = model_error(e)
        hint = ""
        if "formats." in msg:
            hint = ("; widen that format in [model] formats (gate and act must hold 1.0, e.g. "
                    "gate = \"U8.7\", act = \"S8.6\")")
        raise FlowError(f"{cfg.source}: [model] {msg}{hint}") from None
    except ValueError as e:  # StateDictError and friends
        raise FlowError(f"{cfg.source}: [model] path {m.path}: {one_line(e)}") from None


def _evaluate(model: golden.Model, data: EvalData) -> dict:
    float_in = data.x if model.input_kind == "token" else model.formats["x"].to_float(data.x)
    rf = model.run(float_in, mode="float")
    ri = model.run_int(data.x)
    if data.kind == "outputs":
        fo = rf.logits if rf.logits is not None else rf.h
        fmt = model.formats["out" if ri.logits_int is not None else "h"]
        err = np.abs(fmt.to_float(ri.output_int) - fo)
        return {"max_abs_err": float(err.max()), "mean_abs_err": float(err.mean()),
                "golden_float": None, "golden_int": None}
    return {"golden_float": score(model, data, rf.logits, integer=False),
            "golden_int": score(model, data, ri.logits_int, integer=True),
            "max_abs_err": None, "mean_abs_err": None}


class QuantizeStage(StageBase):
    """Quantize (or read) the model, write ``model.npz``, evaluate golden on the data."""

    name, result_type = "quantize", QuantizeResult
    summary = "quantize and evaluate the golden model"

    def inputs(self, ctx: RunContext) -> dict:
        cfg = ctx.cfg
        model_res: ModelResult = ctx.results["model"]
        return {"model_stage": model_res, "formats": cfg.model.formats,
                "data": cfg.section("data"), "config_model": cfg.section("model"),
                "data_files": _data_files_digest(cfg)}

    def run(self, ctx: RunContext) -> StageOutput:
        model = _build_model(ctx)
        model.save(ctx.work / "model.npz", force=True)
        ctx.cache.pop("data", None)
        ctx.cache["model"] = model
        data = flow_data(ctx)
        with ctx.status("golden float and integer paths"):
            scores = _evaluate(model, data)
        res = QuantizeResult(hash=model.hash(), info=model_info(model), data=data.describe,
                             data_kind=data.kind, data_digest=data.digest,
                             timesteps=int(data.x.shape[0] * data.x.shape[1]),
                             metric=data.metric, **scores)
        if res.metric is None:
            note = f"integer vs float path: max |error| {res.max_abs_err:.4g}"
        else:
            note = (f"{res.metric} float path {res.golden_float:.4f}, integer path "
                    f"{res.golden_int:.4f}")
        return StageOutput(res, ("model.npz",), note)
