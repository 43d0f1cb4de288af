"""Shared test fixtures. Every random source is seeded; hypothesis runs derandomized.

``dask_cluster``: a real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 for
the module (sharded simulation and sweeps on an existing cluster).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Deterministic examples, and no per-example deadline (CI machines are shared and noisy).
settings.register_profile("shiftrnn", derandomize=True, deadline=None)
settings.load_profile("shiftrnn")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator, fresh for each test."""
    return np.random.default_rng(20240611)


# ---------------------------------------------------------------- a real scheduler and workers
def _dask(*args: str, log: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("dask")
    with open(log, "w") as fh:
        return subprocess.Popen([str(exe), *args], stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started by _dask and everything it started (its session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; yields the address and
    the pids of the two ``dask worker`` commands."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask")
    info = tmp / "scheduler.json"
    quiet = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
                   str(info), *quiet, log=tmp / "scheduler.log")]
    try:
        deadline = time.monotonic() + 120
        while not info.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert info.is_file(), (tmp / "scheduler.log").read_text()
        address = json.loads(info.read_text())["address"]
        for i in range(2):
            procs.append(_dask("worker", address, "--nthreads", "1", "--nworkers", "1",
                               "--name", f"w{i}", "--host", "127.0.0.1",
                               "--local-directory", str(tmp / f"w{i}"), *quiet,
                               log=tmp / f"worker{i}.log"))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, [p.pid for p in procs[1:]]
    finally:
        for p in reversed(procs):
            _stop(p)


class Background:
    """Run ``fn()`` in a thread while the test does something to it (kills a worker, say)."""

    def __init__(self, fn) -> None:
        self._out: dict = {}
        self._thread = threading.Thread(target=self._run, args=(fn,))
        self._thread.start()

    def _run(self, fn) -> None:
        try:
            self._out["value"] = fn()
        except BaseException as e:  # raised again by result(), in the test's thread
            self._out["error"] = e

    def alive(self) -> bool:
        return self._thread.is_alive()

    def result(self, timeout: float = 600):
        """Wait for ``fn`` and return its value (or raise its error)."""
        self._thread.join(timeout=timeout)
        assert not self._thread.is_alive(), f"still running after {timeout} s"
        if "error" in self._out:
            raise self._out["error"]
        return self._out["value"]
