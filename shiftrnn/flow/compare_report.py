"""What ``shiftrnn compare`` writes: the table, ``compare.md``, ``compare.json`` and two plots."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import golden
from estimate.design import ENERGY_SOURCE

__all__ = ["COMPARE_SCHEMA", "fmt_pj", "fmt_time", "format_table", "row_dict",
           "write_outputs"]

#: ``schema`` field of ``compare.json`` (2: ``design_dir`` relative to the folder).
COMPARE_SCHEMA = "shiftrnn-compare/2"
_COLOURS = {"float32": "tab:gray", "int8-mult": "tab:red"}


def fmt_time(seconds: float | None) -> str:
    """A duration with its unit (s, ms, us, ns), 3 significant digits; ``-`` for None."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_pj(pj: float) -> str:
    """An energy with its unit (pJ, nJ, uJ), 3 significant digits."""
    if pj >= 1e6:
        return f"{pj / 1e6:.3g} uJ"
    if pj >= 1e3:
        return f"{pj / 1e3:.3g} nJ"
    return f"{pj:.3g} pJ"


def _area_name(target: str) -> str:
    return "cells" if target == "generic" else "LUT"


def _fmax_text(r) -> str:
    if r.kind == "float32":
        return "-"
    if r.fmax_mhz:
        return f"{r.fmax_mhz:.1f} MHz"
    if r.fits is False:
        return "timed out" if r.pnr_message == "timed out" else "does not fit"
    return "no P&R" if r.lut is not None else "-"


def _cells(r, target: str) -> list[str]:
    def num(v):
        return "-" if v is None else f"{v:,}"

    generic = target == "generic"  # gates only: no DSP or BRAM cells to count
    return [
        r.method, r.datapath or "-", num(r.cells if generic else r.lut), num(r.ff),
        "-" if generic else num(r.dsp), "-" if generic else num(r.bram), num(r.mul_cells),
        _fmax_text(r), num(r.cycles_per_timestep), fmt_time(r.time_per_timestep_s),
        fmt_pj(r.energy_pj) if r.energy_pj is not None else "-",
        "-" if r.bpc is None else f"{r.bpc:.3f}",
    ]


def format_table(rows, target: str, device: str | None = None, *,
                 markdown: bool = False) -> str:
    """Render compare rows as a fixed-width text table or a Markdown table.

    Parameters
    ----------
    rows : sequence of CompareRow
        The variants (skipped ones excluded).
    target : str
        Synthesis target (``generic`` shows total cells instead of LUTs and no DSP/BRAM).
    device : str, optional
        Place-and-route device (shown in the fmax header).
    markdown : bool
        Markdown instead of aligned text.
    """
    head = ["method", "datapath", _area_name(target), "FF", "DSP", "BRAM", "$mul",
            f"fmax ({device})" if device else "fmax", "cycles/step", "time/step",
            "energy/step", "BPC"]
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


def row_dict(r, length: int) -> dict:
    """One row of ``compare.json``: the record and its figures, flat."""
    from .compare import FIGURES
    d = {f.name: getattr(r, f.name) for f in dataclasses.fields(r)
         if f.name not in ("hardware", "energy")}
    for k in (*FIGURES, "mul_cells", "energy_pj", "skipped"):
        d[k] = getattr(r, k)
    d["hardware"] = None if r.hardware is None else dataclasses.asdict(r.hardware)
    e = r.energy
    d["energy"] = None if e is None else {
        "label": e.label, "per_timestep_pj": e.per_timestep_pj,
        "per_sequence_pj": e.per_sequence_pj(length), "breakdown": e.breakdown,
        "counts": e.counts}
    d["energy_per_sequence_pj"] = None if e is None else e.per_sequence_pj(length)
    return d


def _markdown(rows, config: dict, plots: dict) -> str:
    c, shown = config, [r for r in rows if not r.skipped]
    where = (f", place and route on `{c['device']}` (I/O wrapped)" if c["device"] else
             " (area only, no place and route)")
    lines = [
        f"# {c['cell'].upper()} {c['input_size']}->{c['hidden_size']} ({c['method']} model): "
        "precision comparison", "",
        f"Same network at lanes={c['lanes']}; synthesis target `{c['target']}`{where}.", "",
        format_table(shown, c["target"], c["device"], markdown=True),
        "- float32: energy model only (no hardware); BPC from golden's float path of the "
        "model's effective weights.",
        "- int8-mult: the weights as 8-bit fixed point (golden pow2-ternary, i+f=7) on the "
        "`mult` datapath; energy is the int8-multiplier baseline.",
        "- other rows: multiplier-free `shiftadd` designs; the model's own method uses its "
        "weights, the others are re-quantized from its effective float weights.",
        f"- energy: {ENERGY_SOURCE}; per sequence = {c['length']} x per timestep "
        "(see compare.json). Ratios between rows are the meaningful output.",
        "- time/step = cycles/step / fmax.",
    ]
    if c["corpus_tokens"]:
        lines.append(f"- BPC on {c['corpus']} ({c['corpus_tokens']} characters).")
    lines += [f"- {r.method}: {r.note}" for r in rows if r.note]
    lines += [f"- {r.method}: {r.pnr_message}" for r in rows if r.fits is False]
    lines += ["", "Energy saving = baseline energy / this row's energy.", "",
              "| method | energy/step | energy/sequence | saving vs int8-mult | "
              "saving vs float32 |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.method} | {fmt_pj(r.energy_pj)} | "
              f"{fmt_pj(r.energy.per_sequence_pj(c['length']))} | {r.energy_vs_int8:.2f}x | "
              f"{r.energy_vs_float32:.2f}x |" for r in shown]
    lines += [""] + [f"![{k}]({p.name})" for k, p in plots.items()] + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- plots
def _save_png(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    golden.atomic_write_bytes(path, buf.getvalue())
    return path


def _offset(k: int) -> tuple[int, int]:
    """Label offset in points, staggered so that labels of nearby points do not overlap."""
    return 5, (4, -12, 14)[k % 3]


def _new_axes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _energy_plot(rows, out: Path) -> Path:
    """Energy vs accuracy (or energy per method without tokens)."""
    fig, ax = _new_axes()
    with_acc = [r for r in rows if r.bpc is not None and r.energy_pj]
    if with_acc:
        for k, r in enumerate(with_acc):
            ax.scatter(r.bpc, r.energy_pj, color=_COLOURS.get(r.method, "tab:blue"), zorder=3)
            ax.annotate(r.method, (r.bpc, r.energy_pj), textcoords="offset points",
                        xytext=_offset(k), fontsize=8)
        ax.set_xlabel("bits per character (lower is better)")
        ax.set_title("Energy per timestep vs accuracy")
        name = "energy_vs_accuracy.png"
    else:
        shown = [r for r in rows if r.energy_pj]
        ax.bar(range(len(shown)), [r.energy_pj for r in shown],
               color=[_COLOURS.get(r.method, "tab:blue") for r in shown])
        ax.set_xticks(range(len(shown)), [r.method for r in shown], rotation=20, fontsize=8)
        ax.set_title("Energy per timestep (no corpus: accuracy not measured)")
        name = "energy_per_step.png"
    ax.set_yscale("log")
    ax.set_ylabel("energy per timestep, pJ (45 nm op-count model)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _save_png(fig, out / name)


def _area_plot(rows, out: Path, target: str, device: str | None) -> Path:
    """Area vs throughput of the hardware variants."""
    fig, ax = _new_axes()
    hw_rows = [r for r in rows if r.kind != "float32" and r.lut is not None]
    area_key = "cells" if target == "generic" else "lut"
    timed = [r for r in hw_rows if r.timesteps_per_s]
    if timed:
        ys = {id(r): r.timesteps_per_s for r in timed}
        ylabel = f"timesteps per second at fmax ({device})"
    else:
        ys = {id(r): 1e6 / r.cycles_per_timestep for r in hw_rows}
        why = "no place and route" if device is None else f"nothing fits {device}"
        ylabel = f"timesteps per 10^6 clock cycles ({why})"
    untimed = [f"{r.method}: {_fmax_text(r)}" for r in hw_rows if id(r) not in ys]
    for k, r in enumerate(r for r in hw_rows if id(r) in ys):
        label = r.method + (f" ({r.dsp} DSP)" if r.dsp else "")
        area = getattr(r, area_key)
        ax.scatter(area, ys[id(r)], color=_COLOURS.get(r.method, "tab:blue"), zorder=3)
        ax.annotate(label, (area, ys[id(r)]), textcoords="offset points", xytext=_offset(k),
                    fontsize=8)
    ax.set_xlabel(f"area: {_area_name(target)} ({target})")
    ax.set_ylabel(ylabel)
    ax.set_title("Area vs throughput (same lanes)")
    ax.grid(True, alpha=0.3)
    if untimed:
        fig.text(0.01, 0.01, "not placed: " + "; ".join(untimed), fontsize=7)
    fig.tight_layout(rect=(0, 0.04 if untimed else 0, 1, 1))
    return _save_png(fig, out / "area_vs_throughput.png")


def write_outputs(rows, config: dict, out: Path) -> tuple[Path, Path, dict, str]:
    """Write the plots, ``compare.json`` and ``compare.md`` into ``out``.

    Returns
    -------
    json_path, md_path : Path
    plots : dict of str to Path
    table : str
        The text table.
    """
    shown = [r for r in rows if not r.skipped]
    plots = {"energy": _energy_plot(shown, out),
             "area_throughput": _area_plot(shown, out, config["target"], config["device"])}
    doc = {"schema": COMPARE_SCHEMA, "config": {**config, "energy_source": ENERGY_SOURCE},
           "rows": [row_dict(r, config["length"]) for r in rows],
           "plots": {k: v.name for k, v in plots.items()}}
    json_path = out / "compare.json"
    golden.atomic_write_bytes(json_path, (json.dumps(doc, indent=1) + "\n").encode())
    md_path = out / "compare.md"
    golden.atomic_write_bytes(md_path, _markdown(rows, config, plots).encode())
    return json_path, md_path, plots, format_table(shown, config["target"], config["device"])
