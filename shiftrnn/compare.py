"""Estimates of one design, and the same network compared across weight precisions.

- :func:`estimate_design`: area (yosys) with the multiplier audit, fit and fmax (nextpnr, I/O
  wrapped), and energy per timestep and per sequence from the model's op counts beside the
  float32 and int8-multiplier baselines -- the report behind ``shiftrnn estimate``.
- :func:`compare`: one network as float32 (energy model only), as an int8-multiplier design
  (``mult`` datapath) and as each low-precision method (``shiftadd`` datapath), all at the same
  lanes; one table, two plots, ``compare.json`` and ``compare.md`` -- ``shiftrnn compare``.

Every figure comes from a tool run (yosys, nextpnr), the generator's manifest (cycles per
timestep), golden (op counts, accuracy) or the documented energy table
(:mod:`estimate.energy`, ``docs/estimates.md``).

How the variants are built (also in ``docs/estimates.md``, section 7):

- The *effective float weights* of the model are what its integer path computes with:
  ``QuantMatrix.values`` and ``Bias.values``.
- A method other than the model's own is re-quantized from those weights with
  :meth:`golden.Model.from_float`, its range fitted to the weights (:func:`fitted_params`),
  keeping the model's formats, nonlinearity, scale terms, bias mode and metadata (vocabulary);
  the model's own method is the model itself.
- The int8 baseline quantizes the same weights to 8-bit fixed point: golden's ``pow2-ternary``
  with ``i + f = 7`` gives integer codes in ``[-127, 127]`` times ``2**-f`` (scale 1), i.e. a
  symmetric signed 8-bit code; ``i`` is the smallest integer part that holds the largest weight
  magnitude. It runs on the ``mult`` datapath (one multiplier per weight operand).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import golden
from golden.manifest import Manifest

__all__ = [
    "COMPARE_SCHEMA",
    "DEFAULT_DEVICES",
    "ESTIMATE_SCHEMA",
    "INT8_BITS",
    "CompareResult",
    "compare",
    "corpus_tokens",
    "effective_weights",
    "estimate_design",
    "format_table",
    "fitted_params",
    "int8_model",
    "max_weight",
    "read_design",
    "requantize",
    "resolve_device",
    "write_json",
]

#: Place-and-route device used for each target when none is given (None: area only).
DEFAULT_DEVICES = {"generic": None, "xilinx7": None, "ice40": "up5k", "ecp5": "ecp5-25k"}
#: Bits of the multiplier baseline's weight codes (sign + 7).
INT8_BITS = 8
#: ``schema`` field of ``estimate_<target>.json``.
ESTIMATE_SCHEMA = "shiftrnn-estimate/1"
#: ``schema`` field of ``compare.json``.
COMPARE_SCHEMA = "shiftrnn-compare/1"
#: Where the energy numbers come from.
ENERGY_SOURCE = ("operation counts x Horowitz ISSCC 2014 45 nm table, width-scaled "
                 "(docs/estimates.md section 4)")
ACCURACY_PATHS = ("golden", "sim")


# ---------------------------------------------------------------------------- helpers
def write_json(path: Path, obj, *, force: bool = False) -> Path:
    """Write ``obj`` as indented JSON atomically; refuse to overwrite unless ``force``.

    Parameters
    ----------
    path : Path
        Destination.
    obj : object
        JSON-serialisable value.
    force : bool
        Overwrite an existing file.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``force`` is False.
    """
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it")
    golden.atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())
    return path


def read_design(design_dir) -> tuple[Path, Manifest]:
    """Check a generated design folder and return it with its manifest.

    Parameters
    ----------
    design_dir : path-like
        ``rtl_out/NAME`` as written by ``shiftrnn generate``.

    Returns
    -------
    folder : Path
        The folder.
    manifest : golden.manifest.Manifest
        Its ``manifest.json``.

    Raises
    ------
    golden.manifest.ManifestError
        No such folder, or the manifest is missing or malformed.
    FileNotFoundError
        The Verilog or model file is missing.
    """
    d = Path(design_dir)
    man = Manifest.read(d)
    for name in (man.verilog, man.model_file):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name} not found (regenerate the design folder)")
    return d, man


def resolve_device(target: str, device: str | None = None) -> str | None:
    """Check a synthesis target and pick its place-and-route device.

    Parameters
    ----------
    target : str
        One of :data:`estimate.TARGETS`.
    device : str, optional
        A device of the target's family (default :data:`DEFAULT_DEVICES`).

    Returns
    -------
    str or None
        The device, or None for the area-only targets (``generic``, ``xilinx7``).

    Raises
    ------
    ValueError
        Unknown target, or a device that does not belong to it.
    """
    from estimate import DEVICES, TARGETS

    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if device is None:
        return DEFAULT_DEVICES[target]
    parts = [k for k, v in DEVICES.items() if v.family == target]
    if not parts:
        raise ValueError(f"device {device!r} given, but target {target} has no place and route "
                         f"here (area only); use --target ice40 or ecp5")
    if device not in parts:
        raise ValueError(f"unknown {target} device {device!r}; choose one of {', '.join(parts)}")
    return device


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _fmt_pj(pj: float) -> str:
    if pj >= 1e6:
        return f"{pj / 1e6:.3g} uJ"
    if pj >= 1e3:
        return f"{pj / 1e3:.3g} nJ"
    return f"{pj:.3g} pJ"


# ---------------------------------------------------------------------------- figures
def _hardware(verilog: Path, top: str, target: str, device: str | None, cycles: int,
              datapath: str, *, cache_dir=None, progress: bool = False) -> dict:
    """Synthesis, multiplier audit and (for ice40/ecp5) place and route of one Verilog file."""
    from estimate import place_and_route, synthesize

    syn = synthesize(verilog, top, target, cache_dir=cache_dir, progress=progress)
    muls = [dataclasses.asdict(c) for c in syn.mul_cells]
    free = not muls and syn.dsp == 0
    out = {
        "target": target,
        "synth": {
            "lut": syn.lut, "ff": syn.ff, "carry": syn.carry, "dsp": syn.dsp, "bram": syn.bram,
            "cells_total": syn.total_cells, "cells": syn.cells, "mul_cells": muls,
            "yosys_version": syn.yosys_version, "seconds": syn.seconds,
            "from_cache": syn.from_cache,
        },
        "audit": {
            "mul_cells": len(muls), "dsp": syn.dsp, "multiplier_free": free,
            "required": datapath == "shiftadd",
            "passed": free or datapath != "shiftadd",
        },
        "pnr": None,
        "cycles_per_timestep": cycles,
        "time_per_timestep_s": None,
        "timesteps_per_s": None,
    }
    if device is not None:
        pnr = place_and_route(verilog, top, device, wrap_io=True, cache_dir=cache_dir,
                              progress=progress)
        out["pnr"] = {
            "device": device, "fits": pnr.fits, "fmax_mhz": pnr.fmax_mhz,
            "message": pnr.message, "utilisation": pnr.utilisation, "wrap_io": True,
            "nextpnr_version": pnr.nextpnr_version, "seconds": pnr.seconds,
            "from_cache": pnr.from_cache,
        }
        if pnr.fits and pnr.fmax_mhz:
            t = cycles / (pnr.fmax_mhz * 1e6)
            out["time_per_timestep_s"] = t
            out["timesteps_per_s"] = 1.0 / t
    return out


def _energy_dict(e, length: int) -> dict:
    return {
        "label": e.label, "per_timestep_pj": e.per_timestep_pj,
        "per_sequence_pj": e.per_sequence_pj(length), "breakdown": e.breakdown,
        "counts": e.counts,
    }


def _energy(model: golden.Model, kind: str, length: int, *, unrolled: bool = False) -> dict:
    """Energy of ``model`` as ``kind``: ``shiftadd``, ``int8-mult`` or ``float32``."""
    from estimate import baseline_energy, energy_from_ops

    ops = model.op_counts()
    if kind == "shiftadd":
        e = energy_from_ops(ops, model.method, unrolled=unrolled)
    else:
        e = baseline_energy(ops, kind)
    return _energy_dict(e, length)


# --------------------------------------------------------------------------- estimate
def estimate_design(design_dir, target: str = "ice40", device: str | None = None, *,
                    length: int = 256, cache_dir=None, progress: bool = False) -> dict:
    """Area, fit/fmax and energy of a generated design folder.

    Parameters
    ----------
    design_dir : path-like
        ``rtl_out/NAME`` (manifest, Verilog and ``model.npz``).
    target : str
        Synthesis target: ``generic``, ``xilinx7``, ``ice40`` or ``ecp5``.
    device : str, optional
        Place-and-route device of the target's family (default :data:`DEFAULT_DEVICES`;
        ``generic`` and ``xilinx7`` are area only).
    length : int
        Sequence length for the energy per sequence.
    cache_dir : path-like, optional
        Estimate cache (default: see :func:`estimate.cache.cache_root`).
    progress : bool
        Show a status line while yosys/nextpnr run.

    Returns
    -------
    dict
        The report (schema :data:`ESTIMATE_SCHEMA`): ``design``, ``config``, ``hardware``
        (``synth``, ``audit``, ``pnr``, ``time_per_timestep_s``, ...), ``energy`` (``design``,
        ``float32``, ``int8-mult``, ``length``, ratios) and the tool versions.
    """
    device = resolve_device(target, device)
    if int(length) < 1:
        raise ValueError(f"length must be a positive number of timesteps, got {length}")
    d, man = read_design(design_dir)
    model = golden.load(d / man.model_file)
    datapath, unrolled = man.config.datapath, man.config.unrolled
    hwr = _hardware(d / man.verilog, man.top, target, device, man.cycles_per_timestep,
                    datapath, cache_dir=cache_dir, progress=progress)
    own = _energy(model, "shiftadd" if datapath == "shiftadd" else "int8-mult", length,
                  unrolled=unrolled)
    base = {k: _energy(model, k, length) for k in ("int8-mult", "float32")}
    energy = {
        "source": ENERGY_SOURCE,
        "length": int(length),
        "design": own,
        **base,
        "ratio_int8_mult": base["int8-mult"]["per_timestep_pj"] / own["per_timestep_pj"],
        "ratio_float32": base["float32"]["per_timestep_pj"] / own["per_timestep_pj"],
    }
    if datapath != "shiftadd":
        energy["note"] = "a mult-datapath design is priced as the int8-multiplier baseline"
    return {
        "schema": ESTIMATE_SCHEMA,
        "design": man.design,
        "design_dir": str(d),
        "top": man.top,
        "model_hash": model.hash(),
        "config": dataclasses.asdict(man.config),
        "target": target,
        "device": device,
        "hardware": hwr,
        "energy": energy,
    }


# --------------------------------------------------------------------------- variants
def effective_weights(model: golden.Model) -> tuple[list[dict], dict | None]:
    """The real weights the model's integer path computes with, in PyTorch layout.

    Parameters
    ----------
    model : golden.Model
        Any model.

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


def requantize(model: golden.Model, method: str, method_params: dict | None = None,
               note: str | None = None) -> golden.Model:
    """Re-quantize a model's effective float weights with another method.

    Formats, nonlinearity, scale terms, bias mode, input kind and metadata are kept; with
    ``bias_mode='fixed'`` the biases are copied exactly (they do not depend on the method).

    Parameters
    ----------
    model : golden.Model
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
    golden.Model
        The re-quantized model.
    """
    from golden.quantize import method_params as defaults

    layers, head = effective_weights(model)
    params = {k: v for k, v in defaults(method, (1, 1), **(method_params or {})).items()
              if k not in ("H", "W0") or k in (method_params or {})}  # else per-matrix
    meta = dict(model.meta or {})
    meta["requantized"] = note or f"{method} from the effective weights of a {model.method} model"
    out = golden.Model.from_float(
        model.cell, layers, head, method=method, input_kind=model.input_kind,
        method_params=params, scale_terms=model.scale_terms, bias_mode=model.bias_mode,
        formats=dict(model.formats), nonlinearity=model.nonlinearity, meta=meta)
    if model.bias_mode == "fixed":
        lays = [dataclasses.replace(new, b_ih=old.b_ih, b_hh=old.b_hh)
                for new, old in zip(out.layers, model.layers, strict=True)]
        hd = out.head if out.head is None else dataclasses.replace(out.head, b=model.head.b)
        out = dataclasses.replace(out, layers=lays, head=hd)
    return out


def max_weight(model: golden.Model) -> float:
    """Largest effective weight magnitude over every matrix (biases excluded).

    Parameters
    ----------
    model : golden.Model
        Any model.

    Returns
    -------
    float
        ``max |w|``.
    """
    layers, head = effective_weights(model)
    mats = [lw[k] for lw in layers for k in ("weight_ih", "weight_hh")]
    if head is not None:
        mats.append(head["weight"])
    return max(float(np.abs(m).max(initial=0.0)) for m in mats)


def fitted_params(model: golden.Model, method: str) -> dict:
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
    model : golden.Model
        The source model.
    method : str
        One of :data:`golden.METHODS`.

    Returns
    -------
    dict
        Parameters for :func:`requantize`.
    """
    if method not in golden.METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(golden.METHODS)}")
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


def int8_model(model: golden.Model) -> golden.Model:
    """The 8-bit fixed-point twin of a model, for the multiplier baseline.

    golden's ``pow2-ternary`` with ``i + f = 7`` rounds each weight to ``k * 2**-f`` with an
    integer ``k`` in ``[-127, 127]`` (scale 1): a symmetric signed 8-bit code. ``i`` is the
    smallest integer part (0..7) whose range ``127 * 2**-f`` holds the largest weight magnitude.

    Parameters
    ----------
    model : golden.Model
        The source model.

    Returns
    -------
    golden.Model
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


def corpus_tokens(model: golden.Model, corpus) -> np.ndarray:
    """Token indices of a text file for a character language model.

    Characters map through ``model.meta['vocab']`` if the model records one (an unknown
    character is an error), else each UTF-8 byte modulo ``input_size``.

    Parameters
    ----------
    model : golden.Model
        A token-input model with a head predicting its own vocabulary.
    corpus : path-like
        Text file.

    Returns
    -------
    ndarray of int64
        The tokens.
    """
    if model.input_kind != "token" or model.head is None or model.output_size != model.input_size:
        raise ValueError("accuracy (bits per character) needs a character language model: token "
                         "input and a head over the same vocabulary")
    path = Path(corpus)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    vocab = (model.meta or {}).get("vocab")
    if vocab:
        from train.data import encode_text

        toks = encode_text(text, vocab)
    else:
        toks = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
        toks %= model.input_size
    if toks.size < 2:
        raise ValueError(f"corpus file {path} is too short to evaluate")
    return toks


def _accuracy(model: golden.Model, tokens: np.ndarray, how: str, design: Path | None) -> float:
    """Bits per character: golden's float path, integer path, or the RTL via the fast sim."""
    from train.data import bits_per_char, chunk_tokens, golden_bpc

    if how in ("float", "int"):
        return golden_bpc(model, tokens, how)
    import sim

    x, y = chunk_tokens(tokens)
    res = sim.simulate(design, x, check=True)
    if not res.golden_equal:
        raise RuntimeError(f"{design}: RTL outputs differ from golden ({res.message})")
    return bits_per_char(res.outputs * 2.0 ** -model.formats["out"].frac, y)


# ----------------------------------------------------------------------------- result
@dataclass
class CompareResult:
    """What :func:`compare` measured and wrote.

    Attributes
    ----------
    rows : list of dict
        One per variant, in table order: ``method``, ``kind`` (``float32``, ``int8-mult``,
        ``shiftadd``), ``datapath``, ``weights`` (``model``/``requantized``/``int8``/``float``),
        ``design_dir``, ``lut``, ``ff``, ``carry``, ``dsp``, ``bram``, ``cells``,
        ``mul_cells``, ``fits``, ``fmax_mhz``, ``pnr_message``, ``cycles_per_timestep``,
        ``time_per_timestep_s``, ``timesteps_per_s``, ``energy_pj`` (per timestep),
        ``energy_per_sequence_pj``, ``energy_vs_int8``, ``energy_vs_float32``, ``bpc``,
        ``accuracy_path``, ``note``. Missing figures are None.
    out_dir : Path
        The output folder.
    json_path, md_path : Path
        ``compare.json`` and ``compare.md``.
    plots : dict of str to Path
        ``energy`` (energy vs accuracy, or energy per method without a corpus) and
        ``area_throughput``.
    table : str
        The printed table.
    config : dict
        Inputs: lanes, target, device, methods, length, corpus, accuracy path, model hash.
    """

    rows: list[dict]
    out_dir: Path
    json_path: Path
    md_path: Path
    plots: dict[str, Path] = field(default_factory=dict)
    table: str = ""
    config: dict = field(default_factory=dict)

    def row(self, method: str) -> dict:
        """Return the row of ``method`` (``float32``, ``int8-mult`` or a golden method)."""
        for r in self.rows:
            if r["method"] == method:
                return r
        raise KeyError(method)


def _area_name(target: str) -> str:
    return "cells" if target == "generic" else "LUT"


def _fmax_text(r: dict) -> str:
    if r["kind"] == "float32":
        return "-"
    if r.get("fmax_mhz"):
        return f"{r['fmax_mhz']:.1f} MHz"
    if r.get("fits") is False:
        return "timed out" if r.get("pnr_message") == "timed out" else "does not fit"
    return "no P&R" if r.get("lut") is not None else "-"


def _cells(r: dict, target: str) -> list[str]:
    def num(v):
        return "-" if v is None else f"{v:,}"

    generic = target == "generic"  # gates only: no DSP or BRAM cells to count
    area = r.get("cells") if generic else r.get("lut")
    return [
        r["method"], r["datapath"] or "-", num(area), num(r.get("ff")),
        "-" if generic else num(r.get("dsp")), "-" if generic else num(r.get("bram")),
        num(r.get("mul_cells")), _fmax_text(r),
        num(r.get("cycles_per_timestep")), _fmt_time(r.get("time_per_timestep_s")),
        _fmt_pj(r["energy_pj"]) if r.get("energy_pj") is not None else "-",
        "-" if r.get("bpc") is None else f"{r['bpc']:.3f}",
    ]


def _headers(target: str, device: str | None) -> list[str]:
    return ["method", "datapath", _area_name(target), "FF", "DSP", "BRAM", "$mul",
            f"fmax ({device})" if device else "fmax", "cycles/step", "time/step",
            "energy/step", "BPC"]


def format_table(rows: list[dict], target: str, device: str | None = None, *,
                 markdown: bool = False) -> str:
    """Render compare rows as a fixed-width text table or a Markdown table.

    Parameters
    ----------
    rows : list of dict
        :attr:`CompareResult.rows`.
    target : str
        Synthesis target (``generic`` shows total cells instead of LUTs and no DSP/BRAM).
    device : str, optional
        Place-and-route device (shown in the fmax header).
    markdown : bool
        Markdown instead of aligned text.

    Returns
    -------
    str
        The table.
    """
    head = _headers(target, device)
    body = [_cells(r, target) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines) + "\n"
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)]) + "\n"


# ------------------------------------------------------------------------------ plots
def _save_png(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    golden.atomic_write_bytes(path, buf.getvalue())
    return path


def _offset(k: int) -> tuple[int, int]:
    """Label offset in points, staggered so that labels of nearby points do not overlap."""
    return 5, (4, -12, 14)[k % 3]


def _plots(rows: list[dict], out: Path, target: str, device: str | None) -> dict[str, Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    plots = {}
    colours = {"float32": "tab:gray", "int8-mult": "tab:red"}
    # Energy vs accuracy (or energy per method without a corpus).
    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    with_acc = [r for r in rows if r.get("bpc") is not None and r.get("energy_pj")]
    if with_acc:
        for k, r in enumerate(with_acc):
            ax.scatter(r["bpc"], r["energy_pj"], color=colours.get(r["method"], "tab:blue"),
                       zorder=3)
            ax.annotate(r["method"], (r["bpc"], r["energy_pj"]), textcoords="offset points",
                        xytext=_offset(k), fontsize=8)
        ax.set_xlabel("bits per character (lower is better)")
        ax.set_title("Energy per timestep vs accuracy")
        name = "energy_vs_accuracy.png"
    else:
        shown = [r for r in rows if r.get("energy_pj")]
        ax.bar(range(len(shown)), [r["energy_pj"] for r in shown],
               color=[colours.get(r["method"], "tab:blue") for r in shown])
        ax.set_xticks(range(len(shown)), [r["method"] for r in shown], rotation=20, fontsize=8)
        ax.set_title("Energy per timestep (no corpus: accuracy not measured)")
        name = "energy_per_step.png"
    ax.set_yscale("log")
    ax.set_ylabel("energy per timestep, pJ (45 nm op-count model)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    plots["energy"] = _save_png(fig, out / name)

    # Area vs throughput.
    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    hw_rows = [r for r in rows if r["kind"] != "float32" and r.get("lut") is not None]
    area_key = "cells" if target == "generic" else "lut"
    timed = [r for r in hw_rows if r.get("timesteps_per_s")]
    if timed:
        ys = {id(r): r["timesteps_per_s"] for r in timed}
        ylabel = f"timesteps per second at fmax ({device})"
    else:
        ys = {id(r): 1e6 / r["cycles_per_timestep"] for r in hw_rows}
        why = "no place and route" if device is None else f"nothing fits {device}"
        ylabel = f"timesteps per 10^6 clock cycles ({why})"
    untimed = []
    for k, r in enumerate(hw_rows):
        if id(r) not in ys:
            untimed.append(f"{r['method']}: {_fmax_text(r)}")
            continue
        label = r["method"] + (f" ({r['dsp']} DSP)" if r.get("dsp") else "")
        ax.scatter(r[area_key], ys[id(r)], color=colours.get(r["method"], "tab:blue"), zorder=3)
        ax.annotate(label, (r[area_key], ys[id(r)]), textcoords="offset points",
                    xytext=_offset(k), fontsize=8)
    ax.set_xlabel(f"area: {_area_name(target)} ({target})")
    ax.set_ylabel(ylabel)
    ax.set_title("Area vs throughput (same lanes)")
    ax.grid(True, alpha=0.3)
    if untimed:
        fig.text(0.01, 0.01, "not placed: " + "; ".join(untimed), fontsize=7)
    fig.tight_layout(rect=(0, 0.04 if untimed else 0, 1, 1))
    plots["area_throughput"] = _save_png(fig, out / "area_vs_throughput.png")
    return plots


# ---------------------------------------------------------------------------- compare
def _design_name(method: str) -> str:
    return method.replace("-", "_")


def compare(model, lanes: int, out_dir, corpus=None, target: str = "ice40",
            progress: bool = True, *, device: str | None = None, methods=None,
            length: int = 256, accuracy: str = "golden", force: bool = False,
            place: bool = True, method_params: dict | None = None,
            cache_dir=None) -> CompareResult:
    """Compare one network as float32, int8-multiplier and each low-precision method.

    Parameters
    ----------
    model : golden.Model or path-like
        The network (a model file is loaded with :func:`golden.load`).
    lanes : int
        Hidden units computed in parallel, the same for every hardware variant.
    out_dir : path-like
        Output folder: designs under ``rtl/<name>/``, ``compare.json``, ``compare.md`` and
        the plots. Must not exist (or be empty) unless ``force``.
    corpus : path-like, optional
        Text file; when given, bits per character of every variant (character LMs only).
    target : str
        Synthesis target (``generic``, ``xilinx7``, ``ice40``, ``ecp5``).
    progress : bool
        Show a progress bar (and the tools' status lines) on stderr.
    device : str, optional
        Place-and-route device (default :data:`DEFAULT_DEVICES`; none for area-only targets).
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
        Method -> parameters for the re-quantized methods, instead of :func:`fitted_params`.
    cache_dir : path-like, optional
        Estimate cache.

    Returns
    -------
    CompareResult
        Rows and paths.
    """
    from tqdm import tqdm

    import hw

    if not isinstance(model, golden.Model):
        model = golden.load(model)
    device = resolve_device(target, device)
    if not place:
        device = None
    methods = tuple(golden.METHODS if methods is None else methods)
    bad = [m for m in methods if m not in golden.METHODS]
    if bad or not methods:
        raise ValueError(f"unknown method(s) {bad}; choose from {', '.join(golden.METHODS)}")
    if not isinstance(lanes, int | np.integer) or not 1 <= lanes <= model.hidden_size:
        raise ValueError(f"lanes must be in 1..{model.hidden_size} (the hidden size), got "
                         f"{lanes!r}")
    from golden.quantize import method_params as check_params

    for m, params in (method_params or {}).items():
        if m not in golden.METHODS:
            raise ValueError(f"method_params for unknown method {m!r}; choose from "
                             f"{', '.join(golden.METHODS)}")
        check_params(m, (1, 1), **params)
    if accuracy not in ACCURACY_PATHS:
        raise ValueError(f"accuracy must be one of {ACCURACY_PATHS}, got {accuracy!r}")
    if int(length) < 1:
        raise ValueError(f"length must be a positive number of timesteps, got {length}")
    tokens = None if corpus is None else corpus_tokens(model, corpus)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    out.mkdir(parents=True, exist_ok=True)

    variants = [("float32", "float32", None, model, "float")]
    variants.append(("int8-mult", "int8-mult", "mult", int8_model(model), "int8"))
    notes = {}
    for m in methods:
        if m == model.method:
            variants.append((m, "shiftadd", "shiftadd", model, "model"))
            continue
        try:
            params = (method_params or {}).get(m)
            params = fitted_params(model, m) if params is None else dict(params)
            variants.append((m, "shiftadd", "shiftadd", requantize(model, m, params),
                             "requantized"))
        except ValueError as e:
            notes[m] = f"not supported: {e}"
    n_hw = sum(1 for v in variants if v[2] is not None)
    steps = n_hw * (3 if device else 2) + (len(variants) if tokens is not None else 0)
    bar = tqdm(total=steps, desc="compare", disable=not progress, unit="step", leave=False)
    rows = []
    t0 = time.monotonic()
    try:
        for method, kind, datapath, mdl, weights in variants:
            row = {"method": method, "kind": kind, "datapath": datapath, "weights": weights,
                   "model_method": mdl.method, "method_params": mdl.method_params,
                   "design_dir": None, "lut": None, "ff": None, "carry": None, "dsp": None,
                   "bram": None, "cells": None, "mul_cells": None, "fits": None,
                   "fmax_mhz": None, "pnr_message": None, "cycles_per_timestep": None,
                   "time_per_timestep_s": None, "timesteps_per_s": None, "bpc": None,
                   "accuracy_path": None, "note": notes.get(method)}
            e = _energy(mdl, "shiftadd" if kind == "shiftadd" else kind, length)
            row.update(energy_pj=e["per_timestep_pj"], energy_per_sequence_pj=e["per_sequence_pj"],
                       energy=e)
            design = None
            if datapath is not None:
                bar.set_description(f"compare: generate {method}")
                design = hw.generate(mdl, out_dir=out / "rtl" / _design_name(method),
                                     lanes=int(lanes), datapath=datapath, force=True)
                man = Manifest.read(design)
                bar.update()
                bar.set_description(f"compare: estimate {method}")
                h = _hardware(design / man.verilog, man.top, target, device,
                              man.cycles_per_timestep, datapath, cache_dir=cache_dir,
                              progress=progress)
                bar.update(2 if device else 1)
                s, p = h["synth"], h["pnr"] or {}
                row.update(design_dir=str(design), lut=s["lut"], ff=s["ff"], carry=s["carry"],
                           dsp=s["dsp"], bram=s["bram"], cells=s["cells_total"],
                           mul_cells=len(s["mul_cells"]), fits=p.get("fits"),
                           fmax_mhz=p.get("fmax_mhz"), pnr_message=p.get("message"),
                           cycles_per_timestep=h["cycles_per_timestep"],
                           time_per_timestep_s=h["time_per_timestep_s"],
                           timesteps_per_s=h["timesteps_per_s"], hardware=h)
            if tokens is not None:
                bar.set_description(f"compare: accuracy {method}")
                how = "float" if kind == "float32" else ("int" if accuracy == "golden" else "sim")
                row["bpc"] = _accuracy(mdl, tokens, how, design)
                row["accuracy_path"] = {"float": "golden float path", "int": "golden integer path",
                                        "sim": "RTL (Verilator fast path)"}[how]
                bar.update()
            rows.append(row)
    finally:
        bar.close()
    ref = {r["method"]: r["energy_pj"] for r in rows}
    for r in rows:
        r["energy_vs_int8"] = ref["int8-mult"] / r["energy_pj"]
        r["energy_vs_float32"] = ref["float32"] / r["energy_pj"]
    for m, note in notes.items():
        rows.append({"method": m, "kind": "shiftadd", "datapath": None, "note": note,
                     "energy_pj": None, "skipped": True})
    table_rows = [r for r in rows if not r.get("skipped")]
    table = format_table(table_rows, target, device)
    config = {
        "model_hash": model.hash(), "cell": model.cell, "method": model.method,
        "input_kind": model.input_kind, "input_size": model.input_size,
        "hidden_size": model.hidden_size, "layers": len(model.layers),
        "output_size": model.output_size, "lanes": int(lanes), "target": target,
        "device": device, "methods": list(methods), "length": int(length),
        "corpus": None if corpus is None else str(corpus),
        "corpus_tokens": None if tokens is None else int(tokens.size),
        "accuracy": accuracy if tokens is not None else None,
        "energy_source": ENERGY_SOURCE, "seconds": round(time.monotonic() - t0, 1),
    }
    plots = _plots(table_rows, out, target, device)
    json_path = write_json(out / "compare.json", {
        "schema": COMPARE_SCHEMA, "config": config, "rows": rows,
        "plots": {k: v.name for k, v in plots.items()},
    }, force=True)
    md_path = out / "compare.md"
    golden.atomic_write_bytes(md_path, _markdown(table_rows, rows, config, plots).encode())
    return CompareResult(rows=rows, out_dir=out, json_path=json_path, md_path=md_path,
                         plots=plots, table=table, config=config)


def _markdown(table_rows: list[dict], rows: list[dict], config: dict, plots: dict) -> str:
    c = config
    lines = [
        f"# {c['cell'].upper()} {c['input_size']}->{c['hidden_size']} ({c['method']} model): "
        f"precision comparison",
        "",
        f"Same network at lanes={c['lanes']}; synthesis target `{c['target']}`"
        + (f", place and route on `{c['device']}` (I/O wrapped)" if c["device"] else
           " (area only, no place and route)") + ".",
        "",
        format_table(table_rows, c["target"], c["device"], markdown=True),
        "- float32: energy model only (no hardware); BPC from golden's float path of the "
        "model's effective weights.",
        "- int8-mult: the weights as 8-bit fixed point (golden pow2-ternary, i+f=7) on the "
        "`mult` datapath; energy is the int8-multiplier baseline.",
        "- other rows: multiplier-free `shiftadd` designs; the model's own method uses its "
        "weights, the others are re-quantized from its effective float weights.",
        f"- energy: {c['energy_source']}; per sequence = {c['length']} x per timestep "
        "(see compare.json). Ratios between rows are the meaningful output.",
        "- time/step = cycles/step / fmax.",
    ]
    if c["corpus"]:
        lines.append(f"- BPC on `{c['corpus']}` ({c['corpus_tokens']} characters).")
    for r in rows:
        if r.get("note"):
            lines.append(f"- {r['method']}: {r['note']}")
        if r.get("fits") is False:
            lines.append(f"- {r['method']}: {r['pnr_message']}")
    energy = {r["method"]: r for r in table_rows}
    lines += ["", "Energy saving = baseline energy / this row's energy.", "",
              "| method | energy/step | energy/sequence | saving vs int8-mult | "
              "saving vs float32 |",
              "|---|---:|---:|---:|---:|"]
    for m, r in energy.items():
        lines.append(f"| {m} | {_fmt_pj(r['energy_pj'])} | {_fmt_pj(r['energy_per_sequence_pj'])}"
                     f" | {r['energy_vs_int8']:.2f}x | {r['energy_vs_float32']:.2f}x |")
    lines += [""] + [f"![{k}]({p.name})" for k, p in plots.items()] + [""]
    return "\n".join(lines)
