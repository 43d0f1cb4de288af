"""``sweep.html``: the sweep's Pareto plots (BPC vs area, energy per timestep vs BPC, throughput
vs area) with the Pareto-optimal points marked, and the table of every point. Self-contained
like ``report.html`` (the plots are embedded): it opens offline."""

from __future__ import annotations

import os
from pathlib import Path

import golden

from ..diagram import figure, save_figure
from ..document import Doc, fmt, fmt_bpc
from ..plots import COLORS
from .results import Axis, pareto, pareto_plots
from .spec import Sweep

__all__ = ["HTML_FILE", "write_sweep_report"]

HTML_FILE = "sweep.html"
IMG_DIR = "img"


def _plot(title: str, x: Axis, y: Axis, shown: list[dict], front: list[dict], path: Path
          ) -> None:
    fig = figure(6.4, 4.0)
    ax = fig.add_subplot()
    pts = [(x.value(r), y.value(r)) for r in shown]
    ax.scatter(*zip(*pts, strict=True), s=18, color=COLORS["float"], alpha=0.6, label="point")
    line = sorted((x.value(r), y.value(r), r["name"]) for r in front)
    ax.plot([p[0] for p in line], [p[1] for p in line], "o-", drawstyle="steps-post",
            color=COLORS["shiftrnn"], ms=6, label="Pareto-optimal")
    for px, py, name in line:
        ax.annotate(name, (px, py), fontsize=6, xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel(x.label + (" (lower is better)" if x.lower_is_better else ""))
    ax.set_ylabel(y.label + (" (lower is better)" if y.lower_is_better else
                             " (higher is better)"))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def _pareto_section(d: Doc, folder: Path, ok: list[dict]) -> dict[str, list[str]]:
    """Plots and fronts; returns point name -> the plots it is Pareto-optimal in."""
    marks: dict[str, list[str]] = {}
    d.h(2, "Pareto fronts")
    for i, (title, x, y) in enumerate(pareto_plots(ok), 1):
        shown = [r for r in ok if x is not None and y is not None and x.value(r) is not None
                 and y.value(r) is not None]
        if not shown:
            d.p(f"**{title}**: no point has both figures (LUTs need a synthesis target, BPC a "
                "text to evaluate on, timesteps/s a place-and-route device).")
            continue
        front = pareto(ok, x, y)
        rel = f"{IMG_DIR}/pareto_{i}.png"
        _plot(title, x, y, shown, front, folder / rel)
        d.img(rel, f"{i}. {title}: {len(front)} Pareto-optimal of {len(shown)} points")
        for r in front:
            marks.setdefault(r["name"], []).append(str(i))
    return marks


def _table(d: Doc, sweep: Sweep, rows: list[dict], marks: dict, folder: Path) -> None:
    area = next((a for _, a, _ in pareto_plots(rows) if a is not None), None)
    speed = pareto_plots(rows)[2][2]
    head = ["point", "status", *sweep.keys, "BPC RTL", area.label if area else "area",
            "cycles/timestep", speed.label if speed else "timesteps/s", "pJ/timestep",
            "Pareto", "report"]
    body = []
    for r in rows:
        link = f"[report]({os.path.relpath(r['report'], folder)})" if r.get("report") else "-"
        body.append([r["name"], r["status"], *(fmt(r.get(k)) for k in sweep.keys),
                     fmt_bpc(r.get("bpc_rtl")), fmt(area.value(r) if area else None),
                     fmt(r.get("cycles_per_timestep")), fmt(speed.value(r) if speed else None),
                     fmt(r.get("energy_pj_per_timestep")), ", ".join(marks.get(r["name"], []))
                     or "-", link])
    d.table(head, body, "ll" + "l" * len(sweep.keys) + "rrrrrll")


def write_sweep_report(folder: Path, sweep: Sweep, rows: list[dict], seconds: float | None
                       ) -> Path:
    """Write ``sweep.html`` (and its plots under ``img/``) into the sweep folder.

    Parameters
    ----------
    folder : Path
        The sweep's output folder.
    sweep : Sweep
    rows : list of dict
        The result rows (:mod:`.results`), in the sweep's order; unfinished points absent.
    seconds : float or None
        Wall-clock time of the run (None: interrupted).
    """
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] != "ok"]
    d = Doc()
    d.h(1, f"shiftrnn sweep: {sweep.name}")
    if sweep.description:
        d.p(sweep.description)
    done = "interrupted" if seconds is None else f"done in {seconds:.1f} s"
    d.p(f"{len(sweep.points)} points from `{Path(sweep.source).name}` over the base "
        f"configuration `{Path(sweep.base.source).name}`, swept keys "
        f"{', '.join(f'`{k}`' for k in sweep.keys) or 'none'}: {len(ok)} ok, {len(failed)} "
        f"failed, {len(sweep.points) - len(rows)} not finished ({done}). The table of record "
        "is `results.jsonl` (also `results.csv`).")
    marks = _pareto_section(d, folder, ok)
    d.h(2, "Points")
    d.p("Pareto: the plots (1: BPC vs area, 2: energy vs BPC, 3: throughput vs area) in which "
        "no other point is at least as good on both axes and better on one.")
    _table(d, sweep, rows, marks, folder)
    if failed:
        d.h(2, "Failed points")
        d.bullets([f"`{r['name']}`: {r.get('error')}" for r in failed])
    d.h(2, "Sweep file")
    d.code(sweep.text, "toml")
    path = folder / HTML_FILE
    golden.atomic_write_bytes(path, d.html(f"shiftrnn sweep: {sweep.name}", folder).encode())
    return path
