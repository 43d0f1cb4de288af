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
from golden.model import INPUT_NORM_EPS
from golden.quantize import method_params as check_method_params

from .quant import TRAIN_METHODS, TensorQuantizer, TorchNonlinearity, data_scale, fake_quant
from .recipes import DEFAULT_RECIPE, get_recipe, paper_scale

__all__ = ["FEW_LEVELS", "InputNorm", "QuantRNN", "ExportError"]

#: Methods with a few levels: data-derived scales and the recipe's quantized learning rate
#: apply to them (exponential weights keep their own range and the base learning rate).
FEW_LEVELS = ("binary", "ternary", "pow2-ternary")

#: golden.Model.from_float's default format of fixed-point biases.
BIAS_FORMAT = golden.Fixed(16, 10)


class ExportError(ValueError):
    """The network has no hardware form (the ``float`` baseline) or cannot be exported."""


class InputNorm(nn.Module):
    """Batch normalisation of a layer's input over batch and time (the authors' GRU layer).

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` per input column; training uses the
    statistics of the batch and updates running averages (``momentum``), evaluation and export
    the running averages. For token input the statistics are those of the one-hot columns (the
    token frequencies), computed without building the one-hot matrix. :meth:`affine` gives the
    per-column ``scale`` and ``offset`` of ``y = scale * x + offset``.
    """

    def __init__(self, n: int, gamma: float = 0.1, momentum: float = 0.1,
                 eps: float = INPUT_NORM_EPS):
        super().__init__()
        self.n, self.momentum, self.eps = int(n), float(momentum), float(eps)
        self.weight = nn.Parameter(torch.full((n,), float(gamma)))
        self.bias = nn.Parameter(torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def batch_stats(self, x: torch.Tensor, token: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (biased) variance per column of tokens (B, T) or vectors (B, T, n)."""
        if token:
            p = torch.bincount(x.reshape(-1), minlength=self.n).to(self.weight.dtype) / x.numel()
            return p, p * (1 - p)
        flat = x.detach().reshape(-1, self.n)
        return flat.mean(0), flat.var(0, unbiased=False)

    def affine(self, x: torch.Tensor | None = None, token: bool = True):
        """``(scale, offset)`` per column: from the batch ``x`` (and update the running
        averages) when training, else from the running averages (in float64)."""
        if x is None or not self.training:  # float64: export and evaluation agree exactly
            mean, var = self.running_mean.double(), self.running_var.double()
            scale = self.weight.double() / torch.sqrt(var + self.eps)
            return scale, self.bias.double() - scale * mean
        mean, var = self.batch_stats(x, token)
        with torch.no_grad():
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(var.to(self.running_var.dtype), self.momentum)
        scale = self.weight / torch.sqrt(var.to(self.weight.dtype) + self.eps)
        return scale, self.bias - scale * mean.to(self.weight.dtype)


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
    recipe : str
        A name in :data:`train.recipes.RECIPES`: per-matrix scales, input normalisation and
        initialisation (the trainer applies its learning-rate rules).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int, *,
                 num_layers: int = 1, method: str = "ternary", stochastic: bool = False,
                 method_params: dict | None = None, scale_terms: int = 2,
                 bias_mode: str = "quantized", bias_format: golden.Fixed = BIAS_FORMAT,
                 nonlinearity: golden.Nonlinearity | str = "hard",
                 formats: dict | None = None, fake_quant: bool = False,
                 input_kind: str = "token", recipe: str = DEFAULT_RECIPE):
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
        self.recipe = get_recipe(recipe)
        self.generator: torch.Generator | None = None  # stochastic quantization source
        self.force_det = False  # deterministic quantization in training steps too

        G, H = golden.CELLS[cell] * hidden_size, hidden_size
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's nn.RNN/GRU/LSTM initialisation
        self.quantizers: dict[str, TensorQuantizer] = {}
        self.fixed_params: dict[str, dict] = {}  # per-tensor scales of the 'paper' recipe
        self.matrix_of: dict[str, str] = {}  # bias -> the matrix whose scale it shares
        for k in range(num_layers):
            n_in = input_size if k == 0 else H
            for name, shape in ((f"weight_ih_l{k}", (G, n_in)), (f"weight_hh_l{k}", (G, H))):
                role = "input" if "ih" in name else "recurrent"
                self._param(name, shape, bound, paper=(role, n_in, H))
            for name, mat in ((f"bias_ih_l{k}", f"weight_ih_l{k}"),
                              (f"bias_hh_l{k}", f"weight_hh_l{k}")):
                self._param(name, (G,), bound, matrix=mat, paper=("input", n_in, H))
        self.head = nn.Module()
        self._param("head.weight", (output_size, H), bound, paper=("input", H, output_size))
        self._param("head.bias", (output_size,), bound, matrix="head.weight",
                    paper=("input", H, output_size))
        self.input_norms = nn.ModuleList(
            [InputNorm(input_size if k == 0 else H, self.recipe.norm_gamma)
             for k in range(num_layers)] if self.recipe.input_norm else [])
        self.log_scales = nn.ParameterDict()  # empty while _learned_scales reads the start
        self.log_scales.update(self._learned_scales())
        self.clip_()

    def _learned_scales(self) -> dict[str, nn.Parameter]:
        """The recipe's trained scales: log2 of every quantized matrix's starting scale (the
        recipe's own: fixed, or derived from the initial weights)."""
        if not self.recipe.learn_scales or self.method == "float":
            return {}
        start = self.tensor_quantizers()
        return {_scale_key(name): nn.Parameter(torch.full(self._scale_shape(name),
                                                          math.log2(q.scale)))
                for name, q in start.items()
                if name not in self.matrix_of and q.method != "float"}

    def _scale_shape(self, name: str) -> tuple:
        """Shape of matrix ``name``'s trained scale: one per gate with ``gate_scales`` (cells of
        more than one gate; the head has one), else a scalar."""
        gates = 1 if name.startswith("head.") else len(golden.GATES[self.cell])
        return (gates,) if self.recipe.gate_scales and gates > 1 else ()

    # ------------------------------------------------------------------ set-up
    def _param(self, name: str, shape, bound: float, matrix: str | None = None,
               paper: tuple = ("input", 1, 1)) -> None:
        p = nn.Parameter(torch.empty(shape))
        owner, attr = (self.head, name.split(".")[1]) if name.startswith("head.") else (self, name)
        owner.register_parameter(attr, p)
        key = golden.SCALE_PARAMS.get(self.method)
        if self.recipe.scales == "paper" and key not in self.method_params:
            f = check_method_params(self.method, shape, **self.method_params)["f"] \
                if self.recipe.learn_scales and self.method == "pow2-ternary" else None
            self.fixed_params[name] = paper_scale(self.method, *paper, trained_f=f)
        if matrix is not None:
            self.matrix_of[name] = matrix
        if self.method == "float":
            q = TensorQuantizer("float", {}, self.scale_terms)
        elif matrix is None or name in self.fixed_params:
            q = TensorQuantizer.for_tensor(self.method, shape, {
                **self.method_params, **self.fixed_params.get(name, {})}, self.scale_terms)
        elif self.bias_mode == "fixed":
            q = TensorQuantizer("float", {}, self.scale_terms)
        else:
            mq = self.quantizers[matrix]
            q = TensorQuantizer.for_tensor(self.method, shape, self.method_params,
                                           self.scale_terms, scale=mq.scale)
        self.quantizers[name] = q
        if self.recipe.init == "paper":
            with torch.no_grad():
                p.normal_(0.0, 0.1) if matrix is None else p.zero_()
            return
        # PyTorch's U(-1/sqrt(H), 1/sqrt(H)). Methods with a zero level start uniform over their
        # clip range instead: pow2-ternary's threshold (1/4 with the default f=1) and a large W0's
        # (W0/2) lie above PyTorch's bound, so every weight would round to 0, the network would
        # output a constant and the straight-through gradient would be exactly 0 for ever.
        if self.method in ("ternary", "pow2-ternary") and q.clip_range is not None:
            bound = q.clip_range
        with torch.no_grad():
            p.uniform_(-bound, bound)

    def clip_(self) -> None:
        """Clip every shadow tensor to its quantizer's range (call after each optimizer step);
        nothing with data-derived scales (``recipe.clip`` false)."""
        if not self.recipe.clip:
            return
        quantizers = self.tensor_quantizers()
        for name, p in self.named_parameters():
            if name in quantizers:
                quantizers[name].clip_(p)

    def data_scales(self) -> bool:
        """Per-matrix scales follow the shadow weights (the recipe's ``'data'`` scales; methods
        with a few levels, :data:`FEW_LEVELS`)."""
        return (self.recipe.scales == "data" and self.method in FEW_LEVELS
                and golden.SCALE_PARAMS[self.method] not in self.method_params)

    def scales_move(self) -> bool:
        """Per-matrix scales change in training: trained ones, or derived from the weights."""
        return bool(self.log_scales) or self.data_scales()

    def learned_scale(self, name: str) -> torch.Tensor | None:
        """The trained scale of matrix ``name`` with gradient, or None: a 0-d tensor, or with
        ``gate_scales`` one value per gate."""
        key = _scale_key(name)
        return 2.0 ** self.log_scales[key].to(torch.float64) if key in self.log_scales else None

    def tensor_quantizers(self) -> dict[str, TensorQuantizer]:
        """The quantizer of every weight tensor now: fixed ones, or with trained scales, or with
        data-derived scales computed from the current shadow weights (biases take their
        matrix's scale)."""
        if not self.scales_move():
            return self.quantizers
        key, rows = golden.SCALE_PARAMS[self.method], self.recipe.rows
        params = dict(self.named_parameters())
        out = {}
        for name, q in self.quantizers.items():
            if name in self.matrix_of:
                continue
            if self.log_scales:
                s = self.learned_scale(name).detach()  # per gate: repeated over its rows
                s = np.repeat(s.numpy(), len(params[name]) // s.numel()) if s.ndim else float(s)
            else:
                s = data_scale(self.method, params[name], self.method_params,
                               self.recipe.threshold, per_row=rows)
            out[name] = TensorQuantizer(q.method, q.params, q.scale_terms, row_scales=s) \
                if np.ndim(s) else TensorQuantizer(q.method, {**q.params, key: s}, q.scale_terms)
        for name, mat in self.matrix_of.items():
            q, m = self.quantizers[name], out[mat]
            out[name] = q if q.method == "float" else TensorQuantizer(
                q.method, {**q.params, key: m.params[key]}, q.scale_terms, m.row_scales)
        return out

    def tensor_params(self) -> dict[str, dict]:
        """Per-tensor scale parameters to export (``golden.Model.from_float(tensor_params)``)."""
        if self.method == "float":
            return {}
        if not self.scales_move():
            return {k: dict(v) for k, v in self.fixed_params.items()}
        key = golden.SCALE_PARAMS[self.method]
        return {n: {key: q.params[key]} if q.row_scales is None else
                {"row_scales": q.row_scales}
                for n, q in self.tensor_quantizers().items() if q.method != "float"}

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
            "recipe": self.recipe.name,
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
        stoch = quantize == "train" and self.stochastic and not self.force_det
        quantizers = self.tensor_quantizers() if quantize != "none" else self.quantizers
        for name, p in self.named_parameters():
            q = quantizers.get(name)
            if q is None:  # input normalisation: full precision, folded at export
                continue
            if quantize == "none":
                out[name] = p
            elif self.bias_mode == "fixed" and (name.startswith("bias") or name == "head.bias"):
                out[name] = fake_quant(p, self.bias_format)
            else:
                out[name] = q(p, stoch, self.generator, self.learned_scale(name))
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
        nl = TorchNonlinearity(self.nonlinearity, integer_twin=fq,
                               smooth_grad=self.recipe.smooth_grad)
        B, T = x.shape[:2]
        H = self.hidden_size
        dtype = w["weight_hh_l0"].dtype

        def q(v, name):
            return fake_quant(v, f[name]) if fq else v

        def act(fn, v, fmt):
            return nl(fn, v, f[fmt] if fq else None)

        new_state = []
        seq = None
        folded = self._folded() if self.input_norms and quantize == "det" and \
            not self.training else None
        for k in range(self.num_layers):
            wi, wh = w[f"weight_ih_l{k}"], w[f"weight_hh_l{k}"]
            bi, bh = w[f"bias_ih_l{k}"], w[f"bias_hh_l{k}"]
            token = k == 0 and self.input_kind == "token"
            inp = x if token else q(x.to(dtype), "x") if k == 0 else seq
            if folded is not None:  # exactly the exported integers (golden's fold)
                wi, bi = (t.to(dtype) for t in folded[k])
            elif self.input_norms:
                scale, offset = self.input_norms[k].affine(inp, token)
                bi = bi + wi @ offset.to(dtype)
                wi = wi * scale.to(dtype)
            if token:
                xw_all = nn.functional.embedding(x, wi.t()) + bi
            else:
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

    def _folded(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, ``W_ih`` with the input normalisation's column scales and the folded
        ``b_ih``, as float64 tensors: golden's integers (float method: the exact affine map)."""
        if self.method == "float":
            out = []
            for k, norm in enumerate(self.input_norms):
                scale, offset = (t.detach().double() for t in norm.affine())
                wi = getattr(self, f"weight_ih_l{k}").detach().double()
                bi = getattr(self, f"bias_ih_l{k}").detach().double()
                out.append((wi * scale, bi + wi @ offset))
            return out
        return [(torch.from_numpy(layer.input_matrix().values),
                 torch.from_numpy(layer.b_ih.values)) for layer in self.export().layers]

    # ------------------------------------------------------------------ export
    def export(self, meta: dict | None = None) -> golden.Model:
        """The golden model: shadow weights quantized deterministically by golden itself
        (with this network's per-tensor scales), input normalisation folded by golden."""
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
        for k, norm in enumerate(self.input_norms):
            scale, offset = norm.affine()
            layers[k].update(input_scale=arr(scale), input_offset=arr(offset))
        head = {"weight": arr(sd["head.weight"]), "bias": arr(sd["head.bias"])}
        return golden.Model.from_float(
            self.cell, layers, head, method=self.method, input_kind=self.input_kind,
            method_params=self.method_params, scale_terms=self.scale_terms,
            bias_mode=self.bias_mode, bias_format=self.bias_format, formats=self.formats,
            nonlinearity=self.nonlinearity, meta=meta, tensor_params=self.tensor_params())


def _scale_key(name: str) -> str:
    """``log_scales`` key of a weight tensor (a parameter name has no dots)."""
    return name.replace(".", "_")
