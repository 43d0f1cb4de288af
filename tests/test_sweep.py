"""``shiftrnn sweep`` on real Dask clusters: an embedded LocalCluster of two workers, a real
``dask scheduler`` with two ``dask worker`` processes (the ``dask_cluster`` fixture of
conftest.py, started on 127.0.0.1 and stopped by the tests), a worker killed mid-sweep, failing
points, a rerun that recomputes nothing, and Ctrl-C.

The points are small: a GRU trained for two batches (hidden 4, the built-in corpus) or random
model files, no synthesis, a short cocotb bench; the real Verilator builds are cached by content,
so only the first run of the suite compiles them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import Background

import golden
import shiftrnn.flow.sweep.run as sweep_run
from shiftrnn.cli import main
from shiftrnn.flow import STAGES
from shiftrnn.flow.points import Cluster
from shiftrnn.flow.sweep import POINTS_DIR, load_sweep, read_rows, run_sweep

QUICK = """\
[verify]
sequences = 1
length = 4
waves = false
lint = false
[estimate]
targets = []
devices = []
"""
TRAINED = f"""\
name = "tiny"
[model]
source = "train"
[train]
hidden = 4
epochs = 1
max_batches = 2
batch = 8
seq_len = 16
eval_every = 1
[data]
max_timesteps = 48
{QUICK}"""
FILES = f"""\
name = "tiny"
[model]
source = "file"
path = "a.npz"
[data]
sequences = 2
length = 5
{QUICK}"""
#: The figures of a row that do not depend on when or where it ran.
TIMING = ("seconds", "flow_seconds", "ran", "reused", "skipped")


def figures(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in TIMING}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 4-point sweep file: two methods (each trained once) x two lanes."""
    pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("trained")
    (d / "base.toml").write_text(TRAINED)
    (d / "sweep.toml").write_text('base = "base.toml"\n[grid]\n'
                                  '"model.method" = ["ternary", "binary"]\n'
                                  '"hardware.lanes" = [1, 2]\n')
    return d / "sweep.toml"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A 4-point sweep file over two random model files (token LMs, hidden 6) x two lanes."""
    d = tmp_path_factory.mktemp("files")
    for i, name in enumerate(("a", "b")):
        golden.Model.random("gru", "ternary", 5, 6, output_size=5, input_kind="token",
                            seed=i).save(d / f"{name}.npz")
    (d / "base.toml").write_text(FILES)
    (d / "sweep.toml").write_text('base = "base.toml"\n[grid]\n"model.path" = ["a.npz", '
                                  '"b.npz"]\n"hardware.lanes" = [1, 2]\n')
    return d / "sweep.toml"


def model_record(row: dict) -> dict:
    state = json.loads((Path(row["report"]).parent / "flow_state.json").read_text())
    return state["stages"]["model"]


# ------------------------------------------------------------------ embedded LocalCluster
def test_local_cluster_sweep_trains_once_and_reruns_nothing(trained, tmp_path):
    out = tmp_path / "out"
    res = run_sweep(load_sweep(trained), out=out, cluster=Cluster(workers=2), progress=False,
                    echo=lambda s: None)
    assert res.cluster == "a LocalCluster of 2 workers"
    assert [r["name"] for r in res.rows] == ["method-ternary_lanes-1", "method-ternary_lanes-2",
                                             "method-binary_lanes-1", "method-binary_lanes-2"]
    assert [r["status"] for r in res.rows] == ["ok"] * 4, [r["error"] for r in res.rows]
    for r in res.rows:
        assert r["method"] == r["model.method"] and r["lanes"] == r["hardware.lanes"]
        assert r["bpc_rtl"] == r["bpc_int"] and r["bpc_float"] > 0  # the RTL is bit-exact
        assert r["cycles_per_timestep"] > 0 and r["energy_pj_per_timestep"] > 0
        assert Path(r["report"]).is_file()
        assert Path(r["report"]).parent.parent == out / POINTS_DIR / r["name"]
    # each method trained once: both of its points hold the same record (key, time, result)
    for method in ("ternary", "binary"):
        pair = [r for r in res.rows if r["method"] == method]
        assert model_record(pair[0]) == model_record(pair[1])
        assert sum("model" in r["ran"] for r in pair) <= 1
        assert all("model" in r["ran"] + r["reused"] for r in pair)
    assert model_record(res.rows[0])["key"] != model_record(res.rows[2])["key"]
    assert read_rows(out) == list(res.rows)
    assert len((out / "results.csv").read_text().splitlines()) == 5
    assert "4 ok, 0 failed" in (out / "sweep.html").read_text()

    again = run_sweep(load_sweep(trained), out=out, cluster=Cluster(workers=2),
                      progress=False, echo=lambda s: None)
    for first, second in zip(res.rows, again.rows, strict=True):
        assert second["ran"] == [] and second["reused"] == []
        assert second["skipped"] == list(STAGES)
        assert figures(second) == figures(first)


def test_second_round_puts_large_designs_first_and_twins_after(files, tmp_path, monkeypatch):
    """The first round learns each point's design; each point's second round is submitted as
    soon as its design is known, larger Verilog at higher priority, and a point whose Verilog
    an earlier point has only after that point finished. Rows count both rounds: every stage
    ran (or came from the stage cache) in a first run."""
    sweep = files.parent / "twins.toml"
    sweep.write_text('base = "base.toml"\nname = "twins"\n[grid]\n"verify.length" = [4, 5]\n'
                     '"hardware.lanes" = [1, 3]\n')
    events: list = []

    class Recording(sweep_run.DaskRunner):
        def submit(self, fn, args, *, index, tag=None, priority=0):
            if fn is sweep_run.run_point:
                events.append(("second", index, args[3], priority))
            else:
                assert priority > sweep_run.FIRST_ROUND  # above every second round
            super().submit(fn, args, index=index, tag=tag, priority=priority)

        def __iter__(self):
            for tag, out in super().__iter__():
                if tag == "second":
                    events.append(("done", out.index))
                yield tag, out

    monkeypatch.setattr(sweep_run, "DaskRunner", Recording)
    res = run_sweep(load_sweep(sweep), out=tmp_path / "out", cluster=Cluster(workers=2),
                    progress=False, echo=lambda s: None)
    assert [r["status"] for r in res.rows] == ["ok"] * 4, [r["error"] for r in res.rows]
    submits = [e for e in events if e[0] == "second"]
    assert len(submits) == 4 and len({e[2].digest for e in submits}) == 2  # length: same design
    assert all(priority == d.verilog_bytes for _, _, d, priority in submits)
    assert len({e[2].verilog_bytes for e in submits}) == 2
    for k, (_, index, design, _) in enumerate(submits):
        first = next(e for e in submits if e[2].digest == design.digest)
        if first[1] != index:  # a twin: submitted after its first point's second round ended
            assert events.index(("done", first[1])) < events.index(submits[k])
    for r in res.rows:
        assert set(r["ran"] + r["reused"]) == set(STAGES) and r["skipped"] == []
        assert r["flow_seconds"] > 0
        log = (Path(r["report"]).parent.parent / "flow.log").read_text()
        assert "[1/3] model" in log and "[7/7] report" in log  # both rounds' lines
    for lanes in (1, 3):
        pair = [figures(r) for r in res.rows if r["lanes"] == lanes]
        for row in pair:
            for key in ("report", "id", "name", "verify.length", "config_digest"):
                row.pop(key)
        assert pair[0] == pair[1]


def test_failing_points_are_recorded_and_the_others_finish(files, tmp_path, capsys):
    """Through the command line: a lanes value larger than the model (found when the flow
    reads the model) and a combination the flow refuses (found before running)."""
    sweep = files.parent / "bad.toml"
    sweep.write_text('base = "base.toml"\nname = "bad"\n[grid]\n"hardware.lanes" = [2, 64]\n'
                     '[[points]]\n"hardware.unrolled" = true\n"hardware.lanes" = 3\n')
    out = tmp_path / "bad"
    assert main(["sweep", str(sweep), "--workers", "2", "--out", str(out),
                 "--no-progress"]) == 1
    text = capsys.readouterr().out
    rows = read_rows(out)
    assert [(r["name"], r["status"]) for r in rows] == [
        ("lanes-2", "ok"), ("lanes-64", "failed"), ("unrolled-true_lanes-3", "failed")]
    assert "lanes = 64 is larger than the hidden size 6" in rows[1]["error"]
    assert "contradict" in rows[2]["error"]
    for r in rows[1:]:
        assert "\n" not in r["error"] and f"FAILED  {r['error']}" in text
    assert "3 points, 1 ok, 2 failed" in text
    html = (out / "sweep.html").read_text()
    assert "Failed points" in html and "lanes = 64 is larger" in html
    # the output folder is the sweep's: a folder it did not make is refused, --force writes
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["sweep", str(sweep), "--out", str(other), "--no-progress"]) == 2
    assert "was not made by `shiftrnn sweep`" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]


def children() -> set[int]:
    """Processes this one started (multiprocessing's resource tracker lives as long as it)."""
    found = set()
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if not any("resource_tracker" in part for part in p.cmdline()):
                found.add(p.pid)
    return found


def test_ctrl_c_leaves_finished_points_on_disk(files, tmp_path, monkeypatch):
    """KeyboardInterrupt after the first point finished: its row, the CSV and sweep.html are
    written, the embedded cluster is stopped, and the next run completes the table."""
    out = tmp_path / "out"
    write_tables = sweep_run.write_tables
    calls = []

    def interrupt_after_first_point(folder, rows, keys):
        write_tables(folder, rows, keys)
        calls.append(len(rows))
        if len(calls) == 2:  # the first save is before any point runs
            raise KeyboardInterrupt

    monkeypatch.setattr(sweep_run, "write_tables", interrupt_after_first_point)
    before = children()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(load_sweep(files), out=out, cluster=Cluster(workers=2), progress=False,
                  echo=lambda s: None)
    rows = read_rows(out)
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert len((out / "results.csv").read_text().splitlines()) == 2
    assert "3 not finished (interrupted)" in (out / "sweep.html").read_text()
    deadline = time.monotonic() + 30
    while children() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not children() - before  # the cluster's worker processes are gone
    monkeypatch.undo()
    res = run_sweep(load_sweep(files), out=out, cluster=Cluster(workers=2), progress=False,
                    echo=lambda s: None)
    assert [r["status"] for r in res.rows] == ["ok"] * 4
    assert res.rows[[r["id"] for r in res.rows].index(rows[0]["id"])]["ran"] == []


# ------------------------------------------------------------- a real scheduler and workers
def test_sweep_on_a_dask_scheduler_equals_the_local_cluster(files, dask_cluster, tmp_path,
                                                            monkeypatch, capsys):
    address, _ = dask_cluster
    local = run_sweep(load_sweep(files), out=tmp_path / "local", cluster=Cluster(workers=2),
                      progress=False, echo=lambda s: None)
    monkeypatch.setenv("SHIFTRNN_SCHEDULER", address)  # as `shiftrnn simulate` reads it
    assert main(["sweep", str(files), "--out", str(tmp_path / "remote"), "--no-progress"]) == 0
    assert f"on the Dask cluster at {address} of 2 workers" in capsys.readouterr().out
    remote = read_rows(tmp_path / "remote")
    assert [r["status"] for r in remote] == ["ok"] * 4
    for a, b in zip(local.rows, remote, strict=True):
        a, b = figures(a), figures(b)
        assert a.pop("report").replace("local", "remote") == b.pop("report")
        assert a == b


def _flow_process(out: Path, workers: list[int]) -> psutil.Process | None:
    """The worker process running a point's flow: the owner of a working copy
    ``points/NAME/.tiny.run-PID`` (among the fixture's worker processes)."""
    ours = set()
    for pid in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            ours |= {p.pid for p in psutil.Process(pid).children(recursive=True)}
    for copy in (out / POINTS_DIR).glob("*/.tiny.run-*"):
        pid = int(copy.name.rsplit("-", 1)[1])
        if pid in ours:
            with contextlib.suppress(psutil.NoSuchProcess):
                return psutil.Process(pid)
    return None


def test_killed_worker_point_is_rerun_and_the_table_is_complete(files, dask_cluster, tmp_path):
    address, worker_commands = dask_cluster
    out = tmp_path / "killed"
    job = Background(lambda: run_sweep(load_sweep(files), out=out,
                                       cluster=Cluster(scheduler=address), progress=False,
                                       echo=lambda s: None))
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and job.alive() and time.monotonic() < deadline:
        proc = _flow_process(out, worker_commands)
        if proc is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                tools = proc.children(recursive=True)  # Verilator, cocotb: not left behind
                os.kill(proc.pid, signal.SIGKILL)
                for t in tools:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        t.kill()
                killed = proc.pid
        time.sleep(0.05)
    rows = job.result().rows
    assert killed is not None, "no point was caught running"
    assert [r["status"] for r in rows] == ["ok"] * 4, [r["error"] for r in rows]
    assert read_rows(out) == list(rows)
    assert not list((out / POINTS_DIR).glob(f"*/.tiny.run-{killed}"))  # cleaned by the rerun
    for r in rows:
        with np.load(Path(r["report"]).parent / "sim_outputs.npz") as z:
            assert z["outputs"].shape[:2] == (2, 5)
