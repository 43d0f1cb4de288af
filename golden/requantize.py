"""Re-quantization: one network's effective weights with another method, or as 8-bit integers.

The *effective float weights* of a model are what its integer path computes with
(``QuantMatrix.values`` and ``Bias.values``). :func:`requantize` quantizes them with another
method through :meth:`Model.from_float`, keeping the formats, nonlinearity, scale terms, bias mode
and metadata; :func:`fitted_params` fits a method's range to the weights; :func:`int8_model` is
the 8-bit fixed-point twin used by the multiplier baseline (golden's ``pow2-ternary`` with
``i + f = 7``: integer codes in ``[-127, 127]`` times ``2**-f``, a symmetric signed 8-bit code).
``shiftrnn compare`` builds its variants with them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .model import Model
from .quantize import METHODS
from .quantize import method_params as defaults

__all__ = ["INT8_BITS", "effective_weights", "fitted_params", "int8_model", "max_weight",
           "requantize"]

#: Bits of the multiplier baseline's weight codes (sign + 7).
INT8_BITS = 8


def effective_weights(model: Model) -> tuple[list[dict], dict | None]:
    """The real weights the model's integer path computes with, in PyTorch layout.

    Returns
    -------
    layers : list of dict
        ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` per layer (float64).
    head : dict or None
        ``weight`` and ``bias`` of the dense head.
    """
    layers = [{"weight_ih": lay.w_ih.values, "weight_hh": lay.w_hh.values,
               "bias_ih": lay.b_ih.values, "bias_hh": lay.b_hh.values} for lay in model.layers]
    head = None
    if model.head is not None:
        head = {"weight": model.head.w.values, "bias": model.head.b.values}
    return layers, head


def requantize(model: Model, method: str, method_params: dict | None = None,
               note: str | None = None) -> Model:
    """Re-quantize a model's effective float weights with another method.

    Formats, nonlinearity, scale terms, bias mode, input kind and metadata are kept; with
    ``bias_mode='fixed'`` the biases are copied exactly (they do not depend on the method).

    Parameters
    ----------
    model : Model
        The source model.
    method : str
        One of :data:`golden.METHODS`.
    method_params : dict, optional
        Parameters of ``method`` (default: golden's defaults, recorded explicitly; binary's
        ``H`` and ternary's ``W0`` default to each matrix's Glorot bound).
    note : str, optional
        Recorded in ``meta['requantized']``.

    Returns
    -------
    Model
        The re-quantized model.
    """
    layers, head = effective_weights(model)
    params = {k: v for k, v in defaults(method, (1, 1), **(method_params or {})).items()
              if k not in ("H", "W0") or k in (method_params or {})}  # else per-matrix
    meta = dict(model.meta or {})
    meta["requantized"] = note or f"{method} from the effective weights of a {model.method} model"
    out = Model.from_float(
        model.cell, layers, head, method=method, input_kind=model.input_kind,
        method_params=params, scale_terms=model.scale_terms, bias_mode=model.bias_mode,
        formats=dict(model.formats), nonlinearity=model.nonlinearity, meta=meta)
    if model.bias_mode == "fixed":
        lays = [dataclasses.replace(new, b_ih=old.b_ih, b_hh=old.b_hh)
                for new, old in zip(out.layers, model.layers, strict=True)]
        hd = out.head if out.head is None else dataclasses.replace(out.head, b=model.head.b)
        out = dataclasses.replace(out, layers=lays, head=hd)
    return out


def max_weight(model: Model) -> float:
    """Largest effective weight magnitude ``max |w|`` over every matrix (biases excluded)."""
    layers, head = effective_weights(model)
    mats = [lw[k] for lw in layers for k in ("weight_ih", "weight_hh")]
    if head is not None:
        mats.append(head["weight"])
    return max(float(np.abs(m).max(initial=0.0)) for m in mats)


def fitted_params(model: Model, method: str) -> dict:
    """Method parameters fitted to the range of a model's effective weights.

    golden's defaults assume weights in about [-1, 1] (the training clip range); re-quantizing
    a model whose weights are much smaller with them can zero every weight. So, with ``wmax``
    the largest weight magnitude:

    - ``binary``, ``ternary``: ``{}`` -- ``H``/``W0`` are each matrix's Glorot bound (the
      paper's choice, and golden's default);
    - ``pow2-ternary``: ``f = clip(round(log2(2 / wmax)), 1, 12)`` so that the grid step
      ``2**-f`` is about ``wmax / 2`` (the default ``f = 1`` is that for ``wmax = 1``), and the
      smallest ``i`` whose range ``(2**(i+f) - 1) * 2**-f`` holds ``wmax`` (``i + f <= 12``);
    - ``exponential``: the default span of 9 exponents, moved so that ``kmax = ceil(log2
      wmax)`` (the default ``kmax = 0`` is that for ``0.5 < wmax <= 1``).

    Parameters
    ----------
    model : Model
        Whose weights set the range.
    method : str
        The method to fit, one of :data:`golden.METHODS`.

    Returns
    -------
    dict
        Parameters for :func:`requantize`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    wmax = max_weight(model)
    if method in ("binary", "ternary") or not wmax > 0:
        return {}
    if method == "pow2-ternary":
        f = int(np.clip(round(math.log2(2.0 / wmax)), 1, 12))
        i = 0
        while i + f < 12 and (2 ** (i + f) - 1) * 2.0**-f < wmax:
            i += 1
        return {"i": i, "f": f}
    kmax = int(np.clip(math.ceil(math.log2(wmax)), -22, 30))
    return {"kmin": kmax - 8, "kmax": kmax}


def int8_model(model: Model) -> Model:
    """The 8-bit fixed-point twin of a model, for the multiplier baseline.

    golden's ``pow2-ternary`` with ``i + f = 7`` rounds each weight to ``k * 2**-f`` with an
    integer ``k`` in ``[-127, 127]`` (scale 1): a symmetric signed 8-bit code. ``i`` is the
    smallest integer part (0..7) whose range ``127 * 2**-f`` holds the largest weight magnitude.

    Parameters
    ----------
    model : Model
        The source model.

    Returns
    -------
    Model
        ``method='pow2-ternary'``, ``method_params={'i': i, 'f': 7 - i}``.
    """
    wmax = max_weight(model)
    frac_total = INT8_BITS - 1
    i = 0
    while i < frac_total and wmax > (2**frac_total - 1) * 2.0 ** -(frac_total - i):
        i += 1
    return requantize(model, "pow2-ternary", {"i": i, "f": frac_total - i},
                      note=f"int8 fixed point (pow2-ternary i={i}, f={frac_total - i}) from the "
                           f"effective weights of a {model.method} model")
