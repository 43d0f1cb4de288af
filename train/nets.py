"""Quantization-aware recurrent networks (RNN tanh, GRU, LSTM) with PyTorch's gate layouts.

The cell loops are written out so that the nonlinearities are golden's float twins and so that,
with ``fake_quant``, every activation is narrowed at the same points and in the same order as
golden's integer path (``golden.Model.run_int``). Parameters keep PyTorch's names and layouts
(``weight_ih_l0``, ... and ``head.weight``/``head.bias``), so :meth:`QuantRNN.export` hands them
to :meth:`golden.Model.from_float` unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

import golden
from golden.quantize import method_params as check_method_params

from .quant import TRAIN_METHODS, TensorQuantizer, TorchNonlinearity, fake_quant

__all__ = ["QuantRNN", "ExportError"]

#: golden.Model.from_float's default format of fixed-point biases.
BIAS_FORMAT = golden.Fixed(16, 10)


class ExportError(ValueError):
    """The network has no hardware form (the ``float`` baseline) or cannot be exported."""


class QuantRNN(nn.Module):
    """A stacked recurrent network with a dense head and quantized weights.

    Parameters
    ----------
    cell : {'rnn', 'gru', 'lstm'}
    input_size : int
        Vocabulary size for ``input_kind='token'``, vector width otherwise.
    hidden_size, num_layers : int
    output_size : int
        Rows of the dense head (vocabulary size for a language model, classes otherwise).
    method : {'float', 'binary', 'ternary', 'pow2-ternary', 'exponential'}
    stochastic : bool
        Stochastic quantization in training steps (binary, ternary, exponential); evaluation and
        export are always deterministic.
    method_params : dict, optional
        golden's method parameters (``H``, ``W0``, ``i``/``f``, ``kmin``/``kmax``).
    scale_terms : int
        CSD terms of every per-tensor scale.
    bias_mode : {'quantized', 'fixed'}
        Biases quantized like their matrix (the paper) or held in ``bias_format``.
    nonlinearity : golden.Nonlinearity or str
    formats : dict, optional
        golden Fixed formats (defaults: ``golden.DEFAULT_FORMATS``).
    fake_quant : bool
        Narrow activations to ``formats`` where golden's integer path does (straight-through).
    input_kind : {'token', 'vector'}
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int, *,
                 num_layers: int = 1, method: str = "ternary", stochastic: bool = False,
                 method_params: dict | None = None, scale_terms: int = 2,
                 bias_mode: str = "quantized", bias_format: golden.Fixed = BIAS_FORMAT,
                 nonlinearity: golden.Nonlinearity | str = "hard",
                 formats: dict | None = None, fake_quant: bool = False,
                 input_kind: str = "token"):
        super().__init__()
        if cell not in golden.CELLS:
            raise ValueError(f"cell must be one of {', '.join(golden.CELLS)}, got {cell!r}")
        if method not in TRAIN_METHODS:
            raise ValueError(f"method must be one of {', '.join(TRAIN_METHODS)}, got {method!r}")
        if input_kind not in ("token", "vector"):
            raise ValueError(f"input_kind must be 'token' or 'vector', got {input_kind!r}")
        if bias_mode not in ("quantized", "fixed"):
            raise ValueError(f"bias_mode must be 'quantized' or 'fixed', got {bias_mode!r}")
        if not 1 <= num_layers <= 2:
            raise ValueError(f"num_layers must be 1 or 2, got {num_layers}")
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("output_size", output_size)):
            if int(v) < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if stochastic and method in ("float", "pow2-ternary"):
            raise ValueError(f"method {method!r} has no stochastic form")
        if isinstance(nonlinearity, str):
            nonlinearity = golden.Nonlinearity(nonlinearity)
        self.cell, self.input_kind = cell, input_kind
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.output_size, self.num_layers = int(output_size), int(num_layers)
        self.method, self.stochastic = method, bool(stochastic)
        self.method_params = {k: v for k, v in (method_params or {}).items()}
        if method != "float":
            golden_params = {k: v for k, v in self.method_params.items() if k not in ("H", "W0")}
            check_method_params(method, (1, 1), **golden_params)
        self.scale_terms, self.bias_mode = int(scale_terms), bias_mode
        self.bias_format = bias_format
        self.nonlinearity = nonlinearity
        self.formats = {**golden.DEFAULT_FORMATS, **(formats or {})}
        self.fake_quant = bool(fake_quant)
        self.generator: torch.Generator | None = None  # stochastic quantization source

        G, H = golden.CELLS[cell] * hidden_size, hidden_size
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's nn.RNN/GRU/LSTM initialisation
        self.quantizers: dict[str, TensorQuantizer] = {}
        for k in range(num_layers):
            n_in = input_size if k == 0 else H
            for name, shape in ((f"weight_ih_l{k}", (G, n_in)), (f"weight_hh_l{k}", (G, H))):
                self._param(name, shape, bound)
            for name, mat in ((f"bias_ih_l{k}", f"weight_ih_l{k}"),
                              (f"bias_hh_l{k}", f"weight_hh_l{k}")):
                self._param(name, (G,), bound, matrix=mat)
        self.head = nn.Module()
        self._param("head.weight", (output_size, H), bound)
        self._param("head.bias", (output_size,), bound, matrix="head.weight")
        self.clip_()

    # ------------------------------------------------------------------ set-up
    def _param(self, name: str, shape, bound: float, matrix: str | None = None) -> None:
        p = nn.Parameter(torch.empty(shape))
        owner, attr = (self.head, name.split(".")[1]) if name.startswith("head.") else (self, name)
        owner.register_parameter(attr, p)
        if self.method == "float":
            q = TensorQuantizer("float", {}, self.scale_terms)
        elif matrix is None:
            q = TensorQuantizer.for_tensor(self.method, shape, self.method_params, self.scale_terms)
        elif self.bias_mode == "fixed":
            q = TensorQuantizer("float", {}, self.scale_terms)
        else:
            mq = self.quantizers[matrix]
            q = TensorQuantizer.for_tensor(self.method, shape, self.method_params,
                                           self.scale_terms, scale=mq.scale)
        self.quantizers[name] = q
        # PyTorch's U(-1/sqrt(H), 1/sqrt(H)). Methods with a zero level start uniform over their
        # clip range instead: pow2-ternary's threshold (1/4 with the default f=1) and a large W0's
        # (W0/2) lie above PyTorch's bound, so every weight would round to 0, the network would
        # output a constant and the straight-through gradient would be exactly 0 for ever.
        if self.method in ("ternary", "pow2-ternary") and q.clip_range is not None:
            bound = q.clip_range
        with torch.no_grad():
            p.uniform_(-bound, bound)

    def clip_(self) -> None:
        """Clip every shadow tensor to its quantizer's range (call after each optimizer step)."""
        for name, p in self.named_parameters():
            self.quantizers[name].clip_(p)

    def config(self) -> dict:
        """Constructor arguments as plain JSON data."""
        return {
            "cell": self.cell, "input_size": self.input_size, "hidden_size": self.hidden_size,
            "output_size": self.output_size, "num_layers": self.num_layers,
            "method": self.method, "stochastic": self.stochastic,
            "method_params": dict(self.method_params), "scale_terms": self.scale_terms,
            "bias_mode": self.bias_mode, "bias_format": self.bias_format.to_dict(),
            "nonlinearity": self.nonlinearity.to_dict(),
            "formats": {k: v.to_dict() for k, v in self.formats.items()},
            "fake_quant": self.fake_quant, "input_kind": self.input_kind,
        }

    @classmethod
    def from_config(cls, cfg: dict) -> QuantRNN:
        cfg = dict(cfg)
        cfg["bias_format"] = golden.Fixed.from_dict(cfg["bias_format"])
        cfg["nonlinearity"] = golden.Nonlinearity(**cfg["nonlinearity"])
        cfg["formats"] = {k: golden.Fixed.from_dict(v) for k, v in cfg["formats"].items()}
        return cls(cfg.pop("cell"), cfg.pop("input_size"), cfg.pop("hidden_size"),
                   cfg.pop("output_size"), **cfg)

    # ----------------------------------------------------------------- weights
    def effective(self, quantize: str = "det") -> dict[str, torch.Tensor]:
        """Forward-pass tensors: ``'det'``, ``'train'`` (stochastic if enabled) or ``'none'``.

        ``'det'`` and ``'train'`` keep a straight-through gradient to the shadow weights.
        """
        if quantize not in ("det", "train", "none"):
            raise ValueError(f"quantize must be 'det', 'train' or 'none', got {quantize!r}")
        out = {}
        stoch = quantize == "train" and self.stochastic
        for name, p in self.named_parameters():
            q = self.quantizers[name]
            if quantize == "none":
                out[name] = p
            elif self.bias_mode == "fixed" and (name.startswith("bias") or name == "head.bias"):
                out[name] = fake_quant(p, self.bias_format)
            else:
                out[name] = q(p, stoch, self.generator)
        return out

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, state=None, quantize: str = "det"):
        """Run ``x`` (tokens (B, T) or vectors (B, T, D)) from ``state`` (None: zeros).

        Returns
        -------
        logits : Tensor (B, T, output_size)
        state : list of (h, c) per layer, for truncated back-propagation through time.
        """
        w = self.effective(quantize)
        f, fq = self.formats, self.fake_quant
        nl = TorchNonlinearity(self.nonlinearity, integer_twin=fq)
        B, T = x.shape[:2]
        H = self.hidden_size
        dtype = w["weight_hh_l0"].dtype

        def q(v, name):
            return fake_quant(v, f[name]) if fq else v

        def act(fn, v, fmt):
            return nl(fn, v, f[fmt] if fq else None)

        new_state = []
        seq = None
        for k in range(self.num_layers):
            wi, wh = w[f"weight_ih_l{k}"], w[f"weight_hh_l{k}"]
            bi, bh = w[f"bias_ih_l{k}"], w[f"bias_hh_l{k}"]
            if k == 0 and self.input_kind == "token":
                xw_all = nn.functional.embedding(x, wi.t()) + bi
            else:
                inp = q(x.to(dtype), "x") if k == 0 else seq
                xw_all = inp @ wi.t() + bi
            if state is None:
                h = torch.zeros(B, H, dtype=dtype)
                c = torch.zeros(B, H, dtype=dtype)
            else:
                h, c = state[k]
            outs = []
            for t in range(T):
                xw = xw_all[:, t]
                hw = h @ wh.t() + bh
                if self.cell == "rnn":
                    h = q(act("tanh", q(xw + hw, "pre"), "act"), "h")
                elif self.cell == "gru":
                    # r and z share one narrowing and one sigmoid call (elementwise, same values)
                    rz = act("sigmoid", q(xw[:, :2 * H] + hw[:, :2 * H], "pre"), "gate")
                    r, z = rz[:, :H], rz[:, H:]
                    hn = q(hw[:, 2 * H:], "pre")
                    n = q(act("tanh", q(xw[:, 2 * H:] + r * hn, "pre"), "act"), "h")
                    h = q(n + z * (h - n), "h")
                else:
                    g = q(xw + hw, "pre")
                    ifg = act("sigmoid", g[:, :2 * H], "gate")
                    gg = act("tanh", g[:, 2 * H:3 * H], "act")
                    o = act("sigmoid", g[:, 3 * H:], "gate")
                    c = q(ifg[:, H:] * c + ifg[:, :H] * gg, "c")
                    h = q(o * act("tanh", c, "act"), "h")
                outs.append(h)
            seq = torch.stack(outs, 1)
            new_state.append((h, c))
        logits = q(seq @ w["head.weight"].t() + w["head.bias"], "out")
        return logits, new_state

    # ------------------------------------------------------------------ export
    def export(self, meta: dict | None = None) -> golden.Model:
        """The golden model: shadow weights quantized deterministically by golden itself."""
        if self.method == "float":
            raise ExportError(
                "method 'float' is the full-precision baseline and has no hardware form; train "
                "with --method binary, ternary, pow2-ternary or exponential to export a model")

        def arr(p):
            return np.asarray(p.detach().to(torch.float64).cpu().numpy(), dtype=np.float64)

        sd = dict(self.named_parameters())
        layers = [{n: arr(sd[f"{n}_l{k}"]) for n in ("weight_ih", "weight_hh", "bias_ih",
                                                     "bias_hh")}
                  for k in range(self.num_layers)]
        head = {"weight": arr(sd["head.weight"]), "bias": arr(sd["head.bias"])}
        return golden.Model.from_float(
            self.cell, layers, head, method=self.method, input_kind=self.input_kind,
            method_params=self.method_params, scale_terms=self.scale_terms,
            bias_mode=self.bias_mode, bias_format=self.bias_format, formats=self.formats,
            nonlinearity=self.nonlinearity, meta=meta)
