"""The bit-accurate model: cells, formats, the integer and float paths, and the model file.

Cell equations follow PyTorch (``nn.RNN`` with tanh, ``nn.GRU`` gates r, z, n and ``nn.LSTM``
gates i, f, g, o, stacked in that order in each weight tensor). The integer path is the spec the
hardware implements bit for bit:

* a weighted sum is ``C * (codes @ x)``, exact, at fractional position ``x.frac - shift``;
* terms of one gate are aligned by exact left shifts to the largest fractional position and added;
* a gate pre-activation is narrowed to ``formats.pre``; sigmoid goes to ``formats.gate``
  (unsigned), tanh to ``formats.act``;
* GRU: ``n = tanh(W_in x + b_in + r * narrow_pre(W_hn h + b_hn))``, ``h' = n + z * (h - n)`` with
  ``n`` first narrowed to ``formats.h`` (equal to ``(1 - z) * n + z * h`` exactly);
* LSTM: ``c' = narrow_c(f * c + i * g)``, ``h' = narrow_h(o * tanh(c'))``;
* the optional dense head gives logits in ``formats.out``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import ShiftrnnError
from .files import atomic_write_bytes
from .fixed import Fixed, bits_signed, check_bound, narrow
from .nonlin import Nonlinearity
from .quantize import METHODS, SCALE_PARAMS, QuantMatrix, ScaleVector, csd_digits, encode
from .quantize import method_params as check_method_params

__all__ = [
    "BIAS_MODES",
    "CELLS",
    "DEFAULT_FORMATS",
    "SCHEMA_VERSION",
    "Bias",
    "Head",
    "Layer",
    "Model",
    "ModelFileError",
    "RunResult",
    "fold_input_norm",
    "load",
    "matvec_bound",
    "parse_format",
]

SCHEMA_VERSION = 1
CELLS = {"rnn": 1, "gru": 3, "lstm": 4}
GATES = {"rnn": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}
INPUT_KINDS = ("token", "vector")
#: How biases are stored: quantized like their matrix, or in a fixed-point format.
BIAS_MODES = ("quantized", "fixed")
FORMAT_NAMES = ("x", "h", "c", "pre", "gate", "act", "out")
DEFAULT_FORMATS = {
    "x": Fixed(8, 5),
    "h": Fixed(8, 6),
    "c": Fixed(12, 8),
    "pre": Fixed(12, 8),
    "gate": Fixed(8, 7, signed=False),
    "act": Fixed(8, 6),
    "out": Fixed(16, 8),
}

#: Fixed-point bias format of ``bias_mode='fixed'``.
DEFAULT_BIAS_FORMAT = Fixed(16, 10)
#: Exact integer sums run through float64 BLAS while the proved bound stays below this.
FLOAT_EXACT = 1 << 53
#: ... and through float32 BLAS while it stays below this.
FLOAT32_EXACT = 1 << 24


def parse_format(name: str, text) -> Fixed:
    """An activation format from its name and text, e.g. ``("h", "S8.6")``.

    Formats are written as :class:`Fixed` prints them (``S8.6``, ``U8.7``); without the ``S`` or
    ``U`` prefix a format has the signedness of its default (``gate`` is unsigned).

    Raises
    ------
    ValueError
        An unknown name or a malformed format; the message names the default.
    """
    if name not in FORMAT_NAMES:
        raise ValueError(f"unknown format {name!r}; formats are {', '.join(FORMAT_NAMES)}")
    default = DEFAULT_FORMATS[name]
    if not isinstance(text, str):
        raise ValueError(f"format {name}: expected a string such as \"{default}\", got {text!r}")
    try:
        return Fixed.parse(text, signed=default.signed)
    except ValueError as e:
        raise ValueError(f"format {name}: {e}; the default is {name} = \"{default}\"") from None


class ModelFileError(ShiftrnnError, ValueError):
    """A model file is missing, damaged, truncated or inconsistent; the message names the field."""


@dataclass(frozen=True)
class Bias:
    """A bias vector as integers at fractional position ``frac`` (exact, no rounding left)."""

    ints: np.ndarray
    frac: int

    @classmethod
    def from_quant(cls, q: QuantMatrix) -> Bias:
        return cls(q.codes.astype(np.int64) * q.multiplier, -q.shift)

    @property
    def values(self) -> np.ndarray:
        return self.ints * 2.0**-self.frac


@dataclass(frozen=True)
class Layer:
    """One recurrent layer: PyTorch's ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.

    ``x_scale`` (optional) multiplies column ``j`` of the layer's input by ``x_scale.ints[j] *
    2**-x_scale.frac`` before ``W_ih`` (a batch normalisation of the input, folded; each
    constant has at most ``scale_terms`` CSD terms: a shift-and-add, and for token input one
    constant per token); the matrix the input meets is then :meth:`input_matrix`.
    """

    w_ih: QuantMatrix
    w_hh: QuantMatrix
    b_ih: Bias
    b_hh: Bias
    x_scale: ScaleVector | None = None

    def input_matrix(self) -> QuantMatrix:
        """``W_ih`` with the column scale folded in: codes ``c[r, j] * ints[j]``, exponent
        ``exp - frac``. Its integer weighted sums are those of the scaled input, exactly."""
        q, s = self.w_ih, self.x_scale
        if s is None:
            return q
        return QuantMatrix(q.codes * s.ints[None, :], q.exp - s.frac, q.scale, q.scale_csd,
                           q.row_scale)


@dataclass(frozen=True)
class Head:
    """Dense output layer ``logits = w @ h + b``."""

    w: QuantMatrix
    b: Bias


@dataclass
class RunResult:
    """Per-timestep outputs, shaped (batch, time, ...).

    ``hidden_int``/``logits_int`` hold the integers (``None`` on the float path); ``hidden`` and
    ``logits`` hold real values. ``hidden`` lists every layer; ``h`` is the last one.
    """

    hidden: list[np.ndarray]
    logits: np.ndarray | None
    hidden_int: list[np.ndarray] | None = None
    logits_int: np.ndarray | None = None
    cell_int: list[np.ndarray] | None = None
    ops: dict | None = None

    @property
    def h(self) -> np.ndarray:
        return self.hidden[-1]

    @property
    def output_int(self) -> np.ndarray:
        """What the hardware streams out: logits when there is a head, else the last hidden."""
        return self.logits_int if self.logits_int is not None else self.hidden_int[-1]


def matvec_bound(q: QuantMatrix, fmt: Fixed) -> int:
    """Largest ``|C * (codes @ x)|`` over every row and every ``x`` in ``fmt``: exact bound."""
    xmax = max(-fmt.min_int, fmt.max_int)
    if not q.codes.size:
        return 0
    return int((np.abs(q.codes).sum(axis=1) * np.abs(q.multiplier)).max()) * xmax


class _MatVec:
    """``C * (x @ codes.T)`` exactly, at fractional position ``fin.frac - q.shift``.

    The code matrix (times ``C``) is converted once per run, not per timestep. Integer sums run
    through BLAS in float32 while the declared bound is below 2**24 and in float64 below 2**53:
    every product and every partial sum (in any summation order) is then an integer of magnitude
    at most the bound, which the float format holds exactly. Beyond that, int64.
    """

    def __init__(self, q: QuantMatrix, fin: Fixed, bound: int):
        self.bound, self.frac = bound, fin.frac - q.shift
        if bound < FLOAT32_EXACT:
            self.dtype = np.float32
        elif bound < FLOAT_EXACT:
            self.dtype = np.float64
        else:  # pragma: no cover - only for extreme formats
            self.dtype = np.int64
        m = q.codes.T.astype(np.int64) * q.multiplier
        self.m = np.ascontiguousarray(m.astype(self.dtype))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        acc = x.astype(self.dtype) @ self.m
        check_bound(acc, self.bound, "weighted sum")  # on the exact floats: cheaper
        return acc.astype(np.int64)


def _shl(v, s: int) -> np.ndarray:
    """Exact left shift of integers by ``s >= 0`` (a new array)."""
    v = np.asarray(v, dtype=np.int64)
    return v << s if s else v.copy()


def _align(*terms: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    """Sum integer terms given at different fractional positions, exactly (left shifts only)."""
    frac = max(f for _, f in terms)
    total = 0
    for v, f in terms:
        total = total + (np.asarray(v, dtype=np.int64) << (frac - f))
    return total, frac


@dataclass
class Model:
    """A quantized recurrent network with its integer spec.

    Build one with :meth:`random`, :func:`golden.importer.from_state_dict`, or :func:`load`.
    """

    cell: str
    input_kind: str
    input_size: int
    hidden_size: int
    layers: list[Layer]
    head: Head | None = None
    formats: dict[str, Fixed] = field(default_factory=lambda: dict(DEFAULT_FORMATS))
    nonlinearity: Nonlinearity = field(default_factory=Nonlinearity)
    method: str = "ternary"
    method_params: dict = field(default_factory=dict)
    scale_terms: int = 2
    bias_mode: str = "quantized"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    # ---------------------------------------------------------------- structure
    @property
    def gates(self) -> int:
        return CELLS[self.cell]

    def scale_blocks(self) -> list[tuple[str, QuantMatrix, int]]:
        """Every matrix, named, with the blocks of rows that share one scale constant in
        hardware: a cell matrix's gates, the head's one block."""
        mats = [(f"layer{i}.{k}", q, self.gates) for i, layer in enumerate(self.layers)
                for k, q in (("w_ih", layer.w_ih), ("w_hh", layer.w_hh))]
        return mats + ([("head.w", self.head.w, 1)] if self.head is not None else [])

    def scale_granularity(self) -> str:
        """How the matrices' scales are shared: ``'matrix'`` (one constant per matrix), ``'gate'``
        (one per gate's block of rows, not all equal) or ``'row'`` (per-row scales that differ
        within a gate, or within the head; golden runs them, the generator refuses them)."""
        kinds = {q.scale_kind(blocks) for _, q, blocks in self.scale_blocks()}
        return next(k for k in ("row", "gate", "matrix") if k in kinds)

    @property
    def output_size(self) -> int | None:
        return None if self.head is None else self.head.w.codes.shape[0]

    @property
    def token_bits(self) -> int:
        """Bits of a token index on the wire: ``ceil(log2(input_size))``, at least 1.

        Every index in ``[0, 2**token_bits)`` can be sent. An index in
        ``[input_size, 2**token_bits)`` selects an all-zero ``W_ih`` column: the step still runs
        (biases and the recurrence), as in the hardware (docs/hardware.md).
        """
        return max(1, (self.input_size - 1).bit_length())

    def check_tokens(self, tokens: np.ndarray) -> None:
        """Raise ValueError unless every token index fits the ``token_bits``-bit field."""
        n = 1 << self.token_bits
        if tokens.size and (tokens.min() < 0 or tokens.max() >= n):
            raise ValueError(f"token indices must lie in [0, {n}) (the {self.token_bits}-bit "
                             f"token field; indices >= input_size {self.input_size} select a "
                             f"zero input column); got [{tokens.min()}, {tokens.max()}]")

    def validate(self, where: str = "model") -> None:
        """Check every field; raise :class:`ModelFileError` naming the first bad one."""

        def bad(fieldname, msg):
            raise ModelFileError(f"{where}: field '{fieldname}': {msg}")

        if self.cell not in CELLS:
            bad("cell", f"must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.input_kind not in INPUT_KINDS:
            bad("input_kind", f"must be one of {', '.join(INPUT_KINDS)}, got {self.input_kind!r}")
        if self.method not in METHODS:
            bad("method", f"must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.bias_mode not in BIAS_MODES:
            bad("bias_mode", f"must be 'quantized' or 'fixed', got {self.bias_mode!r}")
        for name in ("input_size", "hidden_size"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                bad(name, f"must be a positive integer, got {v!r}")
        if not self.layers:
            bad("layers", "need at least one layer")
        missing = [n for n in FORMAT_NAMES if n not in self.formats]
        if missing:
            bad("formats", f"missing {missing}; need {list(FORMAT_NAMES)}")
        f = self.formats
        for k in ("x", "h", "c", "pre", "out"):
            if not f[k].signed:
                bad(f"formats.{k}", f"must be signed (values can be negative), got {f[k]}")
        if f["gate"].signed or f["gate"].frac < 0 or f["gate"].max_int < f["gate"].one:
            bad("formats.gate", f"must be unsigned and hold 1.0, got {f['gate']}")
        if f["act"].frac < 0 or f["act"].max_int < f["act"].one or not f["act"].signed:
            bad("formats.act", f"must be signed and hold 1.0, got {f['act']}")
        if self.nonlinearity.int_kind in ("plan", "lut"):
            for k in ("pre", "c"):
                if f[k].frac < 0:
                    bad(f"formats.{k}", f"{self.nonlinearity.int_kind} nonlinearity needs "
                        f"frac >= 0, got {f[k]}")
        try:
            check_method_params(self.method, (1, 1), **self.method_params)
        except (ValueError, TypeError) as e:
            bad("method_params", str(e))
        G, H = self.gates * self.hidden_size, self.hidden_size
        for i, layer in enumerate(self.layers):
            n_in = self.input_size if i == 0 else H
            for nm, arr, shape in (
                ("w_ih", layer.w_ih.codes, (G, n_in)),
                ("w_hh", layer.w_hh.codes, (G, H)),
                ("b_ih", layer.b_ih.ints, (G,)),
                ("b_hh", layer.b_hh.ints, (G,)),
            ):
                if tuple(arr.shape) != shape:
                    bad(f"layer{i}.{nm}", f"shape {tuple(arr.shape)} but the header says {shape}")
            for nm in ("w_ih", "w_hh"):
                self._check_codes(getattr(layer, nm), f"layer{i}.{nm}", bad)
            self._check_scales(layer.x_scale, n_in, f"layer{i}.x_scale", "input column", bad)
        if self.head is not None:
            if self.head.w.codes.ndim != 2 or self.head.w.codes.shape[1] != H:
                bad("head.w", f"shape {self.head.w.codes.shape} must be (output, {H})")
            if self.head.b.ints.shape != (self.head.w.codes.shape[0],):
                bad("head.b", f"shape {self.head.b.ints.shape} must match head.w rows")
            self._check_codes(self.head.w, "head.w", bad)

    def _check_scales(self, s: ScaleVector | None, n: int, name: str, what: str, bad) -> None:
        if s is None:
            return
        if tuple(s.ints.shape) != (n,):
            bad(name, f"shape {tuple(s.ints.shape)} must be ({n},), one per {what}")
        if s.max_terms > self.scale_terms:
            bad(name, f"a {what} scale has {s.max_terms} signed-digit terms; scale_terms "
                f"allows {self.scale_terms}")

    def _check_codes(self, q: QuantMatrix, name: str, bad) -> None:
        self._check_scales(q.row_scale, q.codes.shape[0], f"{name}.row_scale", "row", bad)
        c = q.codes
        if c.size == 0:
            return
        m = self.method
        p = self.method_params
        if m == "binary":
            ok = np.isin(c, (-1, 1)).all()
            allowed = "{-1, +1}"
        elif m == "ternary":
            ok = np.isin(c, (-1, 0, 1)).all()
            allowed = "{-1, 0, +1}"
        elif m == "pow2-ternary":
            lim = 2 ** (p.get("f", 1) + p.get("i", 0)) - 1
            ok = np.abs(c).max() <= lim
            allowed = f"integers in [-{lim}, {lim}]"
        else:
            span = p.get("kmax", 0) - p.get("kmin", -8)
            a = np.abs(c)
            ok = bool(((a & (a - 1)) == 0).all() and (a >= 1).all() and a.max() <= 1 << span)
            allowed = f"±2^k, 0 <= k <= {span}"
        if not ok:
            bad(name, f"codes must be {allowed} for method {m}")

    # --------------------------------------------------------------- integers
    def layer_input_format(self, i: int) -> Fixed:
        """Format of layer ``i``'s input: ``formats.x`` (vector), one-hot bits (token), or the
        previous layer's hidden state ``formats.h`` for ``i > 0``."""
        if i > 0:
            return self.formats["h"]
        return self.formats["x"] if self.input_kind == "vector" else Fixed(2, 0)

    def widths(self) -> dict:
        """Declared widths (bits) and bounds of every wide intermediate, derived from the codes."""
        out = {"layers": []}
        for i, layer in enumerate(self.layers):
            fin = self.formats["h"] if i > 0 else self.layer_input_format(0)
            q = layer.input_matrix()
            if i == 0 and self.input_kind == "token":
                b_ih = int((np.abs(q.codes) * np.abs(np.reshape(q.multiplier, (-1, 1))))
                           .max(initial=0))
            else:
                b_ih = matvec_bound(q, fin)
            b_hh = matvec_bound(layer.w_hh, self.formats["h"])
            out["layers"].append(
                {
                    "bound_ih": b_ih,
                    "bound_hh": b_hh,
                    "acc_ih": bits_signed(-b_ih, b_ih),
                    "acc_hh": bits_signed(-b_hh, b_hh),
                }
            )
        if self.head is not None:
            b = matvec_bound(self.head.w, self.formats["h"])
            out["head"] = {"bound": b, "acc": bits_signed(-b, b)}
        return out

    def quantize_inputs(self, inputs) -> np.ndarray:
        """Float vectors to ``formats.x`` integers (round half up, saturate); tokens checked."""
        inputs = np.asarray(inputs)
        if self.input_kind == "token":
            if inputs.ndim != 2 or not np.issubdtype(inputs.dtype, np.integer):
                raise ValueError(f"token input must be integers shaped (batch, time); got "
                                 f"{inputs.dtype} {inputs.shape}")
            self.check_tokens(inputs)
            return inputs.astype(np.int64)
        if inputs.ndim != 3 or inputs.shape[2] != self.input_size:
            raise ValueError(f"vector input must be shaped (batch, time, {self.input_size}); "
                             f"got {inputs.shape}")
        if np.issubdtype(inputs.dtype, np.integer):
            raise ValueError("vector input must be float (use run_int for Fixed integers)")
        return self.formats["x"].from_float(inputs)

    def run(self, inputs, mode: str = "int") -> RunResult:
        """Run a batch of sequences from zero state.

        Parameters
        ----------
        inputs : ndarray
            Token indices (batch, time) for token models; real vectors (batch, time, input) for
            vector models (the integer path quantizes them to ``formats.x``).
        mode : {'int', 'float'}
            The bit-accurate integer path or the float reference path.
        """
        if mode == "int":
            return self.run_int(self.quantize_inputs(inputs))
        if mode == "float":
            return self.run_float(inputs)
        raise ValueError(f"mode must be 'int' or 'float', got {mode!r}")

    def run_int(self, x: np.ndarray) -> RunResult:
        """The integer path on token indices (batch, time) or ``formats.x`` integers.

        Vectorised over the batch. Constant terms (the biases and the input projection of every
        timestep) are aligned and summed before the time loop; integer addition is exact and
        associative, so every sum equals the per-step ``_align`` of the equations in the module
        docstring bit for bit.
        """
        x = np.asarray(x, dtype=np.int64)
        f = self.formats
        widths = self.widths()
        B, T = x.shape[:2]
        H = self.hidden_size
        hiddens, cells = [], []
        seq = x
        for li, layer in enumerate(self.layers):
            w = widths["layers"][li]
            q = layer.input_matrix()
            if li == 0 and self.input_kind == "token":
                # A column select, no adds: row v of the table is W_ih's column for token v;
                # the indices past input_size that the token field can carry select zeros.
                self.check_tokens(seq)
                xw = np.zeros((1 << self.token_bits, q.codes.shape[0]), np.int64)
                xw[:self.input_size] = q.codes.T.astype(np.int64) * q.multiplier
                tokens, xw_frac = seq, -q.shift
            else:
                mv = _MatVec(q, self.layer_input_format(li), w["bound_ih"])
                xw = mv(seq.reshape(B * T, seq.shape[-1])).reshape(B, T, q.codes.shape[0])
                tokens = None
                xw_frac = mv.frac
            seq, cs = self._run_layer(layer, xw, xw_frac, tokens, w["bound_hh"], T, B)
            hiddens.append(seq)
            cells.append(cs)
        logits = None
        if self.head is not None:
            mv = _MatVec(self.head.w, f["h"], widths["head"]["bound"])
            lw = mv(seq.reshape(B * T, H))
            logits = narrow(*_align((lw, mv.frac), (self.head.b.ints, self.head.b.frac)),
                            f["out"]).reshape(B, T, self.output_size)
        return RunResult(
            hidden=[f["h"].to_float(v) for v in hiddens],
            logits=None if logits is None else f["out"].to_float(logits),
            hidden_int=hiddens,
            logits_int=logits,
            cell_int=cells if self.cell == "lstm" else None,
            ops=self.op_counts(),
        )

    def _run_layer(self, layer: Layer, xw: np.ndarray, xw_frac: int, tokens, bound_hh: int,
                   T: int, B: int):
        """One layer over time; returns the hidden states (batch, time, H) and, for LSTM, the
        cell states.

        ``xw`` at ``xw_frac`` is either ``x W_ih`` for every step (batch, time, gates*H), or,
        with ``tokens`` (batch, time), a table (vocabulary, gates*H) that the tokens select rows
        of. Either way the biases are folded in once, before the time loop.
        """
        f, nl, H = self.formats, self.nonlinearity, self.hidden_size
        fp, fg, fa, fh, fc = f["pre"], f["gate"], f["act"], f["h"], f["c"]
        gf = fg.frac
        mv = _MatVec(layer.w_hh, fh, bound_hh)
        hf = mv.frac
        bi, bh = layer.b_ih, layer.b_hh
        h = np.zeros((B, H), np.int64)
        hs = np.empty((B, T, H), np.int64)
        cs = None
        # The gates whose four terms all add: x W_ih + b_ih + h W_hh + b_hh at frac F.
        full = slice(0, 2 * H) if self.cell == "gru" else slice(None)
        F = max(xw_frac, bi.frac, hf, bh.frac)
        x_full = (_shl(xw[..., full], F - xw_frac) + _shl(bi.ints[full], F - bi.frac)
                  + _shl(bh.ints[full], F - bh.frac))

        # tanh outputs lie in [-1, 1] of formats.act; narrowing them to formats.h is the identity
        # when both share frac and h holds [-1, 1], and is then skipped.
        act_is_h = fa.frac == fh.frac and fh.min_int <= -fa.one and fh.max_int >= fa.one

        def tanh_h(v: np.ndarray, fin: Fixed) -> np.ndarray:
            a = nl.int_fn("tanh", v, fin, fa)
            return a if act_is_h else narrow(a, fa.frac, fh)

        def pre_full(hw: np.ndarray, t: int) -> np.ndarray:
            a = hw[:, full]  # a view into the fresh hw: updated in place
            if F > hf:
                a <<= F - hf
            a += x_full[:, t] if tokens is None else x_full[tokens[:, t]]
            return narrow(a, F, fp)

        if self.cell == "gru":
            self._gru_steps(layer, mv, pre_full, tanh_h, xw, xw_frac, tokens, hs)
        elif self.cell == "lstm":
            cs = np.empty((B, T, H), np.int64)
            c = np.zeros((B, H), np.int64)
            for t in range(T):
                pre = pre_full(mv(h), t)
                s = nl.int_fn("sigmoid", pre, fp, fg)  # i, f, (unused), o
                g = nl.int_fn("tanh", pre[:, 2 * H:3 * H], fp, fa)
                c = narrow(*_align((s[:, H:2 * H] * c, gf + fc.frac), (s[:, :H] * g, gf + fa.frac)),
                           fc)
                tc = nl.int_fn("tanh", c, fc, fa)
                tc *= s[:, 3 * H:]
                h = narrow(tc, gf + fa.frac, fh)
                hs[:, t], cs[:, t] = h, c
        else:
            for t in range(T):
                h = tanh_h(pre_full(mv(h), t), fp)
                hs[:, t] = h
        return hs, cs

    def _gru_steps(self, layer: Layer, mv: _MatVec, pre_full, tanh_h, xw: np.ndarray,
                   xw_frac: int, tokens, hs: np.ndarray) -> None:
        """The GRU's time loop of :meth:`_run_layer` (fills ``hs``): ``n`` from ``x W_in + b_in
        + r * (h W_hn + b_hn)``, then ``h' = n + z * (h - n)``."""
        f, H = self.formats, self.hidden_size
        fp, fh, gf = f["pre"], f["h"], f["gate"].frac
        hf, bi, bh = mv.frac, layer.b_ih, layer.b_hh
        h = np.zeros((hs.shape[0], H), np.int64)
        ns = slice(2 * H, 3 * H)
        Fh = max(hf, bh.frac)  # W_hn h + b_hn
        b_hn = _shl(bh.ints[ns], Fh - bh.frac)
        Fn = max(xw_frac, bi.frac, gf + fp.frac)  # W_in x + b_in + r * (...)
        x_n = _shl(xw[..., ns], Fn - xw_frac) + _shl(bi.ints[ns], Fn - bi.frac)
        for t in range(hs.shape[1]):
            hw = mv(h)
            rz = self.nonlinearity.int_fn("sigmoid", pre_full(hw, t), fp, f["gate"])
            hn = hw[:, ns]
            if Fh > hf:
                hn <<= Fh - hf
            hn += b_hn
            rhn = narrow(hn, Fh, fp)
            rhn *= rz[:, :H]
            if Fn > gf + fp.frac:
                rhn <<= Fn - gf - fp.frac
            rhn += x_n[:, t] if tokens is None else x_n[tokens[:, t]]
            n = tanh_h(narrow(rhn, Fn, fp), fp)
            # h' = n + z * (h - n) at frac gf + h.frac, equal to (1 - z) * n + z * h
            d = h - n
            d *= rz[:, H:]
            n <<= gf
            d += n
            h = narrow(d, gf + fh.frac, fh)
            hs[:, t] = h

    # ------------------------------------------------------------------ float
    def run_float(self, inputs) -> RunResult:
        """The float reference path: effective weights, true or float-twin nonlinearities."""
        nl = self.nonlinearity
        sig = lambda v: nl.float_fn("sigmoid", v)  # noqa: E731
        tanh = lambda v: nl.float_fn("tanh", v)  # noqa: E731
        inputs = np.asarray(inputs)
        H = self.hidden_size
        if self.input_kind == "token":
            seq = np.eye(1 << self.token_bits, self.input_size)[self.quantize_inputs(inputs)]
        else:
            seq = inputs.astype(np.float64)
        B, T = seq.shape[:2]
        hiddens = []
        for layer in self.layers:
            wi, wh = layer.input_matrix().values, layer.w_hh.values
            bi, bh = layer.b_ih.values, layer.b_hh.values
            xw_all = seq @ wi.T + bi
            h = np.zeros((B, H))
            c = np.zeros((B, H))
            hs = np.empty((B, T, H))
            for t in range(T):
                xw, hw = xw_all[:, t], h @ wh.T + bh
                if self.cell == "rnn":
                    h = tanh(xw + hw)
                elif self.cell == "gru":
                    r = sig(xw[:, :H] + hw[:, :H])
                    z = sig(xw[:, H:2 * H] + hw[:, H:2 * H])
                    n = tanh(xw[:, 2 * H:] + r * hw[:, 2 * H:])
                    h = (1 - z) * n + z * h
                else:
                    g = xw + hw
                    i, fg = sig(g[:, :H]), sig(g[:, H:2 * H])
                    gg, o = tanh(g[:, 2 * H:3 * H]), sig(g[:, 3 * H:])
                    c = fg * c + i * gg
                    h = o * tanh(c)
                hs[:, t] = h
            hiddens.append(hs)
            seq = hs
        logits = None
        if self.head is not None:
            logits = seq @ self.head.w.values.T + self.head.b.values
        return RunResult(hidden=hiddens, logits=logits)

    # -------------------------------------------------------------------- ops
    def op_counts(self) -> dict:
        """Operations per timestep of one sequence (static: zero weights are skipped).

        Keys: ``add`` {width: n} (adds/subtracts by operand width), ``shift``, ``gate_mul``
        {"wa x wb": n}, ``nonlin`` {sigmoid, tanh}, ``weights``, ``mac_width`` {x, acc}.
        Weight memories are a fact of the generated hardware, not of the model: their widths
        and reads are in the design's manifest (``golden.manifest.Memory``).
        """
        f, H, widths = self.formats, self.hidden_size, self.widths()
        add: dict[str, int] = {}
        gmul: dict[str, int] = {}
        counts = {"shift": 0, "weights": 0}

        def inc(d, k, n):
            if n:
                d[str(k)] = d.get(str(k), 0) + int(n)

        def matrix(q: QuantMatrix, width: int, column_select: bool):
            rows, cols = q.codes.shape
            counts["weights"] += rows * cols
            scale_adds = sum(max(0, len(csd_digits(m)) - 1)
                             for m in np.broadcast_to(q.multiplier, (rows,)).tolist())
            if column_select:
                return
            digits, shifted = _digit_sums(q.codes)
            inc(add, width, digits + scale_adds)
            counts["shift"] += shifted

        for li, layer in enumerate(self.layers):
            w = widths["layers"][li]
            matrix(layer.input_matrix(), w["acc_ih"], li == 0 and self.input_kind == "token")
            matrix(layer.w_hh, w["acc_hh"], False)
            wide = max(w["acc_ih"], w["acc_hh"]) + 2
            inc(add, wide, 2 * self.gates * H)  # two biases per row
            gb, pb, hb = f["gate"].bits, f["pre"].bits, f["h"].bits
            if self.cell == "gru":
                inc(gmul, f"{gb}x{pb}", H)
                inc(gmul, f"{gb}x{hb + 1}", H)
                inc(add, hb + 1, 2 * H)
            elif self.cell == "lstm":
                inc(gmul, f"{gb}x{f['c'].bits}", H)
                inc(gmul, f"{gb}x{f['act'].bits}", 2 * H)
                inc(add, f["c"].bits + gb, H)
        nonlin = {
            "rnn": {"sigmoid": 0, "tanh": H},
            "gru": {"sigmoid": 2 * H, "tanh": H},
            "lstm": {"sigmoid": 3 * H, "tanh": 2 * H},
        }[self.cell]
        nonlin = {k: v * len(self.layers) for k, v in nonlin.items()}
        if self.head is not None:
            matrix(self.head.w, widths["head"]["acc"], False)
            inc(add, widths["head"]["acc"], self.head.w.codes.shape[0])
        acc = max(v for lw in widths["layers"] for k, v in lw.items() if k.startswith("acc"))
        return {
            "add": add,
            "shift": counts["shift"],
            "gate_mul": gmul,
            "nonlin": nonlin,
            "weights": counts["weights"],
            "mac_width": {"x": f["x"].bits, "acc": acc},
        }

    # -------------------------------------------------------------- file I/O
    def header(self) -> dict:
        def qinfo(q: QuantMatrix):
            info = {"exp": q.exp, "scale": q.scale, "scale_csd": [list(t) for t in q.scale_csd]}
            if q.row_scale is not None:  # absent from older files: they hash as before
                info["row_scale_frac"] = q.row_scale.frac
            return info

        layers = []
        for layer in self.layers:
            layers.append(
                {
                    "w_ih": qinfo(layer.w_ih),
                    "w_hh": qinfo(layer.w_hh),
                    "b_ih_frac": layer.b_ih.frac,
                    "b_hh_frac": layer.b_hh.frac,
                }
            )
            if layer.x_scale is not None:  # absent from older files: they hash as before
                layers[-1]["x_scale_frac"] = layer.x_scale.frac
        head = None
        if self.head is not None:
            head = {"w": qinfo(self.head.w), "b_frac": self.head.b.frac,
                    "output_size": self.output_size}
        return {
            "schema_version": SCHEMA_VERSION,
            "format": "shiftrnn-model",
            "cell": self.cell,
            "input_kind": self.input_kind,
            "input_size": int(self.input_size),
            "hidden_size": int(self.hidden_size),
            "num_layers": len(self.layers),
            "method": self.method,
            "method_params": self.method_params,
            "scale_terms": self.scale_terms,
            "bias_mode": self.bias_mode,
            "formats": {k: v.to_dict() for k, v in self.formats.items()},
            "nonlinearity": self.nonlinearity.to_dict(),
            "layers": layers,
            "head": head,
            "meta": self.meta,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}

        def rows(key, q: QuantMatrix):
            if q.row_scale is not None:
                out[f"{key}.row_scale"] = q.row_scale.ints

        for i, layer in enumerate(self.layers):
            out[f"layer{i}.w_ih"] = layer.w_ih.codes
            out[f"layer{i}.w_hh"] = layer.w_hh.codes
            rows(f"layer{i}.w_ih", layer.w_ih)
            rows(f"layer{i}.w_hh", layer.w_hh)
            out[f"layer{i}.b_ih"] = layer.b_ih.ints
            out[f"layer{i}.b_hh"] = layer.b_hh.ints
            if layer.x_scale is not None:
                out[f"layer{i}.x_scale"] = layer.x_scale.ints
        if self.head is not None:
            out["head.w"] = self.head.w.codes
            out["head.b"] = self.head.b.ints
            rows("head.w", self.head.w)
        return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}

    def hash(self) -> str:
        """Content hash (sha256) of the header and every array."""
        h = hashlib.sha256(json.dumps(self.header(), sort_keys=True).encode())
        for k, v in sorted(self.arrays().items()):
            h.update(k.encode())
            h.update(np.ascontiguousarray(v).tobytes())
        return h.hexdigest()

    def save(self, path, *, force: bool = False) -> Path:
        """Write ``.npz`` + JSON header atomically; refuse to overwrite unless ``force``."""
        path = Path(path)
        if path.exists() and not force:
            raise FileExistsError(f"{path} exists; pass force=True (--force) to overwrite")
        buf = io.BytesIO()
        header = np.frombuffer(json.dumps(self.header(), sort_keys=True).encode(), dtype=np.uint8)
        np.savez_compressed(buf, header=header, **self.arrays())
        atomic_write_bytes(path, buf.getvalue())
        return path

    def with_formats(self, **formats: Fixed) -> Model:
        return replace(self, formats={**self.formats, **formats})

    # ------------------------------------------------------------ construction
    @classmethod
    def from_float(
        cls,
        cell: str,
        weights: list[dict[str, np.ndarray]],
        head: dict[str, np.ndarray] | None = None,
        *,
        method: str = "ternary",
        input_kind: str = "vector",
        method_params: dict | None = None,
        scale_terms: int = 2,
        bias_mode: str = "quantized",
        bias_format: Fixed = DEFAULT_BIAS_FORMAT,
        formats: dict[str, Fixed] | None = None,
        nonlinearity: Nonlinearity | None = None,
        stochastic: bool = False,
        rng: np.random.Generator | None = None,
        meta: dict | None = None,
        tensor_params: dict[str, dict] | None = None,
    ) -> Model:
        """Quantize real weights (PyTorch layout, one dict per layer) into a Model.

        Each layer dict holds ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` and, for a
        normalised input, ``input_scale`` and ``input_offset`` (per input column: the layer sees
        ``input_scale * x + input_offset``; folded by :func:`fold_input_norm`). ``head`` holds
        ``weight`` and ``bias``. Biases use their matrix's method and scale (``bias_mode=
        'quantized'``) or ``bias_format`` (``'fixed'``). ``tensor_params`` overrides the method
        parameters of single tensors, by PyTorch name (``weight_ih_l0``, ``bias_hh_l0``,
        ``head.weight``, ...): per-matrix scales (``H``, ``W0``, ``scale``) or per-row scales
        (``row_scales``) chosen by a trainer.
        """
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        mp = dict(method_params or {})
        scale_key = SCALE_PARAMS[method] if method in SCALE_PARAMS else None
        check_method_params(method, (1, 1), **{k: v for k, v in mp.items() if k != scale_key})
        enc = _Encoder(method, mp, stochastic, rng, scale_terms, tensor_params, bias_mode,
                       bias_format)
        layers = []
        for k, lw in enumerate(weights):
            wi = enc.matrix(lw["weight_ih"], f"weight_ih_l{k}")
            wh = enc.matrix(lw["weight_hh"], f"weight_hh_l{k}")
            bi = enc.bias(lw["bias_ih"], f"bias_ih_l{k}", wi)
            xs = None
            if lw.get("input_scale") is not None:
                xs, bi = fold_input_norm(wi, bi, lw["input_scale"], lw["input_offset"],
                                         scale_terms)
            layers.append(Layer(wi, wh, bi, enc.bias(lw["bias_hh"], f"bias_hh_l{k}", wh), xs))
        hd = None
        if head is not None:
            hw = enc.matrix(head["weight"], "head.weight")
            hd = Head(hw, enc.bias(head["bias"], "head.bias", hw))
        w0 = np.asarray(weights[0]["weight_ih"])
        return cls(
            cell=cell,
            input_kind=input_kind,
            input_size=int(w0.shape[1]),
            hidden_size=int(np.asarray(weights[0]["weight_hh"]).shape[1]),
            layers=layers,
            head=hd,
            formats={**DEFAULT_FORMATS, **(formats or {})},
            nonlinearity=nonlinearity or Nonlinearity(),
            method=method,
            method_params={k: v for k, v in mp.items() if k != scale_key},
            scale_terms=scale_terms,
            bias_mode=bias_mode,
            meta=dict(meta or {}),
        )

    @classmethod
    def random(
        cls,
        cell: str,
        method: str,
        input_size: int,
        hidden_size: int,
        *,
        output_size: int | None = None,
        layers: int = 1,
        input_kind: str = "token",
        seed: int = 0,
        **kwargs,
    ) -> Model:
        """A random quantized model (weights uniform in the Glorot bound), for tests and demos."""
        rng = np.random.default_rng(seed)
        G = CELLS.get(cell, 1) * hidden_size

        def u(*shape):
            b = np.sqrt(6.0 / sum(shape)) if len(shape) == 2 else 0.5
            return rng.uniform(-b, b, size=shape)

        ws = []
        for i in range(layers):
            n_in = input_size if i == 0 else hidden_size
            ws.append({"weight_ih": u(G, n_in), "weight_hh": u(G, hidden_size),
                       "bias_ih": u(G), "bias_hh": u(G)})
        head = None
        if output_size:
            head = {"weight": u(output_size, hidden_size), "bias": u(output_size)}
        meta = {"source": f"random seed={seed}"}
        return cls.from_float(cell, ws, head, method=method, input_kind=input_kind, meta=meta,
                              **kwargs)


#: Fractional bits (at least) of a bias with a folded input offset.
FOLD_BIAS_FRAC = DEFAULT_BIAS_FORMAT.frac


#: ``eps`` of the trainer's input batch normalisation (``y = gamma (x - mean) / sqrt(var + eps)
#: + beta``), also used to fold its saved statistics when a state dict is imported.
INPUT_NORM_EPS = 1e-4


def fold_input_norm(q: QuantMatrix, b: Bias, scale, offset,
                    scale_terms: int) -> tuple[ScaleVector, Bias]:
    """Fold an input normalisation ``x -> scale * x + offset`` (per column) into a layer.

    ``W (scale * x + offset) + b = (W * scale) x + (W offset + b)``: the column scales are
    rounded to at most ``scale_terms`` signed powers of two each (:meth:`ScaleVector.from_float`,
    applied by shift-and-add), and ``W offset + b`` with ``W`` the quantized matrix
    (``q.values``) becomes a new bias, summed exactly (``math.fsum``) and rounded half up to
    ``max(b.frac, FOLD_BIAS_FRAC)`` fractional bits. The same inputs give the same integers.
    """
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    offset = np.asarray(offset, dtype=np.float64).reshape(-1)
    n_in = q.codes.shape[1]
    if scale.shape != (n_in,) or offset.shape != (n_in,):
        raise ValueError(f"input_scale and input_offset need {n_in} values (one per input "
                         f"column), got {scale.shape} and {offset.shape}")
    if not np.isfinite(offset).all():
        raise ValueError("input_offset must be finite")
    w = q.values
    total = [math.fsum([*(w[r] * offset).tolist(), float(b.values[r])])
             for r in range(w.shape[0])]
    bf = max(b.frac, FOLD_BIAS_FRAC)
    return ScaleVector.from_float(scale, scale_terms), Bias(Fixed(62, bf).from_float(total), bf)


def _digit_sums(codes: np.ndarray) -> tuple[int, int]:
    """Total CSD digits of all codes (a zero weight has none) and how many of them are shifted."""
    vals, counts = np.unique(codes, return_counts=True)
    digits = shifted = 0
    for v, n in zip(vals.tolist(), counts.tolist(), strict=True):
        d = csd_digits(v)
        digits += n * len(d)
        shifted += n * sum(1 for _, k in d if k)
    return digits, shifted


def load(path) -> Model:
    """Read a model file; any damage raises :class:`ModelFileError` naming the file and field."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ModelFileError(f"{where}: no such model file")
    try:
        # Open the file here so that it is closed even when np.load fails half way.
        with open(path, "rb") as fh:
            z = np.load(fh, allow_pickle=False)
            if not hasattr(z, "files"):
                raise ValueError("a single .npy array, not an .npz archive")
            with z:
                data = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile.BadZipFile, EOFError, ValueError, OSError, ...
        # numpy's pickle advice ("allow_pickle=True") is unsafe for untrusted files: never echo it.
        why = "not an .npz archive" if "pickle" in str(e) else f"{type(e).__name__}: {e}"
        raise ModelFileError(
            f"{where}: not a readable .npz model file ({why}); expected a file written by "
            "shiftrnn (random-model, import, train)"
        ) from None
    if "header" not in data:
        raise ModelFileError(f"{where}: field 'header': missing (not a shiftrnn model file)")
    try:
        hdr = json.loads(bytes(data["header"].astype(np.uint8)).decode())
    except Exception as e:
        raise ModelFileError(f"{where}: field 'header': not valid JSON ({e})") from None
    return _from_header(hdr, data, where)


class _Encoder:
    """How :meth:`Model.from_float` quantizes one tensor: the method and its parameters, with a
    tensor's own parameters (``tensor_params``, by PyTorch name) over the model's; a quantized
    bias takes its matrix's scale unless it has its own."""

    def __init__(self, method: str, params: dict, stochastic: bool, rng, scale_terms: int,
                 tensor_params: dict | None, bias_mode: str, bias_format: Fixed):
        self.method, self.params, self.stochastic, self.rng = method, params, stochastic, rng
        self.scale_terms, self.bias_mode, self.bias_format = scale_terms, bias_mode, bias_format
        self.per_tensor = {k: dict(v) for k, v in (tensor_params or {}).items()}

    def _encode(self, w, params: dict) -> QuantMatrix:
        return encode(w, self.method, stochastic=self.stochastic, rng=self.rng,
                      scale_terms=self.scale_terms, params={**self.params, **params})

    def matrix(self, w, name: str) -> QuantMatrix:
        return self._encode(w, self.per_tensor.get(name, {}))

    def bias(self, b, name: str, q: QuantMatrix) -> Bias:
        """Bias ``name`` of the matrix ``q``: in ``bias_format`` (``'fixed'``) or quantized."""
        if self.bias_mode == "fixed":
            return Bias(self.bias_format.from_float(b), self.bias_format.frac)
        if name in self.per_tensor:
            return Bias.from_quant(self.matrix(b, name))
        own = {SCALE_PARAMS[self.method]: q.scale} if q.row_scale is None else \
            {"row_scales": q.row_scale.values * q.C * 2.0**q.pmin}
        return Bias.from_quant(self._encode(b, own))


class _HeaderReader:
    """Typed fields of a model file: its JSON header and its arrays, with errors that name the
    file and the field."""

    def __init__(self, hdr: dict, data: dict, where: str):
        self.hdr, self.data, self.where = hdr, data, where

    def need(self, d, key, ctx, typ=None):
        if not isinstance(d, dict) or key not in d:
            raise ModelFileError(f"{self.where}: field '{ctx}{key}': missing")
        v = d[key]
        if typ is not None and not isinstance(v, typ):
            raise ModelFileError(
                f"{self.where}: field '{ctx}{key}': expected {typ.__name__}, got {v!r}")
        return v

    def arr(self, key):
        if key not in self.data:
            raise ModelFileError(f"{self.where}: field '{key}': array missing")
        a = self.data[key]
        if not np.issubdtype(a.dtype, np.integer):
            raise ModelFileError(f"{self.where}: field '{key}': expected integers, got {a.dtype}")
        return a.astype(np.int64)

    def check_version(self) -> None:
        if self.need(self.hdr, "format", "") != "shiftrnn-model":
            raise ModelFileError(f"{self.where}: field 'format': expected 'shiftrnn-model'")
        ver = self.need(self.hdr, "schema_version", "", int)
        if ver != SCHEMA_VERSION:
            raise ModelFileError(f"{self.where}: field 'schema_version': {ver} not supported "
                                 f"(this shiftrnn reads {SCHEMA_VERSION})")

    def formats(self) -> dict:
        formats = {}
        for k, v in self.need(self.hdr, "formats", "", dict).items():
            try:
                formats[k] = Fixed.from_dict(v, where=f"formats.{k}")
            except (ValueError, TypeError) as e:
                raise ModelFileError(f"{self.where}: field 'formats.{k}': {e}") from None
        return formats

    def nonlinearity(self) -> Nonlinearity:
        try:
            return Nonlinearity(**self.need(self.hdr, "nonlinearity", "", dict))
        except (ValueError, TypeError) as e:
            raise ModelFileError(f"{self.where}: field 'nonlinearity': {e}") from None

    def quant(self, info, key, ctx) -> QuantMatrix:
        try:
            csd = tuple((int(s), int(p)) for s, p in self.need(info, "scale_csd", ctx, list))
        except (TypeError, ValueError):
            raise ModelFileError(
                f"{self.where}: field '{ctx}scale_csd': expected [[sign, exp], ...]"
            ) from None
        if not csd or any(s not in (-1, 1) for s, _ in csd):
            raise ModelFileError(f"{self.where}: field '{ctx}scale_csd': signs must be ±1")
        scale = self.need(info, "scale", ctx)
        if isinstance(scale, bool) or not isinstance(scale, int | float):
            raise ModelFileError(
                f"{self.where}: field '{ctx}scale': expected a number, got {scale!r}")
        rs = None
        if "row_scale_frac" in info:
            rs = ScaleVector(self.arr(f"{key}.row_scale"),
                             self.need(info, "row_scale_frac", ctx, int))
        q = QuantMatrix(self.arr(key), int(self.need(info, "exp", ctx, int)), float(scale), csd,
                        rs)
        if q.C == 0:
            raise ModelFileError(f"{self.where}: field '{ctx}scale_csd': scale sums to zero")
        return q

    def layers(self) -> list[Layer]:
        n_layers = self.need(self.hdr, "num_layers", "", int)
        linfo = self.need(self.hdr, "layers", "", list)
        if len(linfo) != n_layers:
            raise ModelFileError(f"{self.where}: field 'layers': {len(linfo)} entries but "
                                 f"num_layers is {n_layers}")
        need, arr = self.need, self.arr
        layers = []
        for i, info in enumerate(linfo):
            ctx = f"layers[{i}]."
            layers.append(Layer(
                self.quant(need(info, "w_ih", ctx, dict), f"layer{i}.w_ih", ctx + "w_ih."),
                self.quant(need(info, "w_hh", ctx, dict), f"layer{i}.w_hh", ctx + "w_hh."),
                Bias(arr(f"layer{i}.b_ih"), need(info, "b_ih_frac", ctx, int)),
                Bias(arr(f"layer{i}.b_hh"), need(info, "b_hh_frac", ctx, int)),
                None if "x_scale_frac" not in info else
                ScaleVector(arr(f"layer{i}.x_scale"), need(info, "x_scale_frac", ctx, int))))
        return layers

    def head(self) -> Head | None:
        if self.hdr.get("head") is None:
            return None
        hi = self.need(self.hdr, "head", "", dict)
        return Head(self.quant(self.need(hi, "w", "head.", dict), "head.w", "head.w."),
                    Bias(self.arr("head.b"), self.need(hi, "b_frac", "head.", int)))


def _from_header(hdr: dict, data: dict, where: str) -> Model:
    r = _HeaderReader(hdr, data, where)
    r.check_version()
    formats, nl = r.formats(), r.nonlinearity()
    layers, head = r.layers(), r.head()
    need = r.need
    try:
        return Model(
            cell=need(hdr, "cell", "", str),
            input_kind=need(hdr, "input_kind", "", str),
            input_size=need(hdr, "input_size", "", int),
            hidden_size=need(hdr, "hidden_size", "", int),
            layers=layers,
            head=head,
            formats=formats,
            nonlinearity=nl,
            method=need(hdr, "method", "", str),
            method_params=need(hdr, "method_params", "", dict),
            scale_terms=need(hdr, "scale_terms", "", int),
            bias_mode=need(hdr, "bias_mode", "", str),
            meta=hdr.get("meta") or {},
        )
    except ModelFileError as e:
        raise ModelFileError(str(e).replace("model:", f"{where}:", 1)) from None
