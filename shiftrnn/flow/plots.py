"""The report's plots: training curve, accuracy, resources, energy (matplotlib, off-screen)."""

from __future__ import annotations

from pathlib import Path

from .diagram import figure, save_figure

__all__ = ["COLORS", "plot_accuracy", "plot_energy", "plot_resources", "plot_training"]

COLORS = {"shiftrnn": "#2a7ab0", "mult": "#d08a2c", "int8-mult": "#d08a2c",
          "float32": "#b04a4a", "activity": "#5aa05a", "float": "#7f7f7f"}


def plot_training(m, path: Path) -> bool:
    """Training and validation BPC per epoch (a :class:`ModelResult`); False: no curve."""
    if not m.epochs:
        return False
    fig = figure(6.4, 3.2)
    ax = fig.add_subplot()
    ax.plot([r.epoch for r in m.epochs], [r.train_bpc for r in m.epochs],
            label="train (quantized, running)", color=COLORS["shiftrnn"])
    val = [(r.epoch, r.valid_bpc) for r in m.epochs if r.valid_bpc is not None]
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="valid", color=COLORS["mult"])
    fv = [(r.epoch, r.valid_bpc) for r in m.float_epochs if r.valid_bpc is not None]
    if fv:
        ax.plot(*zip(*fv, strict=True), "s--", label="valid, float network",
                color=COLORS["float"])
    if m.selected_epoch:
        ax.axvline(m.selected_epoch, color="#999", lw=0.8, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per character")
    ax.set_title("Quantization-aware training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def plot_accuracy(rows: list[tuple[str, float | None]], metric: str, path: Path) -> bool:
    """Horizontal bars of the metric per evaluation; False: nothing measured."""
    rows = [(k, v) for k, v in rows if v is not None]
    if not rows:
        return False
    fig = figure(6.4, 2.8)
    ax = fig.add_subplot()
    names = [k for k, _ in rows]
    vals = [v for _, v in rows]
    colors = [COLORS["float"] if "float net" in k else COLORS["activity"] if "RTL" in k
              else COLORS["shiftrnn"] for k in names]
    bars = ax.barh(range(len(vals)), vals, color=colors)
    ax.set_yticks(range(len(vals)), names, fontsize=8)
    ax.invert_yaxis()
    for b, v in zip(bars, vals, strict=True):
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:.4f}", va="center",
                fontsize=8)
    ax.set_xlim(0, max(vals) * 1.18)
    ax.set_xlabel(metric + (" (lower is better)" if metric == "BPC" else ""))
    ax.set_title("Accuracy: float, quantized, integer golden, RTL", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)
    return True


#: Resources shown per target: (SynthFigures field, label).
RESOURCES = {"generic": (("cells_total", "cells"), ("ff", "FF"))}
FPGA_RESOURCES = (("lut", "LUT"), ("ff", "FF"), ("carry", "carry"), ("bram", "BRAM"),
                  ("dsp", "DSP"))


def resources_of(target: str) -> tuple[tuple[str, str], ...]:
    """The resources a target's table and plot show."""
    return RESOURCES.get(target, FPGA_RESOURCES)


def plot_resources(synth: dict, path: Path) -> bool:
    """Bars per resource and target, shiftrnn beside the multiplier baseline."""
    if not synth:
        return False
    targets = list(synth)
    fig = figure(3.2 * len(targets) + 0.4, 3.0)
    axes = fig.subplots(1, len(targets), squeeze=False)[0]
    for ax, t in zip(axes, targets, strict=True):
        d, keys = synth[t], resources_of(t)
        designs = [k for k in ("shiftrnn", "mult") if k in d]
        width = 0.8 / len(designs)
        for i, des in enumerate(designs):
            xs = [j + (i - (len(designs) - 1) / 2) * width for j in range(len(keys))]
            vals = [getattr(d[des], k) for k, _ in keys]
            bars = ax.bar(xs, vals, width, color=COLORS[des],
                          label="shiftrnn (shift-add)" if des == "shiftrnn" else
                          "multiplier baseline")
            ax.bar_label(bars, [f"{v:,}" for v in vals], fontsize=6, rotation=90, padding=2)
        ax.margins(y=0.25)
        ax.set_xticks(range(len(keys)), [lab for _, lab in keys], fontsize=8)
        ax.set_title(t, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Resources after synthesis (yosys)", fontsize=10)
    save_figure(fig, path)
    return True


ENERGY_ORDER = ("shiftrnn", "activity", "int8-mult", "float32")


def plot_energy(energy: dict, path: Path) -> bool:
    """Energy per timestep of the design (op counts, toggles) and the baselines, log scale."""
    if not energy:
        return False
    order = [k for k in ENERGY_ORDER if k in energy]
    names = {"shiftrnn": "shiftrnn (op counts)", "activity": "shiftrnn (RTL toggles, relative)",
             "int8-mult": "int8 multiplier baseline", "float32": "float32 baseline"}
    vals = [energy[k].per_timestep_pj for k in order]
    fig = figure(6.4, 2.6)
    ax = fig.add_subplot()
    bars = ax.barh(range(len(order)), vals, color=[COLORS[k] for k in order])
    ax.bar_label(bars, [f" {v:,.1f} pJ" for v in vals], fontsize=8)
    ax.set_yticks(range(len(order)), [names[k] for k in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min(vals) / 3, max(vals) * 20)
    ax.set_xlabel("energy per timestep, pJ (Horowitz 45 nm; log scale)")
    ax.set_title("Energy per timestep beside the baselines", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)
    return True
