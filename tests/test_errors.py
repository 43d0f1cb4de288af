"""Bad input on every CLI path: one clear line on stderr, a non-zero exit, earlier outputs intact.

The flow cases run the real flow up to the point of failure (no tools needed: they fail while
reading the configuration, the model or the data, or at the hardware check); the tool-failure
case, which needs a finished flow, is in ``test_flow.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

import golden
from shiftrnn.cli import build_parser, main


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_error_line(err: str, command: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith(f"shiftrnn {command}: error: "), lines[0]
    return lines[0]


@pytest.fixture
def small_model(tmp_path) -> Path:
    """A tiny token LM model file (hidden 4)."""
    m = golden.Model.random("gru", "ternary", 6, 4, output_size=6, input_kind="token", seed=3)
    return m.save(tmp_path / "small.npz")


@pytest.fixture
def previous(tmp_path) -> Path:
    """``rtl_out/t``, as a previous flow run left it (state file, report, Verilog)."""
    d = tmp_path / "rtl_out" / "t"
    d.mkdir(parents=True)
    (d / "flow_state.json").write_text('{"name": "t", "stages": {}}\n')
    (d / "report.html").write_text("<html>earlier report</html>\n")
    (d / "t.v").write_text("module t; endmodule\n")
    return d


def write_config(tmp_path: Path, text: str, name: str = "t.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def flow(tmp_path, cfg: Path, capsys, *extra) -> tuple[int, str]:
    rc, _, err = run_cli(["flow", cfg, "--out-dir", tmp_path / "rtl_out", "--no-progress",
                          *extra], capsys)
    assert rc == 2
    return rc, one_error_line(err, "flow")


# ----------------------------------------------------------------------------- config file
def test_missing_config(tmp_path, capsys):
    _, line = flow(tmp_path, tmp_path / "nope.toml", capsys)
    assert "nope.toml: no such config file" in line and "examples/" in line


def test_config_not_toml(tmp_path, capsys, previous):
    before = snapshot(previous)
    cfg = write_config(tmp_path, 'name = "t"\n[model\ncell = "gru"\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "not valid TOML" in line and "line 2" in line and "fix the syntax" in line
    assert snapshot(previous) == before


@pytest.mark.parametrize("text, words", [
    ('name = "t"\n[hardware]\nlane = 2\n', ["unknown key 'lane'", "did you mean 'lanes'"]),
    ('name = "t"\n[model]\nhidden = 8\n', ["[model] unknown key 'hidden'",
                                          "it belongs in [train]: train.hidden"]),
    ('name = "t"\n[hardwre]\nlanes = 2\n', ["unknown key or section 'hardwre'",
                                            "did you mean 'hardware'"]),
    ('name = "t"\n[hardware]\nlanes = "2"\n', ["[hardware] lanes", "expected an integer"]),
    ('name = "t"\n[model]\nmethod = "ternery"\n', ["not one of", "did you mean 'ternary'"]),
    ('name = "t"\n[hardware]\nlanes = 2\nunrolled = true\n', ["contradict", "keep one"]),
    ('name = "t"\n[estimate]\ntargets = ["ice41"]\n', ["unknown target 'ice41'",
                                                        "did you mean 'ice40'"]),
    ('name = "t"\n[model]\nformats = { h = "70.3" }\n', ["formats.h", "not a valid Fixed",
                                                         'h = "S8.6"']),
    ('name = "t/x"\n', ["plain folder name"]),
    ('name = "t"\n[model]\nsource = "file"\n', ["needs path"]),
], ids=["typo-key", "misplaced-key", "typo-section", "wrong-type", "bad-choice",
        "lanes-and-unrolled", "unknown-target", "bad-format", "bad-name", "file-without-path"])
def test_bad_config_values(tmp_path, capsys, previous, text, words):
    before = snapshot(previous)
    _, line = flow(tmp_path, write_config(tmp_path, text), capsys)
    for w in words:
        assert w in line, line
    assert snapshot(previous) == before
    assert not (previous.parent / ".t.failed").exists()  # rejected before any stage ran


# ------------------------------------------------------------------------ files and models
def test_missing_model_file(tmp_path, capsys, previous):
    before = snapshot(previous)
    cfg = write_config(tmp_path, 'name = "t"\n[model]\nsource = "file"\npath = "gone.npz"\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "gone.npz: no such file" in line and "fix the path" in line
    assert snapshot(previous) == before


def test_corrupt_model_file(tmp_path, capsys, previous):
    (tmp_path / "bad.npz").write_bytes(b"this is not a model")
    before = snapshot(previous)
    cfg = write_config(tmp_path, 'name = "t"\n[model]\nsource = "file"\npath = "bad.npz"\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "bad.npz: not a readable .npz model file" in line
    assert "point path at a model written by shiftrnn" in line
    assert "allow_pickle" not in line  # numpy's advice would be wrong here
    assert "is unchanged" in line
    assert snapshot(previous) == before


def test_truncated_model_file(tmp_path, capsys, previous, small_model):
    data = small_model.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    before = snapshot(previous)
    cfg = write_config(tmp_path, 'name = "t"\n[model]\nsource = "file"\npath = "cut.npz"\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "cut.npz: not a readable .npz model file" in line
    assert snapshot(previous) == before


def test_corrupt_torch_file(tmp_path, capsys, previous):
    (tmp_path / "bad.pt").write_bytes(b"\x80\x04garbage")
    before = snapshot(previous)
    cfg = write_config(tmp_path, 'name = "t"\n[model]\nsource = "torch"\npath = "bad.pt"\n'
                       'cell = "gru"\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "bad.pt: not a readable PyTorch file" in line
    assert snapshot(previous) == before


def test_missing_training_corpus(tmp_path, capsys, previous):
    before = snapshot(previous)
    cfg = write_config(tmp_path, 'name = "t"\n[train]\ncorpus = "nowhere.txt"\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "nowhere.txt: no such file" in line and 'corpus = "builtin"' in line
    assert snapshot(previous) == before


def test_bad_inputs_shape(tmp_path, capsys, previous):
    m = golden.Model.random("rnn", "ternary", 3, 4, input_kind="vector", seed=1)
    m.save(tmp_path / "vec.npz")
    np.save(tmp_path / "x.npy", np.zeros((2, 5, 7)))
    before = snapshot(previous)
    cfg = write_config(tmp_path, 'name = "t"\n[model]\nsource = "file"\npath = "vec.npz"\n'
                       '[data]\ninputs = "x.npy"\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "[data] inputs" in line and "(batch, time, 3)" in line
    assert snapshot(previous) == before


# -------------------------------------------------------------------- unsupported combinations
def test_lanes_larger_than_hidden(tmp_path, capsys, previous, small_model):
    before = snapshot(previous)
    cfg = write_config(tmp_path, f'name = "t"\n[model]\nsource = "file"\npath = '
                       f'"{small_model.name}"\n[hardware]\nlanes = 8\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "lanes = 8 is larger than the hidden size 4" in line
    assert "between 1 and 4" in line and "unrolled = true" in line
    assert snapshot(previous) == before
    failed = previous.parent / ".t.failed"
    assert f"partial run in {failed}" in line and (failed / "model.npz").is_file()


def test_lanes_larger_than_trained_hidden(tmp_path, capsys, previous):
    before = snapshot(previous)
    cfg = write_config(tmp_path, 'name = "t"\n[train]\nhidden = 8\n[hardware]\nlanes = 16\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "lanes = 16 is larger than the hidden size 8" in line
    assert snapshot(previous) == before
    assert not (previous.parent / ".t.failed").exists()  # caught before training


def test_format_too_narrow(tmp_path, capsys, previous, small_model):
    before = snapshot(previous)
    cfg = write_config(tmp_path, f'name = "t"\n[model]\nsource = "file"\npath = '
                       f'"{small_model.name}"\nformats = {{ gate = "U7.7" }}\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "formats.gate" in line and "hold 1.0" in line and "widen" in line
    assert snapshot(previous) == before


def test_corpus_for_a_vector_model(tmp_path, capsys, previous):
    golden.Model.random("rnn", "ternary", 3, 4, input_kind="vector", seed=1).save(
        tmp_path / "vec.npz")
    (tmp_path / "c.txt").write_text("hello world\n")
    cfg = write_config(tmp_path, 'name = "t"\n[model]\nsource = "file"\npath = "vec.npz"\n'
                       '[data]\ncorpus = "c.txt"\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "token-input model" in line and "[data] inputs" in line


def test_folder_not_made_by_the_flow(tmp_path, capsys, small_model):
    d = tmp_path / "rtl_out" / "t"
    d.mkdir(parents=True)
    (d / "t.v").write_text("module t; endmodule\n")
    before = snapshot(d)
    cfg = write_config(tmp_path, f'name = "t"\n[model]\nsource = "file"\npath = '
                       f'"{small_model.name}"\n')
    _, line = flow(tmp_path, cfg, capsys)
    assert "was not made by `shiftrnn flow`" in line and "--force" in line
    assert snapshot(d) == before


def test_unknown_demo_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--example", "transformer"])
    assert e.value.code == 2
    assert "invalid choice: 'transformer'" in capsys.readouterr().err


# ------------------------------------------------------------------ every other CLI command
@pytest.fixture
def files(tmp_path, small_model):
    (tmp_path / "bad.npz").write_bytes(b"garbage, not a zip archive")
    np.save(tmp_path / "x.npy", np.zeros((1, 3), np.int64))
    out = tmp_path / "earlier.npz"
    out.write_bytes(b"earlier output")
    design = tmp_path / "design"
    design.mkdir()
    (design / "earlier.txt").write_text("earlier design")
    return tmp_path


CASES = [
    # (argv with {d} for the folder, command, words in the message, path that must be intact)
    (["info", "{d}/missing.npz"], "info", ["missing.npz", "no such model file"], None),
    (["info", "{d}/bad.npz"], "info", ["bad.npz", "not a readable .npz model file"], None),
    (["run", "{d}/bad.npz", "--inputs", "{d}/x.npy", "--out", "{d}/earlier.npz", "--force"],
     "run", ["bad.npz", "not a readable"], "earlier.npz"),
    (["run", "{d}/small.npz", "--inputs", "{d}/missing.npy", "--out", "{d}/earlier.npz",
      "--force"], "run", ["missing.npy"], "earlier.npz"),
    (["generate", "{d}/bad.npz", "--lanes", "1", "--out", "{d}/design", "--force"], "generate",
     ["bad.npz", "not a readable"], "design"),
    (["generate", "{d}/small.npz", "--lanes", "9", "--out", "{d}/design", "--force"],
     "generate", ["--lanes 9", "1..4", "--unrolled"], "design"),
    (["generate", "{d}/small.npz", "--lanes", "1", "--out", "{d}/design"], "generate",
     ["exists", "--force"], "design"),
    (["verify", "{d}/missing"], "verify", ["missing", "no such design folder"], None),
    (["simulate", "{d}/missing", "--inputs", "{d}/x.npy"], "simulate",
     ["missing", "no such design folder"], None),
    (["estimate", "{d}/missing"], "estimate", ["missing", "no such design folder"], None),
    (["compare", "{d}/bad.npz", "--lanes", "1", "--out", "{d}/design", "--force"], "compare",
     ["bad.npz", "not a readable"], "design"),
    (["eval", "{d}/missing.npz"], "eval", ["missing.npz", "no such model file"], None),
    (["eval", "{d}/bad.npz"], "eval", ["bad.npz", "not a readable"], None),
    (["import", "{d}/missing.pt", "--cell", "gru", "--method", "ternary", "--out",
      "{d}/earlier.npz", "--force"], "import", ["missing.pt", "no such file"], "earlier.npz"),
    (["import", "{d}/bad.npz", "--cell", "gru", "--method", "ternary", "--out",
      "{d}/earlier.npz", "--force"], "import", ["bad.npz", "not a readable PyTorch file"],
     "earlier.npz"),
    (["flow", "{d}/missing.toml"], "flow", ["missing.toml", "no such config file"], None),
]


@pytest.mark.parametrize("argv, command, words, intact", CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_cli_bad_input(files, capsys, argv, command, words, intact):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if command not in sub.choices:
        pytest.skip(f"shiftrnn {command} is not built yet")
    target = files / intact if intact else None
    before = None
    if target is not None:
        before = snapshot(target) if target.is_dir() else target.read_bytes()
    rc, _, err = run_cli([a.format(d=files) for a in argv], capsys)
    assert rc == 2, err
    line = one_error_line(err, command)
    for w in words:
        assert w in line, line
    if target is not None:
        assert (snapshot(target) if target.is_dir() else target.read_bytes()) == before


def test_train_missing_corpus(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "m.npz"
    rc, _, err = run_cli(["train", "--method", "ternary", "--corpus", tmp_path / "no.txt",
                          "--out", out, "--no-progress"], capsys)
    assert rc == 2
    assert "no.txt" in one_error_line(err, "train") and not out.exists()


def test_stale_run_copy_is_removed(tmp_path, capsys, previous, small_model):
    """A copy left by a killed run (its process is gone) is cleaned up by the next run."""
    stale = previous.parent / ".t.run-999999999"
    stale.mkdir()
    cfg = write_config(tmp_path, f'name = "t"\n[model]\nsource = "file"\npath = '
                       f'"{small_model.name}"\n[hardware]\nlanes = 5\n')
    flow(tmp_path, cfg, capsys)
    assert not stale.exists()


def test_failed_flow_keeps_previous_failed_folder_fresh(tmp_path, capsys, previous,
                                                         small_model):
    """A second failing run replaces the kept partial run, never the design folder."""
    cfg = write_config(tmp_path, f'name = "t"\n[model]\nsource = "file"\npath = '
                       f'"{small_model.name}"\n[hardware]\nlanes = 5\n')
    before = snapshot(previous)
    flow(tmp_path, cfg, capsys)
    failed = previous.parent / ".t.failed"
    (failed / "marker").write_text("first failure")
    flow(tmp_path, cfg, capsys)
    assert not (failed / "marker").exists()
    assert snapshot(previous) == before
    shutil.rmtree(failed)
