"""One network compared across weight precisions: ``shiftrnn compare`` and the flow's
``[compare]`` section.

:func:`compare` builds the network as float32 (energy model only), as an int8-multiplier design
(``mult`` datapath) and as each low-precision method (``shiftadd`` datapath), all at the same
lanes, estimates each with :mod:`estimate` (the same functions as ``shiftrnn estimate``), and
scores bits per character on the tokens it is given. The variants come from
:mod:`golden.requantize`: the model's own method is the model itself, another method is
re-quantized from its effective weights with a range fitted to them, and the int8 baseline is
the 8-bit fixed-point twin (also in ``docs/estimates.md``, section 7). The table, plots,
``compare.json`` and ``compare.md`` are written by :mod:`.compare_report`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import golden
from estimate import (
    EnergyEstimate,
    HardwareEstimate,
    datapath_energy,
    design_energy,
    hardware_estimate,
)
from estimate import resolve_device as _resolve_device
from golden import evaluation as E
from golden.manifest import Manifest
from golden.requantize import fitted_params, int8_model, requantize

from .compare_report import write_outputs

__all__ = ["ACCURACY_PATHS", "CompareResult", "CompareRow", "compare"]

ACCURACY_PATHS = ("golden", "sim")


#: Figures a :class:`CompareRow` reads from its hardware estimate, by attribute name.
FIGURES = {"lut": "synth.lut", "ff": "synth.ff", "carry": "synth.carry", "dsp": "synth.dsp",
           "bram": "synth.bram", "cells": "synth.cells_total", "fits": "pnr.fits",
           "fmax_mhz": "pnr.fmax_mhz", "pnr_message": "pnr.message",
           "cycles_per_timestep": "cycles_per_timestep",
           "time_per_timestep_s": "time_per_timestep_s", "timesteps_per_s": "timesteps_per_s"}


@dataclass(frozen=True)
class CompareRow:
    """One variant.

    Attributes
    ----------
    method : str
        ``float32``, ``int8-mult`` or a golden method.
    kind : str
        ``float32``, ``int8-mult`` or ``shiftadd``.
    datapath : str or None
        The generated design's datapath (None: no hardware).
    weights : str or None
        ``model`` (the model's own), ``requantized``, ``int8`` or ``float``.
    method_params : dict or None
        The variant's quantizer parameters.
    design_dir : str or None
        The generated design, relative to the comparison folder.
    hardware : HardwareEstimate or None
    energy : EnergyEstimate or None
    energy_vs_int8, energy_vs_float32 : float or None
        Baseline energy / this row's energy.
    bpc : float or None
        Bits per character (when tokens were given).
    accuracy_path : str or None
        Where ``bpc`` comes from.
    note : str or None
        Why a method was skipped, or a remark.

    The figures of :data:`FIGURES` (``lut``, ``dsp``, ``fmax_mhz``, ...) read ``hardware``;
    ``mul_cells`` counts its multiplier-like cells; ``energy_pj`` is the energy per timestep.
    """

    method: str
    kind: str
    datapath: str | None
    weights: str | None
    method_params: dict | None
    design_dir: str | None
    hardware: HardwareEstimate | None
    energy: EnergyEstimate | None
    energy_vs_int8: float | None
    energy_vs_float32: float | None
    bpc: float | None
    accuracy_path: str | None
    note: str | None

    @property
    def skipped(self) -> bool:
        return self.energy is None

    def __getattr__(self, name: str):
        """A figure of the hardware estimate (:data:`FIGURES`); None without hardware or P&R."""
        if name not in FIGURES:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        value = self.hardware
        for part in FIGURES[name].split("."):
            value = None if value is None else getattr(value, part)
        return value

    @property
    def mul_cells(self) -> int | None:
        return None if self.hardware is None else len(self.hardware.synth.mul_cells)

    @property
    def energy_pj(self) -> float | None:
        return None if self.energy is None else self.energy.per_timestep_pj


@dataclass(frozen=True)
class CompareResult:
    """What :func:`compare` measured and wrote.

    Attributes
    ----------
    rows : tuple of CompareRow
        In table order; skipped methods last.
    out_dir, json_path, md_path : Path
        The folder, ``compare.json`` and ``compare.md``.
    plots : dict of str to Path
        ``energy`` (energy vs accuracy, or per method without tokens) and ``area_throughput``.
    table : str
        The printed table.
    config : dict
        Inputs: lanes, target, device, methods, length, corpus, accuracy path, model hash.
    """

    rows: tuple[CompareRow, ...]
    out_dir: Path
    json_path: Path
    md_path: Path
    plots: dict
    table: str
    config: dict

    def row(self, method: str) -> CompareRow:
        """The row of ``method`` (``float32``, ``int8-mult`` or a golden method)."""
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(method)


def _check(model, lanes, methods, method_params, accuracy, length) -> tuple[str, ...]:
    from golden.quantize import method_params as check_params

    methods = tuple(golden.METHODS if methods is None else methods)
    bad = [m for m in methods if m not in golden.METHODS]
    if bad or not methods:
        raise ValueError(f"unknown method(s) {bad}; choose from {', '.join(golden.METHODS)}")
    if not isinstance(lanes, int | np.integer) or not 1 <= lanes <= model.hidden_size:
        raise ValueError(f"lanes must be in 1..{model.hidden_size} (the hidden size), got "
                         f"{lanes!r}")
    for m, params in (method_params or {}).items():
        if m not in golden.METHODS:
            raise ValueError(f"method_params for unknown method {m!r}; choose from "
                             f"{', '.join(golden.METHODS)}")
        check_params(m, (1, 1), **params)
    if accuracy not in ACCURACY_PATHS:
        raise ValueError(f"accuracy must be one of {ACCURACY_PATHS}, got {accuracy!r}")
    if int(length) < 1:
        raise ValueError(f"length must be a positive number of timesteps, got {length}")
    return methods


def _lm_tokens(model, tokens) -> np.ndarray | None:
    if tokens is None:
        return None
    if not E.is_language_model(model):
        raise ValueError("accuracy (bits per character) needs a character language model: "
                         "token input and a head over the same vocabulary")
    return np.asarray(tokens, np.int64)


def _out_folder(out_dir, force: bool) -> Path:
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    out.mkdir(parents=True, exist_ok=True)
    return out


@dataclass(frozen=True)
class _Variant:
    method: str
    kind: str
    datapath: str | None
    model: golden.Model
    weights: str


def _variants(model, methods, method_params) -> tuple[list[_Variant], dict[str, str]]:
    """The variants in table order, and the methods that cannot be built (with why)."""
    variants = [_Variant("float32", "float32", None, model, "float"),
                _Variant("int8-mult", "int8-mult", "mult", int8_model(model), "int8")]
    notes = {}
    for m in methods:
        if m == model.method:
            variants.append(_Variant(m, "shiftadd", "shiftadd", model, "model"))
            continue
        try:
            params = (method_params or {}).get(m)
            params = fitted_params(model, m) if params is None else dict(params)
            variants.append(_Variant(m, "shiftadd", "shiftadd", requantize(model, m, params),
                                     "requantized"))
        except ValueError as e:
            notes[m] = f"not supported: {e}"
    return variants, notes


def _accuracy(model: golden.Model, tokens: np.ndarray, how: str, design: Path | None) -> float:
    """Bits per character: golden's float path, integer path, or the RTL via the fast sim."""
    if how in ("float", "int"):
        return E.golden_bpc(model, tokens, how)
    import sim

    x, y = E.chunk_tokens(tokens)
    res = sim.simulate(design, x, check=True)
    if not res.golden_equal:
        raise RuntimeError(f"{design}: RTL outputs differ from golden ({res.message})")
    return E.bits_per_char(res.outputs * 2.0 ** -model.formats["out"].frac, y)


_PATHS = {"float": "golden float path", "int": "golden integer path",
          "sim": "RTL (Verilator fast path)"}


@dataclass(frozen=True)
class _Setup:
    lanes: int
    out: Path
    target: str
    device: str | None
    tokens: np.ndarray | None
    accuracy: str
    cache_dir: object
    progress: bool


def _row(v: _Variant, s: _Setup, bar) -> dict:
    """Design, estimates and accuracy of one variant (the fields of its :class:`CompareRow`)."""
    import hw

    design = hardware = man = None
    if v.datapath is not None:
        bar.set_description(f"compare: generate {v.method}")
        design = hw.generate(v.model, out_dir=s.out / "rtl" / v.method.replace("-", "_"),
                             lanes=int(s.lanes), datapath=v.datapath, force=True)
        man = Manifest.read(design)
        bar.update()
        bar.set_description(f"compare: estimate {v.method}")
        hardware = hardware_estimate(design / man.verilog, man.top, s.target, s.device,
                                     man.cycles_per_timestep, v.datapath,
                                     cache_dir=s.cache_dir, progress=s.progress)
        bar.update(2 if s.device else 1)
    if man is None:  # float32: no hardware, the baseline datapath
        energy = datapath_energy(v.model.op_counts(), "float32")
    else:
        energy = design_energy(v.model, man, label=v.method)["design"]
    bpc = how = None
    if s.tokens is not None:
        bar.set_description(f"compare: accuracy {v.method}")
        how = "float" if v.kind == "float32" else ("int" if s.accuracy == "golden" else "sim")
        bpc = _accuracy(v.model, s.tokens, how, design)
        bar.update()
    return dict(method=v.method, kind=v.kind, datapath=v.datapath, weights=v.weights,
                method_params=dict(v.model.method_params),
                design_dir=None if design is None else str(design.relative_to(s.out)),
                hardware=hardware, energy=energy, bpc=bpc,
                accuracy_path=None if how is None else _PATHS[how])


def _config(model, s: _Setup, methods, length: int, corpus, seconds: float) -> dict:
    """``config`` of ``compare.json``: the inputs of the comparison."""
    return {
        "model_hash": model.hash(), "cell": model.cell, "method": model.method,
        "input_kind": model.input_kind, "input_size": model.input_size,
        "hidden_size": model.hidden_size, "layers": len(model.layers),
        "output_size": model.output_size, "lanes": s.lanes, "target": s.target,
        "device": s.device, "methods": list(methods), "length": int(length),
        "corpus": corpus if s.tokens is not None else None,
        "corpus_tokens": None if s.tokens is None else int(s.tokens.size),
        "accuracy": s.accuracy if s.tokens is not None else None, "seconds": seconds}


def compare(model, lanes: int, out_dir, tokens=None, target: str = "ice40",
            progress: bool = True, *, device: str | None = None, methods=None,
            length: int = 256, accuracy: str = "golden", force: bool = False,
            place: bool = True, method_params: dict | None = None, cache_dir=None,
            corpus: str | None = None) -> CompareResult:
    """Compare one network as float32, int8-multiplier and each low-precision method.

    Parameters
    ----------
    model : golden.Model or path-like
        The network (a model file is loaded with :func:`golden.load`).
    lanes : int
        Hidden units computed in parallel, the same for every hardware variant.
    out_dir : path-like
        Output folder: designs under ``rtl/<method>/``, ``compare.json``, ``compare.md`` and
        the plots. Must not exist (or be empty) unless ``force``.
    tokens : array_like of int, optional
        A token stream (:mod:`golden.evaluation`); when given, bits per character of every
        variant (character language models only).
    target : str
        Synthesis target (``generic``, ``xilinx7``, ``ice40``, ``ecp5``).
    progress : bool
        Show a progress bar (and the tools' status lines) on stderr.
    device : str, optional
        Place-and-route device (default :data:`estimate.DEFAULT_DEVICES`).
    methods : sequence of str, optional
        Low-precision methods to build (default: all of :data:`golden.METHODS`).
    length : int
        Sequence length for the energy per sequence.
    accuracy : {'golden', 'sim'}
        Bits per character from golden's integer path, or from the RTL through the fast
        Verilator simulation (checked bit-exact against golden; builds each design).
    force : bool
        Write into an existing non-empty ``out_dir`` (regenerating the designs).
    place : bool
        Place and route (ice40/ecp5); False gives area only (faster).
    method_params : dict, optional
        Method -> parameters for the re-quantized methods, instead of
        :func:`golden.requantize.fitted_params`.
    cache_dir : path-like, optional
        Estimate cache.
    corpus : str, optional
        What the tokens are (shown in ``compare.md``).

    Returns
    -------
    CompareResult
    """
    from tqdm import tqdm

    if not isinstance(model, golden.Model):
        model = golden.load(model)
    device = _resolve_device(target, device)
    device = device if place else None
    methods = _check(model, lanes, methods, method_params, accuracy, length)
    tokens = _lm_tokens(model, tokens)
    out = _out_folder(out_dir, force)
    variants, notes = _variants(model, methods, method_params)
    setup = _Setup(int(lanes), out, target, device, tokens, accuracy, cache_dir, progress)
    n_hw = sum(1 for v in variants if v.datapath is not None)
    steps = n_hw * (3 if device else 2) + (len(variants) if tokens is not None else 0)
    t0 = time.monotonic()
    with tqdm(total=steps, desc="compare", disable=not progress, unit="step",
              leave=False) as bar:
        fields = [_row(v, setup, bar) for v in variants]
    ref = {f["method"]: f["energy"].per_timestep_pj for f in fields}
    rows = [CompareRow(**f, energy_vs_int8=ref["int8-mult"] / f["energy"].per_timestep_pj,
                       energy_vs_float32=ref["float32"] / f["energy"].per_timestep_pj,
                       note=None) for f in fields]
    rows += [CompareRow(m, "shiftadd", None, None, None, None, None, None, None, None, None,
                        None, note) for m, note in notes.items()]
    config = _config(model, setup, methods, length, corpus, round(time.monotonic() - t0, 1))
    json_path, md_path, plots, table = write_outputs(tuple(rows), config, out)
    return CompareResult(tuple(rows), out, json_path, md_path, plots, table, config)
