"""One way to read data, everywhere: the same options and defaults for every command that reads
text, the flow's [train] defaults on the command line, moved models, float baselines, and the
small front-door promises (permissions, help texts)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat

import numpy as np
import pytest

import golden
import hw
from golden import evaluation as E
from shiftrnn.cli import build_parser, main
from shiftrnn.flow import SCHEMA

TEXT = "the cat sat on the mat. a bat ate the rat.\n" * 30


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _defaults(p: argparse.ArgumentParser) -> dict:
    return {a.dest: a.default for a in p._actions}


def _lm(tmp_path, vocab: str):
    m = golden.Model.random("gru", "ternary", len(vocab), 6, output_size=len(vocab), seed=1)
    m.meta["vocab"] = list(vocab)
    return m


def test_commands_that_read_text_share_options_and_defaults():
    subs = _subparsers()
    for name in ("eval", "simulate", "compare"):
        d = _defaults(subs[name])
        assert d["corpus_format"] == "auto" and d["max_timesteps"] == E.DEFAULT_MAX_TIMESTEPS
        assert SCHEMA["data"]["max_timesteps"].default == d["max_timesteps"], name
        assert SCHEMA["data"]["corpus_format"].default == d["corpus_format"], name
    assert _defaults(subs["train"])["corpus_format"] == SCHEMA["train"]["corpus_format"].default


def test_train_defaults_are_the_flows():
    d = _defaults(_subparsers()["train"])
    for key in ("hidden", "layers", "epochs", "batch", "seq_len", "lr", "seed", "eval_every",
                "max_batches", "threads", "fake_quant"):
        assert d[key] == SCHEMA["train"][key].default, key


def test_no_help_cites_a_document_we_do_not_ship():
    for name, p in _subparsers().items():
        assert "DESIGN.md" not in p.format_help(), name


def test_ptb_without_word_breaks_is_detected(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("t h e c a t\ns a t o n\nt h e m a t\n")
    assert E.read_text(f) == ("thecat\nsaton\nthemat\n", "ptb")
    assert E.detect_format("the cat sat\non the mat\n") == "plain"
    assert E.detect_format("a\nb\n") == "plain"  # single characters alone prove nothing


def test_eval_reads_ptb_and_names_the_fix(tmp_path, capsys):
    model = _lm(tmp_path, "abct ehs\n")
    path = model.save(tmp_path / "m.npz")
    ptb = tmp_path / "ptb.txt"
    ptb.write_text("t h e _ c a t\nh a s _ a _ b a t\n" * 40)
    assert main(["eval", str(path), "--corpus", str(ptb), "--json"]) == 0
    auto = json.loads(capsys.readouterr().out)
    assert "(ptb, whole file)" in auto["data"]
    rc = main(["eval", str(path), "--corpus", str(ptb), "--corpus-format", "plain"])
    err = capsys.readouterr().err
    assert rc == 2 and "'_'" in err and "corpus format 'ptb'" in err
    assert main(["eval", str(path), "--corpus", str(ptb), "--max-timesteps", "100",
                 "--json"]) == 0
    capped = json.loads(capsys.readouterr().out)
    assert "first 101 characters: 100 characters" in capped["data"]
    tokens = E.text_tokens(E.read_text(ptb)[0], model)[:101]
    assert capped["int"] == pytest.approx(E.golden_bpc(model, tokens, "int"), abs=1e-12)


def test_eval_of_a_moved_model(tmp_path, capsys, monkeypatch):
    """A model records its corpus by absolute path, and a relative (older) record is looked
    for beside the model file."""
    model = _lm(tmp_path, sorted(set(TEXT)))
    (tmp_path / "a").mkdir()
    corpus = tmp_path / "a" / "c.txt"
    corpus.write_text(TEXT)
    model.meta.update(corpus=str(corpus.resolve()), corpus_format="plain")
    (tmp_path / "b").mkdir()
    path = model.save(tmp_path / "b" / "m.npz")
    monkeypatch.chdir(tmp_path / "b")
    assert main(["eval", str(path), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert f"{corpus.resolve()} (test split)" in first["data"]
    # an older model: corpus recorded relative to where training ran; both moved together
    model.meta["corpus"] = "data/c.txt"
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    path = model.save(moved / "m.npz")
    shutil.copy(corpus, moved / "c.txt")
    assert main(["eval", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["int"] == first["int"]
    (moved / "c.txt").unlink()
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err
    assert "data/c.txt" in err and "--corpus FILE" in err


def test_generate_folders_have_ordinary_permissions(tmp_path):
    model = golden.Model.random("rnn", "ternary", 3, 4, seed=1)
    d = hw.generate(model, out_dir=tmp_path / "d", lanes=1)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(d.stat().st_mode) == 0o777 & ~umask
    for f in d.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o044 == 0o044 & ~umask, f.name


def test_float_baseline_is_saved_and_evaluated_on_another_text(tmp_path, capsys):
    pytest.importorskip("torch")
    train_text = tmp_path / "t.txt"
    train_text.write_text(TEXT)
    other = tmp_path / "o.txt"
    other.write_text("the rat sat on the cat.\n" * 20)
    out = tmp_path / "f.pt"
    assert main(["train", "--method", "float", "--hidden", "8", "--epochs", "1", "--batch",
                 "4", "--seq-len", "16", "--max-batches", "3", "--corpus", str(train_text),
                 "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "(trainer, float weights (no quantization), activations narrowed" in text
    assert out.is_file()
    assert main(["eval", str(out), "--corpus", str(other), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["metric"] == "BPC" and np.isfinite(res["float"]) and "o.txt" in res["data"]
    # the same file is a PyTorch state dict that `shiftrnn import` quantizes
    assert main(["import", str(out), "--cell", "gru", "--method", "ternary", "--input-kind",
                 "token", "--out", str(tmp_path / "q.npz")]) == 0
    imported = golden.load(tmp_path / "q.npz")  # the default recipe's input norm, folded
    assert imported.hidden_size == 8 and imported.layers[0].x_scale is not None
    assert main(["train", "--method", "float", "--out", str(tmp_path / "f.npz")]) == 2
    assert "no hardware form" in capsys.readouterr().err
