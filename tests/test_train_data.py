"""train.data: corpora, PTB detection, evaluation chunks, BPC of golden models (no torch)."""

import numpy as np
import pytest

import golden
from train import data as D


def test_builtin_corpus_ships_and_loads():
    path = D.builtin_corpus_path()
    assert path.is_file() and path.name.endswith(".txt")
    c = D.load_corpus()
    assert c.source == "<builtin>" and c.fmt == "plain"
    assert len(c.train) > 20000 and len(c.valid) > 1000 and len(c.test) > 1000
    assert 30 <= len(c.vocab) <= 100
    assert "".join(c.vocab[i] for i in c.train[:9]) == "The Town "


def test_ptb_detection_and_conversion(tmp_path):
    ptb = tmp_path / "ptb.txt"
    ptb.write_text("a e r _ b a n k n o t e\nt h e _ c a t\n")
    assert D.detect_format(ptb.read_text()) == "ptb"
    text, fmt = D.read_text(ptb)
    assert fmt == "ptb" and text == "aer banknote\nthe cat\n"
    plain = tmp_path / "plain.txt"
    plain.write_text("a plain_text file with words\nand more words\n")
    assert D.read_text(plain) == (plain.read_text(), "plain")
    # the flag overrides detection
    assert D.read_text(ptb, "plain")[1] == "plain"
    with pytest.raises(ValueError, match="corpus format"):
        D.read_text(ptb, "xml")


def test_corpus_split_and_separate_files(tmp_path):
    a, b, c = (tmp_path / f"{n}.txt" for n in ("tr", "va", "te"))
    a.write_text("hello world " * 20)
    b.write_text("low hello")
    c.write_text("world z")
    corp = D.load_corpus(a, valid=b, test=c)
    assert "z" in corp.vocab and len(corp.valid) == 9 and len(corp.test) == 7
    with pytest.raises(ValueError, match="both"):
        D.load_corpus(a, valid=b)
    with pytest.raises(D.DataError, match="not found"):
        D.load_corpus(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        D.encode_text("hello?", corp.vocab)


def test_chunks_and_bits_per_char():
    tokens = np.arange(1000) % 7
    x, y = D.chunk_tokens(tokens)
    assert x.shape == (D.eval_streams(1000), 999 // D.eval_streams(1000))
    assert np.array_equal(x[:, 1:], y[:, :-1])
    uniform = np.zeros((2, 5, 8))
    assert D.bits_per_char(uniform, np.zeros((2, 5), np.int64)) == pytest.approx(3.0)
    for bad in (8, -1):  # text from another vocabulary: a clear error, not an IndexError
        targets = np.zeros((2, 5), np.int64)
        targets[1, 3] = bad
        with pytest.raises(D.DataError, match=f"symbol {bad} is outside the model's 8-symbol "
                                              r"vocabulary \(0..7\)"):
            D.bits_per_char(uniform, targets)


def test_golden_bpc_of_a_random_token_model():
    m = golden.Model.random("gru", "ternary", 10, 12, output_size=10, seed=3)
    tokens = np.random.default_rng(0).integers(0, 10, 600)
    bi, bf = D.golden_bpc(m, tokens, "int"), D.golden_bpc(m, tokens, "float")
    assert 2.0 < bi < 8.0 and abs(bi - bf) < 0.5


def test_load_classify_validates(tmp_path):
    good = tmp_path / "d.npz"
    np.savez(good, x=np.zeros((4, 3), np.int64), y=np.array([0, 1, 0, 1]))
    x, y = D.load_classify(good)
    assert x.shape == (4, 3) and y.dtype == np.int64
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="needs labels 'y'"):
        D.load_classify(bad)
    np.savez(bad, x=np.zeros((4, 3)), y=np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="integer tokens"):
        D.load_classify(bad)


def test_train_package_and_eval_need_no_torch():
    import subprocess
    import sys

    code = ("import sys, train, train.data, shiftrnn.cmd_train, shiftrnn.cli; "
            "shiftrnn.cli.build_parser(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_paper_table_section_writer(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "paper_table.py"
    spec = importlib.util.spec_from_file_location("paper_table", path)
    P = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(P)
    streams = [2.0, 2.01, 2.02]
    res = {("gru", "float"): {"test_bpc": 2.5, "int_bpc": None, "streams": streams},
           ("gru", "paper: float"): {"test_bpc": 2.0, "int_bpc": None, "streams": streams},
           ("gru", "accurate: float"): {"test_bpc": 2.0, "int_bpc": None, "streams": streams},
           ("gru", "paper: float, lr x2"): {"test_bpc": 1.8, "int_bpc": None,
                                            "streams": streams},
           ("gru", "paper: binary"): {"test_bpc": 2.9, "int_bpc": 2.9, "streams": streams},
           ("gru", "learned: float"): {"test_bpc": 2.1, "int_bpc": None, "streams": streams},
           ("gru", "learned: ternary"): {"test_bpc": 2.14, "int_bpc": 2.14, "streams": streams},
           ("gru", "accurate: pow2-ternary"): {"test_bpc": 1.9, "int_bpc": 1.91,
                                              "streams": [1.9, None, None],
                                              "rtl": {"rtl": 1.95, "golden": 1.95}},
           ("gru", "accurate: ternary"): {"test_bpc": 2.03, "int_bpc": 2.03, "streams": streams,
                                          "rtl": {"rtl": None, "golden": 2.1,
                                                  "why": "per-row scales are not supported"}}}
    meta = dict(corpus="c", steps=5, epochs=1, per_epoch=5, batch=2, seq_len=3, hidden=4,
                lr=0.1, nonlinearity="hard", seed=0, seeds=[0], runs=3, wall=1.0, jobs=1,
                cores=2, load=0.5)
    body = P.render(res, ["gru"], meta)
    assert "mean of" not in body  # one seed: no seeds table
    assert "the last invocation trained 3 of them" in body and "earlier invocations" in body
    whole = P.render(res, ["gru"], {**meta, "runs": len(res)})
    assert "one invocation trained all of them (and ran the RTL) in 0 min" in whole
    assert "earlier invocations" not in whole
    assert "GRU paper: binary: fails (+0.900 BPC; against the best learning rate's float: " \
        "fails, +1.100)" in body
    assert "GRU learned: ternary: within 0.05 (+0.040 BPC)." in body  # its own float twin
    assert "GRU accurate: ternary: within 0.05 (+0.030 BPC)." in body
    assert "GRU accurate: pow2-ternary: beats float" in body
    assert "GRU accurate: ternary: within 0.05" in body
    assert "| accurate: pow2-ternary | 1.900 | 1.910 | -0.100 | -0.100 | 1.900 / - / - " \
        "| 1.950 (1.950) |" in body
    assert "| paper: float, lr x2 | 1.800 | n/a | -0.200 |  |" in body
    assert "n/a: per-row scales are not supported" in body
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Paper table\n\nstale\n\n## Other\n\nkept\n")
    P.write_section(doc, body)
    text = doc.read_text()
    assert "stale" not in text and "kept" in text and "| paper: binary | 2.900 |" in text
    assert text.index("## Paper table") < text.index("## Other")



def test_paper_table_seeds(tmp_path):
    """The ``learned`` rows at more seeds: one job per seed, keyed apart, the RTL at the first
    only; their means against the float network's mean in a table of their own."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "paper_table.py"
    spec = importlib.util.spec_from_file_location("paper_table", path)
    P = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(P)
    args = P.parse_args(["--seeds", "3", "--seed", "4", "--cells", "gru"])
    jobs = {j["label"]: j for j in P.plan(args, corpus=None)}
    seeded = [lbl for lbl in jobs if "@seed" in lbl]
    assert len(seeded) == 2 * 5  # learned float (base rate) and its 4 methods, seeds 5 and 6
    ternary = jobs["learned: ternary @seed 6"]
    assert ternary["config"]["seed"] == 6 and ternary["row"] == "learned: ternary"
    assert not ternary["rtl"] and jobs["learned: ternary"]["rtl"]
    assert jobs["learned: ternary"]["config"]["seed"] == 4
    assert "learned: float, lr x2 @seed 5" not in jobs and "paper: ternary @seed 5" not in jobs
    res = {("gru", P.seed_label(lbl, s, 4)): {"test_bpc": b}
           for lbl, bpcs in (("learned: float", (2.0, 2.1, 2.2)),
                             ("learned: ternary", (2.1, 2.1, 2.1)))
           for s, b in zip((4, 5, 6), bpcs, strict=True)}
    body = "\n".join(P.render_seeds(res, "gru", [4, 5, 6]))
    assert "| learned: ternary | 2.100 | 2.100 | 2.100 | 2.100 | +0.000 |" in body
    assert "| learned: float | 2.000 | 2.100 | 2.200 | 2.100 |  |" in body
    assert "GRU learned: ternary, mean of 3 seeds: within 0.05 (+0.000 BPC)." in body
    assert P.render_seeds(res, "gru", [4]) == []
