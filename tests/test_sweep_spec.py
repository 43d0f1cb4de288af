"""Sweep files, the result table, the Pareto fronts, sweep.html and the engine's cross-folder stage
cache: everything of ``shiftrnn sweep`` that needs no Dask cluster and no tools."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from shiftrnn.cli import main
from shiftrnn.flow import FlowError, parse_config
from shiftrnn.flow.engine import StageBase, StageCache, StageOutput, run_stages
from shiftrnn.flow.sweep import load_sweep
from shiftrnn.flow.sweep.report import write_sweep_report
from shiftrnn.flow.sweep.results import Axis, pareto, read_rows, write_tables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parent.parent

BASE = """\
name = "tiny"
[model]
source = "file"
path = "models/a.npz"
[data]
sequences = 2
length = 6
[estimate]
targets = []
devices = []
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "base.toml").write_text(BASE)
    return tmp_path


def sweep_file(folder: Path, text: str, name: str = "sw.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------ the file
def test_grid_and_points_expand_with_stable_names(folder):
    sw = load_sweep(sweep_file(folder, """\
base = "base.toml"
description = "lanes and models"
[grid]
"model.path" = ["a.npz", "sub/b.npz"]
hardware.lanes = [1, 2]
[[points]]
"hardware.unrolled" = true
"model.path" = "a.npz"
"""))
    assert sw.name == "sw" and sw.description == "lanes and models"
    assert sw.keys == ("model.path", "hardware.lanes", "hardware.unrolled")
    assert [p.name for p in sw.points] == [
        "path-a_lanes-1", "path-a_lanes-2", "path-b_lanes-1", "path-b_lanes-2",
        "unrolled-true_path-a"]
    assert all(p.error is None for p in sw.points)
    first, last = sw.points[0], sw.points[-1]
    # sweep paths are relative to the sweep file; every point keeps the base's design name
    assert first.config.model.path == str(folder / "a.npz")
    assert sw.points[2].config.model.path == str(folder / "sub" / "b.npz")
    assert {p.config.name for p in sw.points} == {"tiny"}
    assert first.config.hardware.lanes == 1 and last.config.hardware.unrolled
    assert first.config.data.sequences == 2 and "sweep point path-a_lanes-1" in \
        first.config.text
    assert "hardware.lanes" in first.config.given
    # ids depend on the values only: the same point in another file has the same id
    text = 'base = "base.toml"\n[[points]]\n"hardware.lanes" = 1\n"model.path" = "a.npz"\n'
    again = load_sweep(sweep_file(folder, text, "other.toml"))
    assert again.points[0].id == first.id and len(first.id) == 16


def test_example_sweep_file():
    """examples/sweeps/gru.toml (the README's example) expands over examples/gru.toml."""
    sw = load_sweep(ROOT / "examples" / "sweeps" / "gru.toml")
    assert sw.name == "gru-sweep" and sw.base.name == "gru"
    assert sw.keys == ("model.method", "hardware.lanes", "model.method_params")
    assert len(sw.points) == 13 and all(p.error is None for p in sw.points)
    last = sw.points[-1].config
    assert last.model.method_params == {"i": 0, "f": 3} and last.train.hidden == 32


def test_base_paths_stay_relative_to_the_base(folder):
    (folder / "cfg").mkdir()
    (folder / "cfg" / "base.toml").write_text(BASE)
    sw = load_sweep(sweep_file(folder, 'base = "cfg/base.toml"\n[grid]\n"hardware.lanes" = [3]\n'))
    assert sw.points[0].config.model.path == str(folder / "cfg" / "models" / "a.npz")


def test_refused_combination_is_the_points_error_not_the_sweeps(folder):
    sw = load_sweep(sweep_file(folder, """\
base = "base.toml"
[grid]
"hardware.unrolled" = [false, true]
"hardware.lanes" = [2]
"""))
    ok, bad = sw.points
    assert ok.error is None and bad.config is None
    assert bad.error.startswith(f"{folder / 'sw.toml'} point unrolled-true_lanes-2: [hardware]")
    assert "contradict" in bad.error and "\n" not in bad.error


@pytest.mark.parametrize("text, expected", [
    ('[grid]\n"model.metod" = ["binary"]', "unknown key 'model.metod' (did you mean "
                                           "'model.method'?)"),
    ('[grid]\n"model.hidden" = [8]', "unknown key 'model.hidden' (it belongs in [train]: "
                                    "train.hidden)"),
    ('[grid]\n"hardware.lanes" = [1, "two"]', "[grid] value 2 of [hardware] lanes: expected "
                                              "an integer, got 'two'"),
    ('[grid]\n"model.method" = ["ternery"]', "'ternery' is not one of 'binary', 'ternary'"),
    ('[grid]\n"estimate.targets" = ["ice40"]', "each value of 'estimate.targets' is a list "
                                               "itself"),
    ('[grid]\n"estimate.targets" = [["ice41"]]', "unknown target 'ice41' (did you mean "
                                                 "'ice40'?); choose from generic"),
    ('[grid]\n"hardware.lanes" = 2', "'hardware.lanes' must be a non-empty list of values"),
    ('[[points]]\n"verify.idle" = "x"', "[[points]] 1: [verify] idle: expected a number"),
    ('[grid]\n"name" = ["a"]', "unknown key 'name'"),
    ("", "no points; add a [grid]"),
    ('workers = 2\n[grid]\n"hardware.lanes" = [1]', "unknown key 'workers'; a sweep file has "
                                                    "base, name"),
    ('name = "a b"\n[grid]\n"hardware.lanes" = [1]', "'a b' must be a plain folder name"),
    ('[[points]]\n"hardware.lanes" = 2\n[[points]]\nhardware.lanes = 2',
     "point 2 (lanes-2) repeats point 1"),
])
def test_bad_sweep_is_one_line_naming_file_key_and_values(folder, text, expected):
    path = sweep_file(folder, 'base = "base.toml"\n' + text + "\n")
    with pytest.raises(FlowError) as e:
        load_sweep(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    assert expected in msg


def test_missing_base_and_files(folder, capsys):
    with pytest.raises(FlowError, match="base: .*no-such.toml: no such file"):
        load_sweep(sweep_file(folder, 'base = "no-such.toml"\n[grid]\n"hardware.lanes" = [1]\n'))
    with pytest.raises(FlowError, match="base: the flow configuration the points start from"):
        load_sweep(sweep_file(folder, '[grid]\n"hardware.lanes" = [1]\n'))
    with pytest.raises(FlowError, match="not a valid TOML"):
        load_sweep(sweep_file(folder, "base = \n"))
    (folder / "base.toml").write_text(BASE.replace("sequences = 2", "sequences = 0"))
    with pytest.raises(FlowError, match=r"base.toml: \[data\] sequences: must be >= 1"):
        load_sweep(sweep_file(folder, 'base = "base.toml"\n[grid]\n"hardware.lanes" = [1]\n'))
    # the command line: one line, status 2, nothing written
    assert main(["sweep", str(folder / "none.toml"), "--out", str(folder / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such sweep file" in err
    assert not (folder / "o").exists()


# --------------------------------------------------------------------------- the table
ROWS = [  # name, BPC, LUT, pJ, timesteps/s
    ("a", 2.0, 100, 50.0, 1000.0), ("b", 1.5, 200, 40.0, 3000.0), ("c", 1.5, 300, 60.0, 2000.0),
    ("d", 3.0, 50, 70.0, 500.0), ("e", 2.5, 150, 45.0, 900.0)]


def _rows() -> list[dict]:
    rows = [{"id": n, "name": n, "status": "ok", "hardware.lanes": i + 1, "bpc_rtl": b,
             "ice40_lut": lut, "energy_pj_per_timestep": pj, "up5k_timesteps_per_s": t,
             "ran": ["model"], "error": None}
            for i, (n, b, lut, pj, t) in enumerate(ROWS)]
    rows.append({"id": "f", "name": "f", "status": "failed", "hardware.lanes": 64,
                 "error": "lanes = 64 is larger than the hidden size 4"})
    return rows


def test_pareto_fronts():
    rows = _rows()[:5]
    bpc, lut = Axis("bpc_rtl", "BPC", True), Axis("ice40_lut", "LUT", True)
    speed = Axis("up5k_timesteps_per_s", "t/s", False)
    assert [r["name"] for r in pareto(rows, lut, bpc)] == ["a", "b", "d"]
    assert [r["name"] for r in pareto(rows, lut, speed)] == ["a", "b", "d"]
    energy = Axis("energy_pj_per_timestep", "pJ", True)
    assert [r["name"] for r in pareto(rows, bpc, energy)] == ["b"]
    tie = [*rows, {**rows[1], "id": "b2", "name": "b2"}]
    assert [r["name"] for r in pareto(tie, energy, bpc)] == ["b", "b2"]
    assert pareto([{"name": "x", "bpc_rtl": None, "ice40_lut": 3}], lut, bpc) == []


def test_tables_and_report(tmp_path, folder):
    sw = load_sweep(sweep_file(folder, 'base = "base.toml"\n[grid]\n"hardware.lanes" = '
                                       '[1, 2, 3, 4, 5, 64]\n'))
    rows = _rows()
    write_tables(tmp_path, rows, sw.keys)
    assert read_rows(tmp_path) == rows
    with open(tmp_path / "results.csv", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0][:4] == ["id", "name", "status", "hardware.lanes"]
    assert table[0][-1] == "error" and len(table) == 7
    assert table[1][table[0].index("ran")] == '["model"]'
    assert table[6][table[0].index("bpc_rtl")] == "" and "larger than" in table[6][-1]
    html = write_sweep_report(tmp_path, sw, rows, 12.5)
    assert html.name == "sweep.html"
    for i in (1, 2, 3):
        assert (tmp_path / "img" / f"pareto_{i}.png").read_bytes()[:8] == PNG_MAGIC
    text = html.read_text()
    assert text.count("data:image/png;base64,") == 3 and 'src="img/' not in text
    assert "5 ok, 1 failed" in text and "lanes = 64 is larger" in text
    assert "LUTs (ice40)" in text and "3 Pareto-optimal of 5 points" in text
    # Pareto marks in the table: b is optimal in all three plots, e in none
    assert "<td>b</td><td>ok</td><td>2</td>" in text
    assert ">1, 2, 3</td>" in text
    # an interrupted run: unfinished points counted, no area figures, no plots
    bare = [{k: v for k, v in r.items() if k != "ice40_lut"} for r in rows[:2]]
    text = write_sweep_report(tmp_path, sw, bare, None).read_text()
    assert "4 not finished (interrupted)" in text and "no point has both figures" in text


# ------------------------------------------------------------------ the stage cache
@dataclass(frozen=True)
class Count:
    value: int


class Counted(StageBase):
    """A stage that writes one file and counts its runs; shared across folders."""

    name, result_type, summary = "model", Count, "count"
    runs = 0

    def inputs(self, ctx):
        return {"hidden": ctx.cfg.train.hidden}

    def shared(self, ctx):
        return True

    def run(self, ctx):
        type(self).runs += 1
        (ctx.work / "out.txt").write_text(f"hidden {ctx.cfg.train.hidden}\n")
        return StageOutput(Count(ctx.cfg.train.hidden), ("out.txt",), "counted")


def test_stage_cache_shares_a_stage_across_folders(tmp_path):
    cache = StageCache(tmp_path / "cache")
    stage = Counted()
    Counted.runs = 0

    def run(name: str, hidden: int, **kw):
        cfg = parse_config({"name": name, "train": {"hidden": hidden}})
        return run_stages(cfg, [stage], out_dir=tmp_path / "out", progress=False,
                          echo=lambda s: None, stage_cache=cache, **{"force": False, **kw})

    first = run("a", 8)
    assert first.ran == ["model"] and Counted.runs == 1
    second = run("b", 8)  # another folder, same inputs: from the cache, files and record
    assert second.ran == [] and second.reused == ["model"] and Counted.runs == 1
    assert (tmp_path / "out" / "b" / "out.txt").read_text() == "hidden 8\n"
    assert second.records["model"] == first.records["model"]
    assert run("b", 8).skipped == ["model"]  # unchanged in its own folder
    assert run("c", 16).ran == ["model"] and Counted.runs == 2  # other inputs
    # a damaged entry is run again, and --force runs again without reading the cache
    entry = cache.entry("model", first.records["model"].key)
    (entry / "out.txt").write_text("tampered\n")
    assert run("d", 8).ran == ["model"] and Counted.runs == 3
    assert run("e", 8, force=True).ran == ["model"] and Counted.runs == 4
    assert json.loads((entry / "record.json").read_text())["key"] == first.records["model"].key
