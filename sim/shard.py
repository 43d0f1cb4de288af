"""Whole-dataset simulation on Dask: shards of sequences, one harness run each, merged in order.

:func:`simulate_shards` (used by ``sim.simulate(..., workers=N, scheduler=ADDRESS)``) splits the
stream at sequence boundaries into contiguous shards, runs each shard's harness as one Dask task
and merges the results in order with :func:`sim.fast.merge_runs`. Every shard after the first
repeats the sequence before it as warm-up (at least ``MIN_WARM_UP_STEPS`` timesteps), and runs
again with a longer one if that did not bring the design into the stream's state (the state
digests at its boundary differ), so the merged outputs, cycle stamps and toggle totals are those
of one uninterrupted run.

* The cluster: an embedded ``distributed.LocalCluster`` of ``workers`` single-threaded worker
  processes, started and stopped by the call; or an existing cluster given its scheduler address
  (``scheduler=``, or the ``SHIFTRNN_SCHEDULER`` environment variable in the CLI).
* The binary: the harness is built once (cached by content, :mod:`sim.harness`) by the caller;
  its bytes are broadcast to the workers, each writes them once under its own cache folder
  (named by their sha256) and runs them. Workers need no shared file system, only the same
  operating system and C++ run-time library as the caller, and the ``shiftrnn`` package.
* A worker that dies while it runs a shard: the scheduler runs the shard again on another
  worker (Dask's ``distributed.scheduler.allowed-failures``, 3 by default).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from golden import atomic_write_bytes
from golden.errors import ShiftrnnError

from .cache import cache_root
from .design import Design
from .fast import HarnessRun, Stream, max_cycles, merge_runs, run_harness, stream_file

__all__ = ["SCHEDULER_ENV", "ShardError", "dask_client", "plan_shards", "run_shard",
           "shard_count", "simulate_shards", "warm_up_sequences"]

#: Environment variable the CLI reads for a scheduler address.
SCHEDULER_ENV = "SHIFTRNN_SCHEDULER"
#: Every shard after the first repeats the sequence before it as warm-up. By default a worker
#: gets as many shards as keep those repeats within this share of the sequences...
WARM_UP_SHARE = 0.05
#: ... but at least one and at most this many (more shards: a finer progress bar and less to
#: run again after a lost worker, each at the cost of one more warm-up sequence).
MAX_SHARDS_PER_WORKER = 4
#: A warm-up is at least one sequence and at least this many timesteps (a design may keep
#: state from more than one timestep back, e.g. alternating state banks), ...
MIN_WARM_UP_STEPS = 8
#: ... and a shard whose warm-up did not bring the design into the stream's state (the digests
#: at its boundary differ: a register kept a value from further back) runs again with this many
#: times the warm-up sequences.
WARM_UP_GROWTH = 4
#: More shards when the input is large: a shard's input travels in its task, and Dask warns
#: about tasks over 10 MB (``distributed.admin.large-graph-warning-threshold``).
MAX_SHARD_BYTES = 8 << 20


class ShardError(ShiftrnnError, RuntimeError):
    """The Dask cluster could not be reached or started."""


def plan_shards(sequences: int, shards: int) -> list[tuple[int, int]]:
    """Split ``sequences`` into ``shards`` contiguous ranges ``[start, stop)`` of near-equal size
    (fewer when there are fewer sequences)."""
    shards = max(1, min(shards, sequences))
    edges = np.linspace(0, sequences, shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def warm_up_sequences(seq_len: int) -> int:
    """Sequences a shard first repeats: one, or more to make ``MIN_WARM_UP_STEPS``."""
    return max(1, -(-MIN_WARM_UP_STEPS // seq_len))


def shard_count(sequences: int, seq_len: int, workers: int, nbytes: int) -> int:
    """The default number of shards of ``sequences`` on ``workers`` workers: per worker, as
    many as keep the warm-ups (:func:`warm_up_sequences`) within ``WARM_UP_SHARE`` of the
    sequences (1 to ``MAX_SHARDS_PER_WORKER``); more if a shard's input (``nbytes`` in all)
    would exceed ``MAX_SHARD_BYTES``."""
    share = WARM_UP_SHARE * sequences / (workers * warm_up_sequences(seq_len))
    per_worker = min(MAX_SHARDS_PER_WORKER, max(1, int(share)))
    return max(per_worker * workers, -(-nbytes // MAX_SHARD_BYTES))


#: Dask settings of the embedded cluster's workers (``dask worker`` reads the same keys from
#: ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False`` and the like).
EMBEDDED_WORKER_CONFIG = {"distributed.worker.profile.enabled": False}


@contextlib.contextmanager
def dask_client(workers: int | None, scheduler: str | None):
    """A ``distributed.Client``: on ``scheduler`` if given, else on an embedded LocalCluster of
    ``workers`` single-threaded processes (closed on exit)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler)
        except (OSError, ValueError) as e:
            raise ShardError(f"cannot reach the Dask scheduler at {scheduler!r} ({e}); check "
                             "the address (tcp://HOST:PORT) or start one with `dask scheduler`"
                             ) from None
        with client:
            yield client
        return
    n = max(1, int(workers or os.cpu_count() or 1))
    # No dashboard; the scheduler's plain HTTP endpoints on a free local port (their default,
    # 8787, may belong to someone else's cluster). No statistical profiler in the workers (a
    # stack walk of the running task every 10 ms, for the dashboard): it slowed the flow's
    # pure-Python stages by 5-10 %. The nannies hand the setting to their worker processes.
    http = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}
    with dask.config.set(EMBEDDED_WORKER_CONFIG), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None, scheduler_kwargs=http,
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def _local_binary(binary: bytes, sha: str) -> Path:
    """The harness executable under this machine's cache (written once, atomically)."""
    path = cache_root() / "bin" / f"harness-{sha[:24]}"
    if not path.is_file():
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        atomic_write_bytes(part, binary)
        part.chmod(0o755)
        os.replace(part, path)
    return path


def run_shard(binary: bytes, sha: str, stream: bytes, *, out_words: int, budget: int,
              warm: int) -> HarnessRun:
    """One shard on a worker: the harness on its input stream (:func:`sim.fast.stream_file`)."""
    run = run_harness(_local_binary(binary, sha), stream, out_words=out_words, budget=budget)
    run.warm = warm
    return run


def simulate_shards(design: Design, folder: Path, beats: np.ndarray, seq_len: int, *,
                    workers: int | None, scheduler: str | None, shards: int | None = None,
                    progress: bool = False) -> tuple[Stream, int]:
    """Run the stream ``beats`` (:func:`sim.fast.stream_beats`) in shards on Dask.

    Every shard after the first starts with the sequences before it as warm-up
    (:func:`warm_up_sequences`). A shard whose first counted state differs from the previous
    shard's last (their digests) runs again with ``WARM_UP_GROWTH`` times the warm-up, until
    every boundary agrees: shard 0 starts from reset as the stream does, so by induction every
    shard then counts from the stream's own state (at worst a shard's warm-up grows to the
    whole stream before it).

    Parameters
    ----------
    design : Design
    folder : Path
        The harness build folder (:func:`sim.harness.fast_build`).
    beats : ndarray
        ``(sequences * seq_len, 1 + in_words)`` harness beats.
    seq_len : int
        Timesteps per sequence (shards split only between sequences).
    workers, scheduler
        See :func:`dask_client`; with a scheduler, ``workers`` only sizes the shard count.
    shards : int, optional
        Number of shards (default: :func:`shard_count`).
    progress : bool
        A progress bar over finished shard runs.

    Returns
    -------
    (Stream, int)
        The merged stream and the number of shards.
    """
    from tqdm import tqdm

    binary = (folder / "harness").read_bytes()
    sha = hashlib.sha256(binary).hexdigest()
    sequences = beats.shape[0] // seq_len
    with dask_client(workers, scheduler) as client:
        n_workers = workers or max(1, len(client.scheduler_info()["workers"]))
        plan = plan_shards(sequences, shards or shard_count(sequences, seq_len, n_workers,
                                                            beats.nbytes))
        warm = [min(warm_up_sequences(seq_len), start) for start, _ in plan]
        runs: list[HarnessRun | None] = [None] * len(plan)
        todo = list(range(len(plan)))
        job = _ShardJob(client, client.scatter(binary, broadcast=True), sha, design, beats,
                        seq_len, plan)
        with tqdm(total=len(plan), desc=f"simulate {design.name}", unit="shard",
                  disable=not progress) as bar:
            rerun_seconds = 0.0  # the harness loops of runs that were done again
            while todo:
                for k, run in job.run({k: warm[k] for k in todo}):
                    runs[k] = run
                    bar.update(1)
                todo = _short_warm_ups(runs, warm, plan)
                for k in todo:
                    warm[k] = min(plan[k][0], warm[k] * WARM_UP_GROWTH)
                    rerun_seconds += float(runs[k].info["seconds"])
                bar.total += len(todo)
    stream = merge_runs(runs, design.m_port.words)
    stream.seconds += rerun_seconds
    return stream, len(plan)


def _short_warm_ups(runs: list, warm: list[int], plan: list[tuple[int, int]]) -> list[int]:
    """Shards whose first counted state differs from the previous shard's last and whose
    warm-up can still grow (one that starts from the stream's start cannot differ)."""
    return [k for k in range(1, len(runs))
            if runs[k].info["start_digest"] != runs[k - 1].info["end_digest"]
            and warm[k] < plan[k][0]]


class _ShardJob:
    """Submits shard runs of one stream to a Dask client and yields them as they finish."""

    def __init__(self, client, shipped, sha: str, design: Design, beats: np.ndarray,
                 seq_len: int, plan: list[tuple[int, int]]):
        self.client, self.shipped, self.sha, self.design = client, shipped, sha, design
        self.beats, self.seq_len, self.plan = beats, seq_len, plan

    def run(self, warm_ups: dict[int, int]):
        """Run shards ``{index: warm-up sequences}``; yields ``(index, HarnessRun)``."""
        from distributed import as_completed

        futures = {}
        for k, warm in warm_ups.items():
            start, stop = self.plan[k]
            part = self.beats[(start - warm) * self.seq_len:stop * self.seq_len]
            stream = stream_file(part, warm=warm * self.seq_len,
                                 stop_at_last_in=k < len(self.plan) - 1)
            key = (f"shiftrnn-shard-{self.sha[:12]}-{k}-of-{len(self.plan)}-"
                   f"{hashlib.sha256(stream).hexdigest()[:16]}")
            # The stream goes in the task (the scheduler keeps it to rerun the shard elsewhere).
            fut = self.client.submit(run_shard, self.shipped, self.sha, stream,
                                     out_words=self.design.m_port.words,
                                     budget=max_cycles(self.design, part.shape[0]),
                                     warm=warm * self.seq_len, key=key)
            futures[fut] = k
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
