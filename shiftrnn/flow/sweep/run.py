"""``run_sweep``: every point of a sweep as a flow run on Dask, the result table as they finish.

Each point is :func:`..run.run_flow` into its own folder ``OUT/points/NAME/`` (tasks of
:func:`..points.run_points` on an embedded LocalCluster or an existing cluster), so it keeps the
flow's content-hashed stages: a rerun skips what is unchanged, and points share a trained model
(the engine's stage cache) and Verilator and yosys builds (their caches). A point that fails is
a row with its one-line error; every finished point's row is on disk as soon as it finishes
(``results.jsonl``, ``results.csv``), and ``sweep.html`` is rebuilt at the end, also after
Ctrl-C.

The points run in two rounds, both tasks of one :class:`..points.DaskRunner`. The first runs a
point's flow up to its Verilog (:data:`DESIGN_STAGES`: training, quantization, generation; one
point per trained model first), and learns the design's size and content. The second, submitted
as soon as the first has finished (no barrier between the rounds), runs the rest of the flow;
among queued tasks the first rounds go first, then the largest Verilog. A point whose Verilog an
earlier point has waits until that point has finished, and then finds its builds, simulations
and syntheses in the caches instead of running them at the same time on another worker. With
``force`` the points run in one round (everything runs again anyway).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import golden

from ..engine import file_sha256, run_stages
from ..errors import FlowError
from ..points import Cluster, DaskRunner
from ..records import to_jsonable
from ..run import STAGE_NAMES, run_flow
from ..stages import STAGES
from .report import HTML_FILE, write_sweep_report
from .results import CSV_FILE, JSONL_FILE, point_figures, read_rows, write_tables
from .spec import Sweep, SweepPoint

__all__ = ["DESIGN_STAGES", "POINTS_DIR", "SWEEP_FILE", "PointDesign", "SweepResult",
           "prepare_point", "run_point", "run_sweep"]

#: Written first into the sweep folder: the expanded points (marks a folder the sweep made).
SWEEP_FILE = "sweep.json"
#: Sub-folder of the points' flow folders.
POINTS_DIR = "points"
LOG_FILE = "flow.log"
#: The stages of the first round: up to the point's Verilog.
DESIGN_STAGES = STAGES[:STAGE_NAMES.index("generate") + 1]


@dataclass(frozen=True)
class PointDesign:
    """What the first round learnt of a point (:func:`prepare_point`).

    Attributes
    ----------
    digest : str
        Content hash of its Verilog (and its baseline's): equal designs build, simulate and
        synthesize alike, from the same caches.
    verilog_bytes : int
        Size of its Verilog (the second round runs larger designs first).
    ran, reused : tuple of str
        Stages the first round ran, and took from the stage cache.
    seconds : float
        Wall-clock time of the first round's flow.
    lines : tuple of str
        Its lines of the point's ``flow.log``.
    """

    digest: str
    verilog_bytes: int
    ran: tuple[str, ...]
    reused: tuple[str, ...]
    seconds: float
    lines: tuple[str, ...]


@dataclass(frozen=True)
class SweepResult:
    """Outcome of :func:`run_sweep`.

    Attributes
    ----------
    sweep : Sweep
    folder : Path
        The sweep's output folder.
    rows : tuple of dict
        One row per point, in the sweep's order (:mod:`.results`).
    seconds : float
    cluster : str
        Where the points ran.
    """

    sweep: Sweep
    folder: Path
    rows: tuple[dict, ...]
    seconds: float
    cluster: str

    @property
    def failed(self) -> tuple[dict, ...]:
        return tuple(r for r in self.rows if r["status"] != "ok")

    @property
    def html(self) -> Path:
        return self.folder / HTML_FILE

    @property
    def csv(self) -> Path:
        return self.folder / CSV_FILE

    @property
    def jsonl(self) -> Path:
        return self.folder / JSONL_FILE

    def summary(self) -> str:
        """The lines printed at the end of ``shiftrnn sweep``."""
        n, bad = len(self.rows), len(self.failed)
        lines = [f"shiftrnn sweep {self.sweep.name}: {n} points, {n - bad} ok, {bad} failed, "
                 f"in {self.seconds:.1f} s on {self.cluster}"]
        for r in self.rows:
            if r["status"] == "ok":
                bpc = r.get("bpc_rtl")
                ran = ", ".join(r.get("ran", [])) or "nothing (unchanged)"
                lines.append(f"  {r['name']:<32} ok      RTL BPC "
                             f"{'n/a' if bpc is None else f'{bpc:.4f}'}; ran {ran}")
            else:
                lines.append(f"  {r['name']:<32} FAILED  {r.get('error')}")
        lines.append(f"  results  {self.csv} (and {JSONL_FILE}); {self.html}")
        return "\n".join(lines)


def prepare_point(cfg, out_dir: str, force: bool) -> PointDesign:
    """The first round of a point, on a worker: its flow's :data:`DESIGN_STAGES` into
    ``out_dir`` (lines in ``out_dir/flow.log``). Raises :class:`FlowError` when they fail."""
    lines: list[str] = []
    t0 = time.perf_counter()
    try:
        run = run_stages(cfg, DESIGN_STAGES, out_dir=out_dir, force=force, progress=False,
                         echo=lines.append)
    finally:
        _write_log(out_dir, lines)
    gen = run.results["generate"]
    verilog = [gen.verilog] + ([gen.baseline.verilog] if gen.baseline else [])
    digest = hashlib.sha256(" ".join(file_sha256(run.folder / f) for f in verilog).encode())
    return PointDesign(digest.hexdigest(), gen.verilog_bytes, tuple(run.ran),
                       tuple(run.reused), time.perf_counter() - t0, tuple(lines))


def run_point(cfg, out_dir: str, force: bool, design: PointDesign | None = None) -> dict:
    """One point, on a worker: the flow into ``out_dir``; the figures of its row.

    The flow's lines go to ``out_dir/flow.log``. ``design``: the point's first round
    (:func:`prepare_point`), whose stages and time the row includes. Raises :class:`FlowError`
    when the flow fails (the point's one-line error).
    """
    lines: list[str] = list(design.lines) if design else []
    try:
        res = run_flow(cfg, out_dir=out_dir, force=force, progress=False, echo=lines.append)
    except BaseException as e:
        lines.append(f"failed: {e}")
        raise
    finally:
        _write_log(out_dir, lines)
    row = point_figures(res)
    if design is not None:
        first = design.ran + design.reused
        row.update(ran=[*design.ran, *row["ran"]], reused=[*design.reused, *row["reused"]],
                   skipped=[s for s in row["skipped"] if s not in first],
                   flow_seconds=round(design.seconds + res.seconds, 3))
    return row


def _write_log(out_dir: str, lines: list[str]) -> None:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    golden.atomic_write_bytes(Path(out_dir) / LOG_FILE, "\n".join(lines).encode() + b"\n")


# ================================================================================== helpers
def _config_digest(point: SweepPoint) -> str | None:
    if point.config is None:
        return None
    doc = {"sections": to_jsonable(point.config.sections()), "text": point.config.text}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _row(point: SweepPoint, figures: dict | None, error: str | None, seconds: float) -> dict:
    return {"id": point.id, "name": point.name, "status": "ok" if error is None else "failed",
            **point.values, **(figures or {}), "seconds": round(seconds, 3),
            "config_digest": _config_digest(point), "error": error}


def _prepare(folder: Path, sweep: Sweep, force: bool) -> None:
    """Refuse a folder the sweep did not make (unless ``force``); write ``sweep.json``."""
    if folder.exists() and not folder.is_dir():
        raise FlowError(f"{folder} exists and is not a folder; choose another --out")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / SWEEP_FILE).is_file() \
            and not force:
        raise FlowError(f"{folder} exists and was not made by `shiftrnn sweep` (no "
                        f"{SWEEP_FILE}); pass --force to write into it, or choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"name": sweep.name, "source": sweep.source, "base": sweep.base.source,
           "keys": list(sweep.keys), "text": sweep.text,
           "points": [{"id": p.id, "name": p.name, "values": p.values, "error": p.error}
                      for p in sweep.points]}
    golden.atomic_write_bytes(folder / SWEEP_FILE,
                              (json.dumps(doc, indent=1, default=str) + "\n").encode())


def _training_first(points: list[SweepPoint]) -> list[SweepPoint]:
    """One point per distinct model (model and training keys) first, so that the points which
    share a trained model find it in the stage cache instead of waiting for it."""
    seen: dict[str, int] = {}
    ranked = []
    for i, p in enumerate(points):
        k = json.dumps([p.config.section("model"), p.config.section("train")], sort_keys=True,
                       default=str)
        seen[k] = seen.get(k, -1) + 1
        ranked.append((seen[k], i, p))
    return [p for _, _, p in sorted(ranked, key=lambda t: t[:2])]


def _cluster_name(client) -> str:
    n = len(client.scheduler_info()["workers"])
    kind = "a LocalCluster" if type(client.cluster).__name__ == "LocalCluster" else \
        f"the Dask cluster at {client.scheduler.address}"
    return f"{kind} of {n} worker{'s' if n != 1 else ''}"


#: Priority of the first round's tasks: above every second-round task (whose priority is its
#: Verilog's size in bytes).
FIRST_ROUND = 1 << 48


def _run_rounds(client, points: list[SweepPoint], folder: Path, force: bool, name: str,
                progress: bool, rows: dict, save: Callable[[], None]) -> None:
    """Both rounds of the points on ``client``, rows saved as points finish.

    A point's second round is submitted as soon as its first round has told its design (no
    barrier between the rounds); among queued tasks the first rounds go first, then the
    largest Verilog. A point whose Verilog an earlier point has waits until that point's second
    round has finished. With ``force``, one round.
    """
    from tqdm import tqdm

    runner = DaskRunner(client, f"sweep {name}")
    n = len(points)
    designs: dict[str, PointDesign] = {}
    twins: dict[str, list[int]] = {}  # digest -> points waiting for its first point's end

    def args(i: int) -> tuple:
        return points[i].config, str(folder / POINTS_DIR / points[i].name), force

    def second(i: int) -> None:
        d = designs[points[i].id]
        runner.submit(run_point, (*args(i), d), index=i, tag="second", priority=d.verilog_bytes)

    for i in range(n):
        fn = run_point if force else prepare_point
        runner.submit(fn, args(i), index=i, tag="first", priority=FIRST_ROUND + n - i)
    with tqdm(total=n, desc=f"sweep {name}", unit="point", disable=not progress) as bar:
        for tag, out in runner:
            p = points[out.index]
            if tag == "first" and out.ok and not force:
                d = designs[p.id] = out.value
                if d.digest in twins:
                    twins[d.digest].append(out.index)
                else:
                    twins[d.digest] = []
                    second(out.index)
                continue
            before = designs[p.id].seconds if p.id in designs else 0.0
            rows[p.id] = _row(p, out.value, out.error, before + out.seconds)
            save()
            bar.update(1)
            if tag == "second" and p.id in designs:
                for j in twins.pop(designs[p.id].digest, []):
                    second(j)


def run_sweep(sweep: Sweep, *, out=None, cluster: Cluster | None = None, force: bool = False,
              progress: bool = True, echo: Callable[[str], None] | None = None
              ) -> SweepResult:
    """Run every point of a sweep on Dask; write the result table and ``sweep.html``.

    Parameters
    ----------
    sweep : Sweep
        From :func:`load_sweep`.
    out : path-like, optional
        The sweep's folder (default ``rtl_out/NAME``): ``sweep.json``, ``results.jsonl``,
        ``results.csv``, ``sweep.html``, and each point's flow folder under ``points/NAME/``.
    cluster : Cluster, optional
        Where the points run (default ``Cluster()``: an embedded LocalCluster of one worker
        process per core). The workers of an existing cluster need the shiftrnn package and
        write the points' folders under the same path (a shared file system); the rows come
        back to this process.
    force : bool
        Run every stage of every point again (the flow's ``--force``), and write into a folder
        the sweep did not make.
    progress : bool
        A progress bar over points (stderr).
    echo : callable, optional
        Receives the line saying where the points run (default: print).

    Returns
    -------
    SweepResult

    Raises
    ------
    FlowError
        The output folder belongs to something else. A point's failure is not raised: it is
        its row's ``error``.
    sim.shard.ShardError
        The scheduler cannot be reached.
    KeyboardInterrupt
        After writing the table and ``sweep.html`` of every point finished so far.
    """
    echo = echo or (lambda s: print(s, flush=True))
    folder = Path(out if out is not None else Path("rtl_out") / sweep.name).resolve()
    _prepare(folder, sweep, force)
    digest = {p.id: _config_digest(p) for p in sweep.points}
    # Rows of earlier runs stay while their points' configurations are unchanged (an
    # interrupted rerun keeps them); a point that finishes replaces its row.
    rows = {r["id"]: r for r in read_rows(folder)
            if r["id"] in digest and r.get("config_digest") == digest[r["id"]]}
    rows.update({p.id: _row(p, None, p.error, 0.0) for p in sweep.points if p.config is None})
    runnable = _training_first([p for p in sweep.points if p.config is not None])

    def ordered() -> list[dict]:
        return [rows[p.id] for p in sweep.points if p.id in rows]

    def save() -> None:
        write_tables(folder, ordered(), sweep.keys)

    save()
    t0, seconds, where = time.perf_counter(), None, "no cluster (no point to run)"
    try:
        if runnable:
            with (cluster or Cluster()).client() as client:
                where = _cluster_name(client)
                echo(f"shiftrnn sweep {sweep.name}: {len(runnable)} points on {where} -> "
                     f"{folder}")
                _run_rounds(client, runnable, folder, force, sweep.name, progress, rows, save)
        seconds = time.perf_counter() - t0
    finally:
        write_sweep_report(folder, sweep, ordered(), seconds)
        if seconds is None:
            echo(f"shiftrnn sweep {sweep.name}: stopped; the {len(rows)} finished points are in "
                 f"{folder / CSV_FILE} and {folder / HTML_FILE}; run it again to finish")
    return SweepResult(sweep, folder, tuple(ordered()), seconds, where)
