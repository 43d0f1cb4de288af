"""Whole-dataset simulation on Dask: shards of sequences, one harness run each, merged in order.

:func:`simulate_shards` (used by ``sim.simulate(..., workers=N, scheduler=ADDRESS)``) splits the
stream at sequence boundaries into contiguous shards, runs each shard's harness as one Dask task
and merges the results in order with :func:`sim.fast.merge_runs`. Every shard after the first
repeats the sequence before it as warm-up (about one sequence of extra simulation per shard), so
the merged outputs, cycle stamps and toggle totals are those of one uninterrupted run.

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
           "shard_count", "simulate_shards"]

#: Environment variable the CLI reads for a scheduler address.
SCHEDULER_ENV = "SHIFTRNN_SCHEDULER"
#: Every shard after the first repeats the sequence before it as warm-up. By default a worker
#: gets as many shards as keep those repeats within this share of the sequences...
WARM_UP_SHARE = 0.05
#: ... but at least one and at most this many (more shards: a finer progress bar and less to
#: run again after a lost worker, each at the cost of one more warm-up sequence).
MAX_SHARDS_PER_WORKER = 4
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


def shard_count(sequences: int, workers: int, nbytes: int) -> int:
    """The default number of shards of ``sequences`` on ``workers`` workers: per worker, as
    many as keep the warm-ups within ``WARM_UP_SHARE`` of the sequences (1 to
    ``MAX_SHARDS_PER_WORKER``); more if a shard's input (``nbytes`` in all) would exceed
    ``MAX_SHARD_BYTES``."""
    per_worker = min(MAX_SHARDS_PER_WORKER, max(1, int(WARM_UP_SHARE * sequences / workers)))
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
        A progress bar over finished shards.

    Returns
    -------
    (Stream, int)
        The merged stream and the number of shards.
    """
    from distributed import as_completed
    from tqdm import tqdm

    binary = (folder / "harness").read_bytes()
    sha = hashlib.sha256(binary).hexdigest()
    sequences = beats.shape[0] // seq_len
    out_words = design.m_port.words
    with dask_client(workers, scheduler) as client:
        n_workers = workers or max(1, len(client.scheduler_info()["workers"]))
        plan = plan_shards(sequences, shards or shard_count(sequences, n_workers, beats.nbytes))
        shipped = client.scatter(binary, broadcast=True)
        futures = {}
        for k, (start, stop) in enumerate(plan):
            first = start - 1 if k else start  # the sequence before: warm-up
            part = beats[first * seq_len:stop * seq_len]
            warm = (start - first) * seq_len
            stream = stream_file(part, warm=warm, stop_at_last_in=k < len(plan) - 1)
            key = (f"shiftrnn-shard-{sha[:12]}-{k}-of-{len(plan)}-"
                   f"{hashlib.sha256(stream).hexdigest()[:16]}")
            # The stream goes in the task (the scheduler keeps it to rerun the shard elsewhere).
            fut = client.submit(run_shard, shipped, sha, stream, out_words=out_words,
                                budget=max_cycles(design, part.shape[0]), warm=warm, key=key)
            futures[fut] = k
        runs: list[HarnessRun | None] = [None] * len(plan)
        bar = tqdm(total=len(plan), desc=f"simulate {design.name}", unit="shard",
                   disable=not progress)
        with bar:
            for fut in as_completed(futures):
                runs[futures[fut]] = fut.result()
                bar.update(1)
    return merge_runs(runs, out_words), len(plan)
