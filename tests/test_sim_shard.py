"""Sharded fast-path simulation on Dask: bit for bit the same as one harness run.

A LocalCluster of two worker processes (embedded, started and stopped by ``sim.simulate``), a
real ``dask scheduler`` with two ``dask worker`` processes on 127.0.0.1 started by the test, and
a worker killed while it runs a shard. The designs are small (a generated 16-unit GRU language
model on 4 lanes, 115 cycles per timestep; the hand-written ``runsum`` fixture).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import Background

import golden
import hw
import sim
from sim.cache import cache_root
from sim.shard import dask_client, plan_shards, shard_count

FIXTURE = Path(__file__).parent / "data" / "sim" / "runsum"


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> sim.Design:
    """GRU, ternary, token input 16, hidden 16, head 16, folded on 4 lanes."""
    model = golden.Model.random("gru", "ternary", 16, 16, output_size=16, input_kind="token",
                                seed=0)
    d = hw.generate(model, out_dir=tmp_path_factory.mktemp("shard") / "gru", lanes=4)
    return sim.Design(d)


def tokens(design: sim.Design, batch: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, design.model.input_size, size=(batch, length))


def assert_same_run(one: sim.SimResult, many: sim.SimResult) -> None:
    """Everything a run reports about the design, bit for bit."""
    assert one.golden_equal and one.timing_ok, one.message
    assert many.golden_equal and many.timing_ok, many.message
    assert many.shards > 1 and many.toggles_exact
    assert np.array_equal(one.outputs, many.outputs)
    assert one.cycles == many.cycles
    assert np.array_equal(one.in_cycles, many.in_cycles)
    assert np.array_equal(one.out_cycles, many.out_cycles)
    assert one.toggles == many.toggles
    assert one.toggle_bits == many.toggle_bits
    assert one.bpc == many.bpc


def test_plan_shards_splits_at_sequences():
    assert plan_shards(10, 4) == [(0, 2), (2, 5), (5, 8), (8, 10)]
    assert plan_shards(3, 8) == [(0, 1), (1, 2), (2, 3)]
    assert plan_shards(5, 1) == [(0, 5)]



def _profiling(dask_worker) -> bool:
    return "profile" in dask_worker.periodic_callbacks


def test_embedded_workers_run_without_the_profiler():
    """The embedded cluster's workers do not sample the running task's stack (Dask's profiler,
    on by default): the setting reaches the worker processes through their nannies."""
    with dask_client(1, None) as client:
        assert list(client.run(_profiling).values()) == [False]

@pytest.mark.parametrize("sequences, seq_len, workers, nbytes, shards", [
    (9, 20, 2, 1000, 2),  # a second shard per worker would repeat 2 more of 9 sequences
    (48, 256, 2, 1000, 2),
    (48, 256, 1, 1000, 2),  # 1 repeat in 48 sequences is within 5 %
    (80, 8, 2, 1000, 4),
    (80, 4, 2, 1000, 2),  # warm-ups of 2 sequences (8 timesteps)
    (10_000, 256, 2, 1000, 8),  # at most 4 per worker
    (10_000, 256, 2, 100 << 20, 13),  # shards under 8 MB each
    (1, 5, 3, 10, 3),  # plan_shards then makes one shard of the one sequence
])
def test_shard_count_keeps_warm_ups_within_five_percent(sequences, seq_len, workers, nbytes,
                                                        shards):
    assert shard_count(sequences, seq_len, workers, nbytes) == shards


@pytest.mark.parametrize("workers", [0, -1, 1.5])
def test_workers_must_be_positive(lm, workers):
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        sim.simulate(lm, tokens(lm, 2, 3, seed=0), workers=workers)


def test_sharded_equals_one_run_on_local_cluster(lm, tmp_path):
    x = tokens(lm, 9, 23, seed=1)
    one = sim.simulate(lm, x)
    many = sim.simulate(lm, x, workers=2, progress=True)
    assert many.shards == 2  # one per worker: a second would repeat 2 more of 9 sequences
    assert_same_run(one, many)
    assert many.bpc is not None

    runsum = sim.Design(shutil.copytree(FIXTURE, tmp_path / "runsum"))
    rng = np.random.default_rng(2)
    v = np.stack([runsum.random_inputs(rng, 17) for _ in range(7)])
    assert_same_run(sim.simulate(runsum, v), sim.simulate(runsum, v, workers=2))


def test_shard_boundary_counts_are_not_a_fresh_start(lm):
    """The warm-up matters: toggles of shards started from reset would differ from one run's."""
    x = tokens(lm, 4, 12, seed=3)
    whole = sim.simulate(lm, x)
    halves = [sim.simulate(lm, x[:2]), sim.simulate(lm, x[2:])]
    naive = {g: sum(h.toggles[g] for h in halves) for g in whole.toggles}
    assert naive != whole.toggles
    assert sim.simulate(lm, x, workers=2).toggles == whole.toggles


def test_short_warm_up_runs_the_shard_again(lm, monkeypatch):
    """One-step sequences with a one-step warm-up: the design keeps state from further back, the
    boundary digests differ, and the shards run again with longer warm-ups until they agree."""
    monkeypatch.setattr(sim.shard, "MIN_WARM_UP_STEPS", 1)
    short_warm_ups, reruns = sim.shard._short_warm_ups, []

    def spy(*args):
        reruns.append(short_warm_ups(*args))
        return reruns[-1]

    monkeypatch.setattr(sim.shard, "_short_warm_ups", spy)
    x = tokens(lm, 40, 1, seed=7)
    many = sim.simulate(lm, x, workers=2)
    assert reruns[0] and not reruns[-1], reruns
    assert_same_run(sim.simulate(lm, x), many)


# ---------------------------------------------------------------- a real scheduler and workers
def test_sharded_equals_one_run_on_dask_scheduler(lm, dask_cluster):
    x = tokens(lm, 8, 19, seed=4)
    address, _ = dask_cluster
    assert_same_run(sim.simulate(lm, x), sim.simulate(lm, x, scheduler=address))


def _our_harnesses(worker_commands: list[int]) -> list[psutil.Process]:
    """Running harness processes started by the fixture's workers (and nobody else's)."""
    root = str(cache_root() / "bin")
    found = []
    for pid in worker_commands:
        with contextlib.suppress(psutil.NoSuchProcess):
            for p in psutil.Process(pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    cmd = p.cmdline()
                    if cmd and cmd[0].startswith(root):
                        found.append(p)
    return found


def test_killed_worker_shard_is_retried(lm, dask_cluster):
    """SIGKILL the worker process running a shard's harness; Dask runs the shard again."""
    address, worker_commands = dask_cluster
    x = tokens(lm, 24, 3000, seed=5)  # 4 shards of about 1-8 s each: long enough to catch
    one = sim.simulate(lm, x)
    job = Background(lambda: sim.simulate(lm, x, scheduler=address, workers=4))
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and job.alive() and time.monotonic() < deadline:
        for h in _our_harnesses(worker_commands):
            with contextlib.suppress(psutil.NoSuchProcess):
                worker, work = h.parent(), Path(h.cmdline()[1]).parent
                worker.kill()
                h.kill()
                h.wait(timeout=30)
                shutil.rmtree(work, ignore_errors=True)  # the killed run's temporary folder
                killed = worker.pid
                break
        time.sleep(0.005)
    many = job.result()
    assert killed is not None, "no shard was caught running"
    assert many.shards == 4
    assert_same_run(one, many)


# ------------------------------------------------------------------------------------ CLI
def test_cli_simulate_workers_and_scheduler(lm, dask_cluster, tmp_path, capsys, monkeypatch):
    """`shiftrnn simulate --workers 2` and `--scheduler` (or $SHIFTRNN_SCHEDULER) write the
    same outputs, cycles and toggles as one process."""
    from shiftrnn.cli import main

    address, _ = dask_cluster
    inputs = tmp_path / "x.npy"
    np.save(inputs, tokens(lm, 6, 15, seed=6))
    runs = {"one": [], "workers": ["--workers", "2"], "scheduler": ["--scheduler", address]}
    saved = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.npz"
        rc = main(["simulate", str(lm.path), "--inputs", str(inputs), "--out", str(out), *extra])
        text = capsys.readouterr().out
        assert rc == 0, text
        assert ("on 2 shards" in text) == (name != "one")  # one shard per worker
        with np.load(out) as z:
            saved[name] = {k: z[k] for k in z.files}
    monkeypatch.setenv("SHIFTRNN_SCHEDULER", address)
    out = tmp_path / "env.npz"
    assert main(["simulate", str(lm.path), "--inputs", str(inputs), "--out", str(out)]) == 0
    assert "on 2 shards" in capsys.readouterr().out
    with np.load(out) as z:
        saved["env"] = {k: z[k] for k in z.files}
    for name in ("workers", "scheduler", "env"):
        for key, value in saved["one"].items():
            assert np.array_equal(value, saved[name][key], equal_nan=True), (name, key)


def test_cli_unreachable_scheduler_is_one_clear_line(lm, tmp_path, capsys):
    import dask

    from shiftrnn.cli import main

    inputs = tmp_path / "x.npy"
    np.save(inputs, tokens(lm, 2, 5, seed=7))
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        rc = main(["simulate", str(lm.path), "--inputs", str(inputs),
                   "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in err
    assert "Traceback" not in err


def test_build_jobs_from_the_environment(monkeypatch):
    """``$SHIFTRNN_BUILD_JOBS`` sets a Verilator build's make jobs; a bad value names it."""
    from sim.build import BUILD_JOBS_ENV, BuildError, build_jobs

    monkeypatch.delenv(BUILD_JOBS_ENV, raising=False)
    assert build_jobs() == max(1, min(4, os.cpu_count() or 1))
    monkeypatch.setenv(BUILD_JOBS_ENV, "3")
    assert build_jobs() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(BUILD_JOBS_ENV, bad)
        with pytest.raises(BuildError, match=f"SHIFTRNN_BUILD_JOBS: expected a positive integer.*"
                                             f"{bad}"):
            build_jobs()

