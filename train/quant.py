"""Torch twins of golden's weight quantizers, Fixed narrowing and nonlinearities.

Everything here reproduces golden's values exactly in its deterministic form:

* :class:`TensorQuantizer` turns a shadow tensor into the effective weights the hardware computes
  with, ``codes * 2**exp * CSD(scale)`` (``golden.QuantMatrix.values``); the decisions are taken
  in float64 so that thresholds such as ``W0 / 2`` compare exactly as in numpy;
* :func:`fake_quant` is golden's one narrowing rule (round half up, saturate) with a
  straight-through gradient (zero outside the saturation range);
* :class:`TorchNonlinearity` computes ``Nonlinearity.float_fn`` (and, with ``integer_twin``,
  exactly ``Nonlinearity.int_fn`` on Fixed inputs) with usable gradients: piecewise-constant
  tables pass the true function's derivative straight through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

import golden
from golden.nonlin import LUT_RANGE
from golden.quantize import method_params as golden_method_params

__all__ = [
    "TRAIN_METHODS",
    "data_scale",
    "TensorQuantizer",
    "TorchNonlinearity",
    "fake_quant",
    "ste",
]

#: Every method the trainer knows: golden's hardware methods plus the float baseline.
TRAIN_METHODS = ("float", *golden.METHODS)


def ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Forward ``q``, backward identity to ``x`` (straight-through estimator)."""
    return x + (q - x).detach()


def fake_quant(x: torch.Tensor, fmt: golden.Fixed) -> torch.Tensor:
    """Round ``x`` half up to ``fmt`` and saturate, like ``golden.narrow``; straight-through.

    The gradient is 1 inside the representable range and 0 where the value saturates.
    """
    scale = 2.0**fmt.frac
    lo, hi = fmt.min_int / scale, fmt.max_int / scale
    y = torch.clamp(x, lo, hi)
    return ste(y, torch.floor(y * scale + 0.5) / scale)


def data_scale(method: str, w: torch.Tensor, params: dict, threshold: float,
               per_row: bool = False):
    """Per-matrix (a float) or per-row (float64 array) scales derived from shadow weights ``w``.

    binary: ``H = mean|w|`` (the least-squares scale of ``sign(w)``); ternary: ``W0 = 2 *
    threshold * mean|w|``, so that weights below ``threshold * mean|w|`` round to zero;
    pow2-ternary: the power of two ``scale`` whose first level ``scale * 2**-f`` is nearest
    (in log) to that ``W0`` (a power of two costs no adder). Deterministic (float64).
    """
    if method not in ("binary", "ternary", "pow2-ternary"):
        raise ValueError(f"no data-derived scale for method {method!r}")
    w = w.detach().to(torch.float64)
    w2 = w.reshape(w.shape[0], -1) if per_row else w.reshape(1, -1)
    m = w2.abs().mean(1)
    m = torch.where(m > 0, m, torch.ones_like(m))
    if method == "binary":
        out = m
    elif method == "ternary":
        out = 2.0 * threshold * m
    else:
        out = 2.0 ** torch.round(torch.log2(2.0 * threshold * m * 2.0 ** params.get("f", 1)))
    out = out.numpy()
    return out if per_row else float(out[0])


@dataclass
class TensorQuantizer:
    """Quantizer of one PyTorch tensor (weight matrix or bias) with golden's semantics.

    Parameters
    ----------
    method : str
        ``'float'`` (identity) or one of ``golden.METHODS``.
    params : dict
        Method parameters as golden fills them (``H``/``W0`` already resolved).
    scale_terms : int
        CSD terms of the per-tensor scale (golden's ``scale_terms``).
    row_scales : ndarray, optional
        One exact scale per row (golden's ``row_scales``), in place of the per-matrix one.
    """

    method: str
    params: dict
    scale_terms: int = 2
    row_scales: np.ndarray | None = None

    @classmethod
    def for_tensor(cls, method: str, shape, params: dict | None = None, scale_terms: int = 2,
                   *, scale: float | None = None) -> TensorQuantizer:
        """Quantizer of a weight of ``shape``; biases pass their matrix's ``scale`` (H or W0)."""
        if method == "float":
            return cls("float", {}, scale_terms)
        p = dict(params or {})
        if scale is not None:
            p[golden.SCALE_PARAMS[method]] = scale
        return cls(method, golden_method_params(method, tuple(shape), **p), scale_terms)

    @property
    def scale(self) -> float:
        """The exact (not CSD-rounded) per-matrix scale: H, W0 or ``scale``."""
        return float(self.params[golden.SCALE_PARAMS[self.method]])

    @property
    def effective_scale(self) -> float:
        """The scale the hardware multiplies by: its CSD rounding (``QuantMatrix.C * 2**pmin``)."""
        return float(sum(s * 2.0**p for s, p in golden.csd_round(self.scale, self.scale_terms)))

    @property
    def top_level(self) -> float | None:
        """The largest quantization level in units of the scale (None for ``float``)."""
        m, p = self.method, self.params
        if m in ("binary", "ternary"):
            return 1.0
        if m == "pow2-ternary":
            return (2 ** (p["f"] + p["i"]) - 1) / 2.0 ** p["f"]
        if m == "exponential":
            return 2.0 ** p["kmax"]
        return None

    @property
    def clip_range(self) -> float | None:
        """Shadow weights are clipped to ``[-r, r]`` after each step (None: no clipping, or one
        range per row with per-row scales: :meth:`clip_`)."""
        if self.row_scales is not None or self.top_level is None:
            return None
        return self.top_level * self.scale

    @property
    def stochastic_ok(self) -> bool:
        return self.method in ("binary", "ternary", "exponential")

    def codes(self, w: torch.Tensor, stochastic: bool = False,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, object]:
        """Integer codes (float64 tensor) and the factor ``2**exp * CSD(scale)`` they stand for
        (a float, or with per-row scales a float64 tensor broadcast along the rows)."""
        m, p = self.method, self.params
        w = w.detach().to(torch.float64)
        stochastic = stochastic and self.stochastic_ok
        if self.row_scales is not None:  # one scale per row, broadcast along the row
            sp = self._row_view(w)
            eff = torch.from_numpy(golden.ScaleVector.from_float(
                self.row_scales, self.scale_terms).values).view(sp.shape)
        elif m != "float":
            sp, eff = self.scale, self.effective_scale

        def rand():
            return torch.rand(w.shape, generator=generator, dtype=torch.float64)

        one = torch.ones((), dtype=torch.float64)
        if m == "binary":
            if stochastic:
                prob = torch.clamp((w / sp + 1) / 2, 0, 1)
                c = torch.where(rand() < prob, one, -one)
            else:
                c = torch.where(w >= 0, one, -one)
            return c, eff
        if m == "ternary":
            W0 = sp
            if stochastic:
                prob = torch.clamp(w.abs() / W0, 0, 1)
                c = torch.sign(w) * (rand() < prob).to(torch.float64)
            else:
                c = torch.where(w > W0 / 2, one, torch.where(w <= -W0 / 2, -one, 0 * one))
            return c, eff
        if m == "pow2-ternary":
            i, f = p["i"], p["f"]
            lim = 2 ** (f + i) - 1
            x = w / sp * 2.0**f
            c = torch.clamp(torch.sign(x) * torch.floor(x.abs() + 0.5), -lim, lim)
            return c, 2.0**-f * eff
        if m == "exponential":
            kmin, kmax = p["kmin"], p["kmax"]
            a = (w / sp).abs()
            # floor(log2 a) exactly: frexp gives a = m * 2**e with m in [0.5, 1).
            _, e = torch.frexp(torch.where(a > 0, a, one * 2.0 ** (kmin - 1)))
            k = torch.clamp(e.to(torch.float64) - 1, kmin, kmax)
            if stochastic:
                up = rand() < (a / 2.0**k - 1)
            else:
                up = a > 1.5 * 2.0**k
            k = torch.clamp(k + up.to(torch.float64), kmin, kmax)
            sign = torch.where(w > 0, one, -one)
            return sign * 2.0 ** (k - kmin), 2.0**kmin * eff
        raise ValueError(f"no codes for method {m!r}")

    def values(self, w: torch.Tensor, stochastic: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Effective quantized values (``QuantMatrix.values``) in ``w``'s dtype, no gradient."""
        if self.method == "float":
            return w.detach()
        c, factor = self.codes(w, stochastic, generator)
        return (c * factor).to(w.dtype)

    def __call__(self, w: torch.Tensor, stochastic: bool = False,
                 generator: torch.Generator | None = None,
                 scale: torch.Tensor | None = None) -> torch.Tensor:
        """Quantized ``w`` with a straight-through gradient to the shadow weights.

        ``scale``, when given, is the trained scale: a 0-d tensor whose value is this
        quantizer's ``scale``, or one value per equal block of rows (a gate's), which repeated
        over the blocks' rows equals its ``row_scales``. It receives LSQ's gradient (Esser et
        al., "Learned Step Size Quantization", 2020), ``level - w / s`` inside the clip range and
        ``level`` outside it, scaled by ``1 / sqrt(n * top level)`` where ``n`` is the number of
        weights that share one trained value. The forward value is unchanged.
        """
        if self.method == "float":
            return w
        q = self.values(w, stochastic, generator)
        out = ste(w, q)
        if scale is None:
            return out
        share = w.numel() // max(1, scale.numel())
        s, top = self._row_view(w) if self.row_scales is not None else self.scale, self.top_level
        v = w.detach().to(torch.float64) / s
        grad = q.to(torch.float64) / s - torch.where(v.abs() <= top, v, torch.zeros_like(v))
        grad = grad / math.sqrt(share * top)
        if scale.ndim:
            scale = scale.repeat_interleave(w.shape[0] // scale.numel()).view(s.shape)
        return out + (scale - scale.detach()).to(w.dtype) * grad.to(w.dtype)

    def _row_view(self, w: torch.Tensor) -> torch.Tensor:
        """The per-row scales as a float64 tensor that broadcasts along ``w``'s rows."""
        return torch.from_numpy(np.asarray(self.row_scales, np.float64)).view(
            (-1,) + (1,) * (w.ndim - 1))

    def clip_(self, w: torch.Tensor) -> None:
        """Clip shadow weights in place to the quantizer's range (per row with per-row
        scales)."""
        if self.top_level is None:
            return
        r = self.clip_range if self.row_scales is None else \
            (self._row_view(w) * self.top_level).to(w.dtype)
        with torch.no_grad():
            w.clamp_(-r, r)


class TorchNonlinearity:
    """Torch twin of :class:`golden.Nonlinearity` for training.

    Parameters
    ----------
    nl : golden.Nonlinearity
        The kind and table sizes.
    integer_twin : bool
        Follow the integer path: ``exact`` becomes its fine LUT, and LUT outputs are the rounded
        integer tables (with fake quantization this reproduces ``int_fn`` exactly).
    smooth_grad : bool
        The piecewise-linear kinds (``hard``, ``plan``) pass the derivative of the true
        function (``sigmoid``, ``tanh``) straight through instead of their own, which is 0
        where they saturate: a saturated unit can still learn its way back. Values unchanged.
    """

    def __init__(self, nl: golden.Nonlinearity, integer_twin: bool = False,
                 smooth_grad: bool = False):
        self.nl = nl
        self.integer_twin = integer_twin
        self.smooth_grad = smooth_grad
        self.kind = nl.int_kind if integer_twin else nl.kind
        self._tables: dict = {}

    def _table(self, fn: str, fout: golden.Fixed | None, dtype) -> torch.Tensor:
        key = (fn, fout, dtype)
        if key not in self._tables:
            if fout is not None:
                t = fout.to_float(self.nl.lut_table_int(fn, fout))
            else:
                t = self.nl.lut_table_float(fn)
            self._tables[key] = torch.tensor(np.asarray(t, dtype=np.float64), dtype=dtype)
        return self._tables[key]

    def _lut(self, fn: str, x: torch.Tensor, fout) -> torch.Tensor:
        R = LUT_RANGE[fn]
        n = 1 << self.nl.int_lut_bits
        idx = torch.clamp(torch.floor((x.detach() + R) / (2 * R) * n), 0, n - 1).long()
        y = self._table(fn, fout, x.dtype)[idx]
        smooth = torch.sigmoid(x) if fn == "sigmoid" else torch.tanh(x)
        return ste(smooth, y)

    @staticmethod
    def _plan_sigmoid(x: torch.Tensor) -> torch.Tensor:
        a = x.abs()
        y = torch.where(a >= 5, torch.ones_like(a),
                        torch.where(a >= 2.375, a / 32 + 0.84375,
                                    torch.where(a >= 1, a / 8 + 0.625, a / 4 + 0.5)))
        return torch.where(x >= 0, y, 1 - y)

    def __call__(self, fn: str, x: torch.Tensor, fout: golden.Fixed | None = None) -> torch.Tensor:
        """``sigmoid``/``tanh`` of ``x``; with ``fout`` the result is narrowed to that format."""
        k = self.kind
        if k == "lut":
            y = self._lut(fn, x, fout if self.integer_twin else None)
            if fout is not None and not self.integer_twin:
                y = fake_quant(y, fout)
            return y
        smooth = torch.sigmoid(x) if fn == "sigmoid" else torch.tanh(x)
        if k == "exact":
            y = smooth
        elif k == "hard":
            y = torch.clamp(x / 4 + 0.5, 0, 1) if fn == "sigmoid" else torch.clamp(x, -1, 1)
        else:
            y = self._plan_sigmoid(2 * x) * 2 - 1 if fn == "tanh" else self._plan_sigmoid(x)
        if self.smooth_grad and k != "exact":
            y = ste(smooth, y)
        return y if fout is None else fake_quant(y, fout)
