"""``shiftrnn sweep SWEEP.toml``: a design-space sweep, every point a flow run on Dask."""

from __future__ import annotations

import sys

from .options import add_cluster_options, add_output_options

__all__ = ["register"]


def _sweep(args) -> int:
    """Run every point of a sweep file (a base flow configuration and lists of values for its
    keys, see examples/sweeps/gru.toml) as a flow on Dask: an embedded LocalCluster of one
    worker process per core, started and stopped by the command, or an existing cluster with
    --scheduler (or $SHIFTRNN_SCHEDULER). Each point is a flow folder under OUT/points/; a rerun
    computes only new or changed points, and points share trained models and Verilator and
    yosys builds. A failing point is recorded with its error and the others go on. Writes
    results.jsonl, results.csv (one row per point, as each finishes) and sweep.html (Pareto
    plots). Exits with 1 when a point failed."""
    from .flow.points import Cluster
    from .flow.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    res = run_sweep(sweep, out=args.out, cluster=Cluster.from_options(args.workers,
                                                                      args.scheduler),
                    force=args.force, progress=not args.no_progress and sys.stderr.isatty())
    print(res.summary())
    return 1 if res.failed else 0


def register(sub) -> None:
    """Add ``sweep`` to the ``shiftrnn`` parser."""
    p = sub.add_parser("sweep", help="a design-space sweep: many flow runs on Dask, Pareto plots",
                       description=_sweep.__doc__)
    p.add_argument("sweep", metavar="SWEEP.toml")
    add_cluster_options(p, what="run the points")
    p.add_argument("--out", metavar="DIR",
                   help="the sweep's folder (default: rtl_out/NAME, NAME from the sweep file)")
    add_output_options(p, force="run every stage of every point again, and write into a "
                                "folder the sweep did not make",
                       progress="no progress bar")
    p.set_defaults(func=_sweep)
