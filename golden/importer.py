"""Import PyTorch recurrent weights into a quantized :class:`golden.Model`.

A state dict holds, per layer ``k``, ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}`` and
``bias_hh_l{k}`` exactly as ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` name them (gates stacked in
PyTorch's order), and optionally an ``nn.Linear`` head under ``head.weight`` / ``head.bias``. The
keys may share one prefix (``rnn.weight_ih_l0`` from a module that holds the RNN as ``rnn``).
A missing bias is a zero bias: the layer gets exact zeros, not the quantization of zero (which
binary and exponential quantizers cannot represent).

Only :func:`load_torch` touches PyTorch, and it imports it lazily: golden itself never needs it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from .errors import ShiftrnnError
from .model import CELLS, INPUT_NORM_EPS, Bias, Model

__all__ = ["StateDictError", "from_state_dict", "load_torch"]

_RNN_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_HEAD_KEYS = ("head.weight", "head.bias")
#: shiftrnn's trainer's input batch normalisation (recipes 'paper', 'learned', 'accurate').
_NORM_KEY = re.compile(r"^input_norms\.(\d+)\.(weight|bias|running_mean|running_var)$")
_NORM_FIELDS = ("weight", "bias", "running_mean", "running_var")


class StateDictError(ShiftrnnError, ValueError):
    """A state dict does not describe the requested network; the message names the key."""


def _to_numpy(v, key: str) -> np.ndarray:
    """A float64 array from a numpy array, a nested list or a torch tensor (without torch)."""
    if hasattr(v, "detach"):  # a torch tensor: no torch import needed to convert it
        v = v.detach().cpu().double().numpy()
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise StateDictError(f"state dict key '{key}': not a numeric array ({e})") from None
    if not np.isfinite(a).all():
        raise StateDictError(f"state dict key '{key}': contains NaN or infinity")
    return a


def _strip_prefix(keys: list[str]) -> tuple[str, dict[str, str]]:
    """Find the common prefix of the RNN keys (``''`` or ``'name.'``); map short to full keys."""
    prefixes = {k[: -len("weight_ih_l0")] for k in keys if k.endswith("weight_ih_l0")}
    if not prefixes:
        raise StateDictError(
            "state dict key 'weight_ih_l0': missing (no recurrent layer found; keys are "
            f"{sorted(keys)[:8]}{' ...' if len(keys) > 8 else ''})"
        )
    if len(prefixes) > 1:
        raise StateDictError(
            f"state dict holds several recurrent modules ({sorted(prefixes)}); pass one"
        )
    prefix = prefixes.pop()
    if prefix and not prefix.endswith("."):
        raise StateDictError(f"state dict key '{prefix}weight_ih_l0': unexpected name")
    short = {}
    for k in keys:
        if k in _HEAD_KEYS:
            short[k] = k
        elif k.startswith(prefix):
            short[k[len(prefix):]] = k
        else:
            short[k] = k
    return prefix, short


def from_state_dict(
    sd: dict,
    cell: str,
    method: str,
    *,
    input_kind: str = "vector",
    nonlinearity=None,
    formats=None,
    **kw,
) -> Model:
    """Quantize a PyTorch ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` state dict into a Model.

    Parameters
    ----------
    sd : dict[str, array_like]
        ``weight_ih_l{k}``, ``weight_hh_l{k}`` and optionally ``bias_ih_l{k}``, ``bias_hh_l{k}``
        for ``k = 0 .. layers-1`` (any number of layers, all sharing one optional prefix such as
        ``rnn.``), plus an optional ``head.weight`` / ``head.bias`` (``nn.Linear``). Values are
        numpy arrays, nested lists or torch tensors.
    cell : {'rnn', 'gru', 'lstm'}
        The cell; ``nn.RNN`` must use ``nonlinearity='tanh'``.
    method : {'binary', 'ternary', 'pow2-ternary', 'exponential'}
    input_kind : {'vector', 'token'}
        ``token``: the input is a token index, ``weight_ih_l0`` has one column per token.
    nonlinearity : golden.Nonlinearity, optional
    formats : dict[str, golden.Fixed], optional
        Overrides of :data:`golden.DEFAULT_FORMATS`.
    **kw
        Passed to :meth:`golden.Model.from_float` (``method_params``, ``scale_terms``,
        ``bias_mode``, ``bias_format``, ``stochastic``, ``rng``, ``meta``).

    Returns
    -------
    golden.Model

    Raises
    ------
    StateDictError
        A key is missing, unexpected or mis-shaped; the message names it.
    """
    if cell not in CELLS:
        raise StateDictError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
    if not isinstance(sd, dict) or not sd:
        raise StateDictError(f"expected a non-empty state dict, got {type(sd).__name__}")
    tensors = _Tensors(sd, cell)
    n_layers = tensors.layer_count()
    H, n_in = tensors.sizes()
    weights, missing_bias = tensors.layers(n_layers, H, n_in)
    head = tensors.head(H, missing_bias)
    meta = {"source": "state_dict", **dict(kw.pop("meta", None) or {})}
    model = Model.from_float(
        cell, weights, head, method=method, input_kind=input_kind, nonlinearity=nonlinearity,
        formats=formats, meta=meta, **kw,
    )
    if missing_bias:
        model = _zero_biases(model, missing_bias)
    return model


class _Tensors:
    """The tensors of a state dict by their short names (prefix removed), checked on access."""

    def __init__(self, sd: dict, cell: str):
        self.prefix, self.short = _strip_prefix([str(k) for k in sd])
        self.raw = {s: sd[k] for s, k in self.short.items()}
        self.cell, self.G = cell, CELLS[cell]

    def full(self, name: str) -> str:
        return name if name in _HEAD_KEYS else self.prefix + name

    def layer_count(self) -> int:
        """Layers present; bidirectional layers and unknown keys are errors."""
        layer_ids, unexpected = set(), []
        for s in self.raw:
            m = _RNN_KEY.match(s)
            if m and m.group(3):
                raise StateDictError(
                    f"state dict key '{self.short[s]}': bidirectional RNNs are not supported")
            if m:
                layer_ids.add(int(m.group(2)))
            elif s not in _HEAD_KEYS and not _NORM_KEY.match(s):
                unexpected.append(self.short[s])
        if unexpected:
            hint = " (LSTM proj_size is not supported)" if any(
                "weight_hr" in k for k in unexpected) else ""
            raise StateDictError(
                f"state dict has unexpected keys {sorted(unexpected)}{hint}; shiftrnn imports "
                "weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, head.weight, "
                "head.bias and input_norms.{k}.(weight|bias|running_mean|running_var)")
        return max(layer_ids) + 1

    def need(self, name: str) -> np.ndarray:
        if name not in self.raw:
            raise StateDictError(f"state dict key '{self.prefix}{name}': missing")
        return _to_numpy(self.raw[name], self.full(name))

    def get(self, name: str, shape: tuple | None, what: str) -> np.ndarray | None:
        if name not in self.raw:
            return None
        a = _to_numpy(self.raw[name], self.full(name))
        if shape is not None and a.shape != shape:
            raise StateDictError(f"state dict key '{self.full(name)}': shape {a.shape} but a "
                                 f"{self.cell} {what} needs {shape}")
        return a

    def sizes(self) -> tuple[int, int]:
        """Hidden and input size, from layer 0."""
        G, cell, pre = self.G, self.cell, self.prefix
        w_hh0 = self.need("weight_hh_l0")
        if w_hh0.ndim != 2 or w_hh0.shape[0] != G * w_hh0.shape[1]:
            raise StateDictError(
                f"state dict key '{pre}weight_hh_l0': shape {w_hh0.shape} but a {cell} with "
                f"hidden size H needs ({G}*H, H); is the cell right?")
        H = w_hh0.shape[1]
        w_ih0 = self.need("weight_ih_l0")
        if w_ih0.ndim != 2 or w_ih0.shape[0] != G * H:
            raise StateDictError(
                f"state dict key '{pre}weight_ih_l0': shape {w_ih0.shape} but a {cell} with "
                f"hidden size {H} needs ({G * H}, input_size)")
        return H, w_ih0.shape[1]

    def layers(self, n_layers: int, H: int, n_in: int) -> tuple[list[dict], list]:
        """Every layer's four tensors; absent biases are zeros, listed to be patched in."""
        weights, missing = [], []
        GH = self.G * H
        for k in range(n_layers):
            lw = {}
            for name, shape in (("weight_ih", (GH, n_in if k == 0 else H)),
                                ("weight_hh", (GH, H)), ("bias_ih", (GH,)), ("bias_hh", (GH,))):
                key = f"{name}_l{k}"
                if name.startswith("weight"):
                    self.need(key)
                a = self.get(key, shape, f"layer {k} with hidden size {H}")
                if a is None:  # missing bias: exact zeros, patched in after quantization
                    missing.append((k, name))
                    a = np.zeros(GH)
                lw[name] = a
            lw.update(self.input_norm(k, n_in if k == 0 else H))
            weights.append(lw)
        return weights, missing

    def input_norm(self, k: int, n: int) -> dict:
        """Layer ``k``'s saved input batch norm as ``input_scale``/``input_offset`` (the affine
        map of its running statistics, folded by ``Model.from_float``), or ``{}``."""
        present = [f for f in _NORM_FIELDS if f"input_norms.{k}.{f}" in self.raw]
        if not present:
            return {}
        w, b, mean, var = (self.get(f"input_norms.{k}.{f}", (n,), f"input norm of {n} columns")
                           for f in _NORM_FIELDS)
        if len(present) < len(_NORM_FIELDS):
            missing = sorted(set(_NORM_FIELDS) - set(present))
            raise StateDictError(f"state dict key 'input_norms.{k}.{missing[0]}': missing")
        scale = w / np.sqrt(var + INPUT_NORM_EPS)
        return {"input_scale": scale, "input_offset": b - scale * mean}

    def head(self, H: int, missing: list) -> dict | None:
        """The optional ``nn.Linear`` head (appends an absent bias to ``missing``)."""
        if "head.weight" not in self.raw:
            if "head.bias" in self.raw:
                raise StateDictError("state dict key 'head.weight': missing (head.bias is "
                                     "present)")
            return None
        hw = self.get("head.weight", None, "head")
        if hw.ndim != 2 or hw.shape[1] != H:
            raise StateDictError(f"state dict key 'head.weight': shape {hw.shape} but the head "
                                 f"needs (output_size, {H})")
        hb = self.get("head.bias", (hw.shape[0],), f"head with {hw.shape[0]} outputs")
        if hb is None:
            missing.append((None, "bias"))
        return {"weight": hw, "bias": np.zeros(hw.shape[0]) if hb is None else hb}


def _zero_biases(model: Model, missing: list[tuple[int | None, str]]) -> Model:
    """Replace the quantized zeros of absent biases by exact zeros."""
    layers = list(model.layers)
    head = model.head
    for k, name in missing:
        if k is None:
            head = replace(head, b=Bias(np.zeros_like(head.b.ints), head.b.frac))
            continue
        attr = "b_ih" if name == "bias_ih" else "b_hh"
        b = getattr(layers[k], attr)
        layers[k] = replace(layers[k], **{attr: Bias(np.zeros_like(b.ints), b.frac)})
    return replace(model, layers=layers, head=head)


def load_torch(path, *, trusted: bool = False) -> dict[str, np.ndarray]:
    """Read a ``torch.save``'d state dict or ``nn.Module`` into a dict of float64 arrays.

    Parameters
    ----------
    path : str or Path
        A file written by ``torch.save(module.state_dict(), path)`` or ``torch.save(module,
        path)``.
    trusted : bool
        Standard ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` / ``nn.Linear`` / ``nn.Sequential`` modules
        and plain state dicts load with ``weights_only=True`` (no code runs). A module of your
        own class needs ``trusted=True``, which unpickles arbitrary objects: only for files you
        made yourself.

    Raises
    ------
    ImportError
        PyTorch is not installed.
    FileNotFoundError, StateDictError
        The file is missing or holds neither a state dict nor a module.
    """
    path = Path(path)
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"reading {path} needs PyTorch, which is not installed: pip install torch "
            "(or the 'train' extra: pip install 'shiftrnn[train]'); or build the state dict "
            "of numpy arrays yourself and call golden.importer.from_state_dict"
        ) from None
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    nn = torch.nn
    safe = [nn.RNN, nn.GRU, nn.LSTM, nn.Linear, nn.Sequential, nn.Module]
    try:
        if trusted:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        else:
            with torch.serialization.safe_globals(safe):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (zip), EOFError, ...
        text = str(e)
        g = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if not trusted and g:
            raise StateDictError(
                f"{path}: holds objects other than tensors and standard torch.nn modules "
                f"({g.group(1)}); save module.state_dict() instead (or, for a file you made "
                "yourself, golden.importer.load_torch(path, trusted=True))"
            ) from None
        inner = re.search(r"WeightsUnpickler error: (.*)", text)
        msg = inner.group(1) if inner else text.strip().splitlines()[0] if text.strip() else ""
        raise StateDictError(
            f"{path}: not a readable PyTorch file ({type(e).__name__}: {msg})"
        ) from None
    if isinstance(obj, nn.Module):
        for name, sub in obj.named_modules():
            if isinstance(sub, nn.RNN) and sub.nonlinearity != "tanh":
                raise StateDictError(
                    f"{path}: nn.RNN {name or '(top)'} uses nonlinearity={sub.nonlinearity!r}; "
                    "shiftrnn's rnn cell is tanh"
                )
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise StateDictError(
            f"{path}: holds a {type(obj).__name__}, expected a state dict of tensors or an "
            "nn.Module"
        )
    return {str(k): v.detach().cpu().double().numpy() for k, v in obj.items()}
