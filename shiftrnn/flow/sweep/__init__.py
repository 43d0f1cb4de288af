"""Design-space sweeps: many flow runs from one sweep file, on Dask, with a Pareto report.

``run_sweep(load_sweep("examples/sweeps/gru.toml"))`` expands the sweep file (a base flow
configuration and the values of its keys, :mod:`.spec`) to points, runs each point's flow on an
embedded ``distributed.LocalCluster`` or an existing Dask cluster (:mod:`.run`, through
:mod:`..points`), and writes ``results.jsonl``, ``results.csv`` (:mod:`.results`) and
``sweep.html`` with the Pareto fronts (:mod:`.report`).
"""

from .results import point_figures, read_rows
from .run import POINTS_DIR, SWEEP_FILE, SweepResult, run_point, run_sweep
from .spec import Sweep, SweepPoint, load_sweep, parse_sweep

__all__ = ["POINTS_DIR", "SWEEP_FILE", "Sweep", "SweepPoint", "SweepResult", "load_sweep",
           "parse_sweep", "point_figures", "read_rows", "run_point", "run_sweep"]
