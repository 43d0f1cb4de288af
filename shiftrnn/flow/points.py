"""Independent pieces of work ("points") run on Dask: the runner of ``shiftrnn sweep`` (a
point is a flow run, in two tasks) and ``shiftrnn compare`` (a point is one variant's design,
estimate and accuracy).

:class:`Cluster` names where points run (an embedded ``LocalCluster``, started and stopped with
the block, or an existing cluster's scheduler) and gives a ``distributed.Client`` on it through
:func:`sim.shard.dask_client`, which sharded simulation uses too. :func:`run_points` submits one
task per point and yields each :class:`Outcome` as it finishes, with a progress bar; through
:class:`DaskRunner`, which also takes tasks submitted while others run (a sweep point's second
task):

* a point that raises a :class:`~golden.errors.ShiftrnnError` (a flow error, a bad combination:
  it would fail the same way again) is an outcome with its one-line error, not retried;
* any other exception is retried ``retries`` times by Dask (:data:`RETRIES`), then an outcome
  with its one-line error;
* a point whose worker dies is rescheduled on another worker by the scheduler (up to
  ``distributed.scheduler.allowed-failures`` times, 3 by default), then an outcome saying so.

Without a client (``client=None``) the points run one after another in this process: the flow's
estimate stage runs its ``[compare]`` variants so (it may itself be a sweep point on a worker).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from golden.errors import ShiftrnnError

__all__ = ["RETRIES", "Cluster", "DaskRunner", "Outcome", "error_line", "run_points"]

#: Dask retries of a point that raised something other than a ShiftrnnError.
RETRIES = 2


def error_line(e: BaseException) -> str:
    """An exception as one line: its message (with the type when it is not one of ours)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, ShiftrnnError) else f"{type(e).__name__}: {text}"


@dataclass(frozen=True)
class Outcome:
    """One finished point.

    Attributes
    ----------
    index : int
        The point's position in the submitted sequence.
    value : object or None
        What the point's function returned (None when it failed).
    error : str or None
        The one-line error of a failed point.
    seconds : float
        Wall-clock time of the successful (or last) attempt on its worker.
    """

    index: int
    value: object
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


def _attempt(fn: Callable, args: tuple) -> tuple[object, str | None, float]:
    """Run one point; a ShiftrnnError comes back as its line (not retried), anything else
    raises (Dask retries it)."""
    t0 = time.perf_counter()
    try:
        return fn(*args), None, time.perf_counter() - t0
    except ShiftrnnError as e:
        return None, error_line(e), time.perf_counter() - t0


@dataclass(frozen=True)
class Cluster:
    """Where points run on Dask: the existing cluster at ``scheduler`` (``tcp://HOST:8786``), or
    else an embedded LocalCluster of ``workers`` single-threaded worker processes (default: one
    per core), started and stopped with :meth:`client`."""

    workers: int | None = None
    scheduler: str | None = None

    @classmethod
    def from_options(cls, workers: int | None, scheduler: str | None) -> Cluster:
        """The command line's ``--workers`` and ``--scheduler`` (default
        ``$SHIFTRNN_SCHEDULER``, the variable ``shiftrnn simulate`` reads too)."""
        from sim.shard import SCHEDULER_ENV

        return cls(workers, scheduler or os.environ.get(SCHEDULER_ENV) or None)

    @contextlib.contextmanager
    def client(self):
        """A ``distributed.Client`` on the cluster (:func:`sim.shard.dask_client`), closed on
        exit (an embedded cluster is stopped).

        Raises
        ------
        sim.shard.ShardError
            The scheduler cannot be reached (one line naming the address and the fix).
        """
        from sim.shard import dask_client

        with dask_client(self.workers, self.scheduler) as client:
            yield client


def _local(fn: Callable, points: Sequence[tuple]) -> Iterator[Outcome]:
    for index, args in enumerate(points):
        t0 = time.perf_counter()
        try:
            value, error, seconds = _attempt(fn, args)
        except Exception as e:  # noqa: BLE001 -- recorded as the point's error
            value, error, seconds = None, error_line(e), time.perf_counter() - t0
        yield Outcome(index, value, error, seconds)


def run_points(fn: Callable, points: Sequence[tuple], *, client=None, desc: str = "points",
               unit: str = "point", progress: bool = True, retries: int = RETRIES
               ) -> Iterator[Outcome]:
    """Run ``fn(*args)`` for every ``args`` in ``points``; yield outcomes as they finish.

    Parameters
    ----------
    fn : callable
        A module-level function (pickled to the workers), returning something picklable.
    points : sequence of tuple
        The arguments of each point, in priority order.
    client : distributed.Client, optional
        Run on its cluster (:meth:`Cluster.client`); None: one after another in this process.
    desc, unit : str
        Progress bar label and unit.
    progress : bool
        A progress bar over finished points (stderr).
    retries : int
        Dask retries of a point that raised something other than a ShiftrnnError.

    Yields
    ------
    Outcome
        In the order the points finish (``index`` says which).
    """
    from tqdm import tqdm

    outcomes = _local(fn, points) if client is None else _on_dask(fn, points, client, desc,
                                                                   retries)
    with tqdm(total=len(points), desc=desc, unit=unit, disable=not progress) as bar:
        for outcome in outcomes:
            bar.update(1)
            yield outcome


class DaskRunner:
    """Points submitted to Dask while others run; outcomes as they finish (the one place that
    turns a Dask future into an :class:`Outcome`).

    :meth:`submit` may be called while iterating, e.g. for work that an outcome makes ready.
    Among queued points a higher ``priority`` goes first.
    """

    def __init__(self, client, desc: str, retries: int = RETRIES):
        from distributed import as_completed

        self.client, self.retries = client, retries
        self.label = "".join(c if c.isalnum() else "-" for c in desc)  # in the tasks' keys
        self.run = uuid.uuid4().hex[:8]
        self.pending = as_completed()
        self.tags: dict = {}

    def submit(self, fn: Callable, args: tuple, *, index: int, tag=None, priority: int = 0
               ) -> None:
        """Run ``fn(*args)`` on the cluster; its outcome carries ``index`` and comes with
        ``tag``."""
        fut = self.client.submit(_attempt, fn, args, retries=self.retries, priority=priority,
                                 key=f"shiftrnn-{self.label}-{self.run}-{len(self.tags)}",
                                 pure=False)
        self.tags[fut.key] = (index, tag)
        self.pending.add(fut)

    def __iter__(self) -> Iterator[tuple[object, Outcome]]:
        """``(tag, outcome)`` of every submitted point, in the order they finish."""
        from distributed.scheduler import KilledWorker

        for fut in self.pending:
            index, tag = self.tags[fut.key]
            try:
                value, error, seconds = fut.result()
            except KilledWorker as e:
                value, error, seconds = None, (f"its worker died {e.allowed_failures + 1} "
                                               "times while running it (out of memory?)"), 0.0
            except Exception as e:  # noqa: BLE001 -- the point's error after Dask's retries
                value, error, seconds = None, error_line(e), 0.0
            fut.release()
            yield tag, Outcome(index, value, error, seconds)


def _on_dask(fn: Callable, points: Sequence[tuple], client, desc: str, retries: int
             ) -> Iterator[Outcome]:
    runner = DaskRunner(client, desc, retries)
    n = len(points)
    # Earlier points first (priority): the caller lists them in the order it wants.
    for i, args in enumerate(points):
        runner.submit(fn, args, index=i, priority=n - i)
    for _, outcome in runner:
        yield outcome
