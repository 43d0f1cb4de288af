"""A sweep's result table: one row per point, ``results.jsonl`` and ``results.csv``, and the
Pareto fronts.

A row is the point's id, name, status (``ok`` or ``failed``) and one-line error, its swept
values (``"model.method": "binary"``), and the figures of its flow run (:func:`point_figures`):
BPC (or accuracy) of golden's float and integer paths and of the RTL, cycles per timestep,
LUT/FF/BRAM/DSP per synthesis target, fit, fmax and timesteps/s per place-and-route device,
energy per timestep, which stages ran. ``results.jsonl`` is the table of record (rewritten
atomically whenever a point finishes); ``results.csv`` and ``sweep.html`` are rebuilt from it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import golden

from ..run import FlowResult

__all__ = ["CSV_FILE", "JSONL_FILE", "Axis", "pareto", "pareto_plots", "point_figures",
           "read_rows", "write_tables"]

JSONL_FILE = "results.jsonl"
CSV_FILE = "results.csv"
_FIRST = ("id", "name", "status")
_AREA_TARGETS = ("ice40", "ecp5", "xilinx7")


def point_figures(res: FlowResult) -> dict:
    """The measured part of a point's row, from its flow run (on the worker)."""
    q, g, s, e = (res.inputs.quantize, res.inputs.generate, res.inputs.simulate,
                  res.inputs.estimate)
    metric = {"BPC": "bpc", "accuracy": "accuracy"}.get(q.metric or "")
    row: dict = {"cell": q.info.cell, "method": q.info.method, "hidden": q.info.hidden_size,
                 "lanes": g.lanes, "unrolled": g.unrolled, "datapath": g.datapath,
                 "metric": q.metric}
    for m in ("bpc", "accuracy"):
        for path, v in (("float", q.golden_float), ("int", q.golden_int), ("rtl", s.rtl)):
            row[f"{m}_{path}"] = v if m == metric else None
    row["cycles_per_timestep"] = g.cycles_per_timestep
    for target, designs in e.synth.items():
        r = designs["shiftrnn"]
        row.update({f"{target}_lut": r.lut, f"{target}_ff": r.ff, f"{target}_bram": r.bram,
                    f"{target}_dsp": r.dsp, f"{target}_cells": r.cells_total})
    row["multiplier_free"] = e.multiplier_free if e.synth else None
    for dev, designs in e.pnr.items():
        p, t = designs["shiftrnn"], e.throughput.get(dev)
        row.update({f"{dev}_fits": p.fits, f"{dev}_fmax_mhz": p.fmax_mhz,
                    f"{dev}_timesteps_per_s": None if t is None else t.timesteps_per_s})
    row["energy_pj_per_timestep"] = e.energy["shiftrnn"].per_timestep_pj
    row.update(ran=list(res.ran), reused=list(res.reused), skipped=list(res.skipped),
               flow_seconds=round(res.seconds, 3), report=str(res.report_html))
    return row


# ================================================================================ the files
def read_rows(folder: Path) -> list[dict]:
    """The rows of ``results.jsonl`` (``[]`` without one; unreadable lines are dropped)."""
    path = Path(folder) / JSONL_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            rows.append(row)
    return rows


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, list | dict):
        return json.dumps(v)
    return str(v)


def write_tables(folder: Path, rows: list[dict], keys: tuple[str, ...]) -> None:
    """``results.jsonl`` (one JSON object per row) and ``results.csv`` (columns: id, name,
    status, the swept keys, every figure any row has, then error), each written atomically."""
    folder = Path(folder)
    text = "".join(json.dumps(r, default=str) + "\n" for r in rows)
    golden.atomic_write_bytes(folder / JSONL_FILE, text.encode())
    cols = [*_FIRST, *keys]
    for r in rows:
        cols += [k for k in r if k not in cols and k != "error"]
    cols.append("error")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    w.writerows([[_cell(r.get(c)) for c in cols] for r in rows])
    golden.atomic_write_bytes(folder / CSV_FILE, buf.getvalue().encode())


# ================================================================================= Pareto
@dataclass(frozen=True)
class Axis:
    """One figure of the rows as a plot axis: its column, label and direction."""

    column: str
    label: str
    lower_is_better: bool

    def value(self, row: dict) -> float | None:
        v = row.get(self.column)
        return None if v is None or isinstance(v, bool) else float(v)


def area_axis(rows: list[dict]) -> Axis | None:
    """LUTs of the first FPGA target the rows have (else generic cells)."""
    for t in _AREA_TARGETS:
        if any(r.get(f"{t}_lut") for r in rows):
            return Axis(f"{t}_lut", f"LUTs ({t})", True)
    if any(r.get("generic_cells") for r in rows):
        return Axis("generic_cells", "cells (generic)", True)
    return None


def speed_axis(rows: list[dict]) -> Axis | None:
    """Timesteps per second on the first place-and-route device the rows have."""
    for k in dict.fromkeys(k for r in rows for k in r if k.endswith("_timesteps_per_s")):
        if any(r.get(k) for r in rows):
            return Axis(k, f"timesteps/s ({k.removesuffix('_timesteps_per_s')})", False)
    return None


BPC = Axis("bpc_rtl", "BPC of the RTL", True)
ENERGY = Axis("energy_pj_per_timestep", "energy per timestep (pJ, op counts)", True)


def pareto_plots(rows: list[dict]) -> list[tuple[str, Axis | None, Axis | None]]:
    """The three Pareto plots: (title, x, y); an axis is None when no row has the figure."""
    area = area_axis(rows)
    return [("BPC vs area", area, BPC), ("energy per timestep vs BPC", BPC, ENERGY),
            ("throughput vs area", area, speed_axis(rows))]


def pareto(rows: list[dict], x: Axis, y: Axis) -> list[dict]:
    """The rows no other row beats on both axes (ties kept), among rows with both figures."""
    def key(r):
        return tuple(v if a.lower_is_better else -v for a, v in ((x, x.value(r)), (y, y.value(r))))

    have = [r for r in rows if x.value(r) is not None and y.value(r) is not None]
    front = []
    for r in have:
        a = key(r)
        if not any(b[0] <= a[0] and b[1] <= a[1] and b != a for b in map(key, have)):
            front.append(r)
    return front
