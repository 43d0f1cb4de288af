"""Quantization-aware training: quantizers equal golden's, forward equals golden's integer path,
training learns, export keeps the trained BPC, runs are deterministic and resumable."""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import golden  # noqa: E402
import train  # noqa: E402
from golden.nonlin import LUT_RANGE  # noqa: E402
from train import data as D  # noqa: E402
from train.nets import ExportError, QuantRNN  # noqa: E402
from train.quant import TensorQuantizer, TorchNonlinearity, fake_quant  # noqa: E402
from train.trainer import TrainConfig, Trainer, bpc, train_classifier, train_lm  # noqa: E402

pytestmark = pytest.mark.torch

TINY_TEXT = ("the cat sat on the mat. the dog sat on the log. " * 12
             + "a cat and a dog. " * 6)


@pytest.fixture(scope="module")
def tiny_corpus():
    text = TINY_TEXT
    vocab = sorted(set(text))
    tok = D.encode_text(text, vocab)
    n = len(tok)
    return D.Corpus(vocab, tok[: int(0.8 * n)], tok[int(0.8 * n): int(0.9 * n)],
                    tok[int(0.9 * n):], source="tiny", fmt="plain")


def tiny_config(**kw):
    base = dict(cell="gru", hidden=16, epochs=4, batch=4, seq_len=16, lr=1e-2, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def _weights(shape, scale, seed):
    """Random weights with the quantizers' threshold cases mixed in."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1.5 * scale, 1.5 * scale, size=shape)
    flat = w.reshape(-1)
    special = [0.0, scale, -scale, scale / 2, -scale / 2, 0.25, -0.25, 0.75, 0.5, 2.0**-3,
               1.5 * 2.0**-3, -1.5 * 2.0**-4, 2.0**-9, -(2.0**-12), 1.0, 1.6, -3.0]
    flat[: len(special)] = special
    return w


# ----------------------------------------------------------------------------- quantizers
@pytest.mark.parametrize("method", golden.METHODS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_deterministic_quantizers_equal_golden(method, dtype):
    for shape, seed in (((24, 7), 0), ((9, 40), 1), ((5, 4), 2)):
        w = _weights(shape, golden.glorot_bound(shape), seed)
        wt = torch.tensor(w, dtype=dtype)
        w_seen = wt.to(torch.float64).numpy()  # what golden gets from exported shadow weights
        for params in ({}, {"W0": 0.3} if method == "ternary" else {},
                       {"f": 2} if method == "pow2-ternary" else {},
                       {"kmin": -5, "kmax": 1} if method == "exponential" else {}):
            for terms in (1, 2, 3):
                q = TensorQuantizer.for_tensor(method, shape, params, terms)
                ref = golden.encode(w_seen, method, scale_terms=terms, params=params)
                got = q.values(wt)
                assert got.dtype == dtype
                assert np.array_equal(got.to(torch.float64).numpy(), ref.values), (params, terms)


@pytest.mark.parametrize("method", ["binary", "ternary"])
def test_bias_quantizer_uses_the_matrix_scale(method):
    m = golden.Model.random("lstm", method, 5, 8, output_size=5, seed=4)
    rng = np.random.default_rng(5)
    wi = rng.uniform(-0.3, 0.3, (32, 5))
    b = rng.uniform(-0.3, 0.3, 32)
    lw = {"weight_ih": wi, "weight_hh": rng.uniform(-0.3, 0.3, (32, 8)), "bias_ih": b,
          "bias_hh": b}
    m = golden.Model.from_float("lstm", [lw], method=method)
    qm = TensorQuantizer.for_tensor(method, wi.shape)
    qb = TensorQuantizer.for_tensor(method, b.shape, scale=qm.scale)
    assert np.array_equal(qb.values(torch.tensor(b)).numpy(), m.layers[0].b_ih.values)


@pytest.mark.parametrize("method", ["binary", "ternary", "exponential"])
def test_stochastic_quantizers_levels_and_mean(method):
    shape = (64, 64)
    w = _weights(shape, golden.glorot_bound(shape), 3)
    q = TensorQuantizer.for_tensor(method, shape)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([q.values(torch.tensor(w), True, g) for _ in range(800)]).numpy()
    s = q.effective_scale
    allowed = {"binary": {-s, s}, "ternary": {-s, 0.0, s},
               "exponential": {sg * 2.0**k for sg in (-1, 1) for k in range(-8, 1)}}[method]
    assert set(np.unique(draws).tolist()) <= allowed
    # golden's stochastic quantizer draws from the same levels
    ref = golden.encode(w, method, stochastic=True, rng=np.random.default_rng(0)).values
    assert set(np.unique(ref).tolist()) <= allowed
    if method in ("binary", "ternary"):  # unbiased inside the range (up to the CSD scale)
        r = q.clip_range
        inside = np.abs(w) <= r
        mean = draws.mean(0)[inside] / s * q.scale
        assert np.abs(mean - w[inside]).mean() < 0.05 * r
    assert not np.array_equal(draws[0], draws[1])


def test_clip_ranges():
    assert TensorQuantizer.for_tensor("binary", (4, 4), {"H": 0.5}).clip_range == 0.5
    assert TensorQuantizer.for_tensor("ternary", (4, 4)).clip_range == golden.glorot_bound((4, 4))
    assert TensorQuantizer.for_tensor("pow2-ternary", (4, 4)).clip_range == 0.5
    assert TensorQuantizer.for_tensor("pow2-ternary", (4, 4), {"i": 1, "f": 1}).clip_range == 1.5
    assert TensorQuantizer.for_tensor("exponential", (4, 4), {"kmax": 1}).clip_range == 2.0
    net = QuantRNN("gru", 5, 8, 5, method="ternary")
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(100)
    net.clip_()
    for name, p in net.named_parameters():
        assert p.abs().max() <= net.quantizers[name].clip_range + 1e-12


def test_straight_through_gradient():
    q = TensorQuantizer.for_tensor("ternary", (6, 6))
    w = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
    (q(w) * torch.arange(36.0, dtype=torch.float64).reshape(6, 6)).sum().backward()
    assert torch.equal(w.grad, torch.arange(36.0, dtype=torch.float64).reshape(6, 6))


# ---------------------------------------------------------------- activations and twins
def test_fake_quant_is_golden_narrowing():
    for fmt in golden.DEFAULT_FORMATS.values():
        x = np.concatenate([np.random.default_rng(0).normal(0, 4, 2000),
                            (np.arange(-40, 40) + 0.5) / 2**fmt.frac, [1e9, -1e9]])
        got = fake_quant(torch.tensor(x), fmt).numpy()
        assert np.array_equal(got, fmt.to_float(fmt.from_float(x)))
    x = torch.tensor([0.1, 100.0], requires_grad=True)
    fake_quant(x, golden.Fixed(8, 6)).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0]  # straight through inside, zero where saturated


@pytest.mark.parametrize("kind", golden.KINDS)
def test_nonlinearity_twins(kind):
    nl = golden.Nonlinearity(kind)
    fin = golden.DEFAULT_FORMATS["pre"]
    x_int = np.arange(fin.min_int, fin.max_int + 1)
    x = torch.tensor(fin.to_float(x_int), requires_grad=True)
    for fn, fout in (("sigmoid", golden.DEFAULT_FORMATS["gate"]),
                     ("tanh", golden.DEFAULT_FORMATS["act"])):
        exact = TorchNonlinearity(nl, integer_twin=True)(fn, x, fout)
        assert np.array_equal(exact.detach().numpy(), fout.to_float(nl.int_fn(fn, x_int, fin,
                                                                              fout)))
        smooth = TorchNonlinearity(nl)(fn, x)
        assert np.allclose(smooth.detach().numpy(), nl.float_fn(fn, x.detach().numpy()),
                           atol=1e-12)
        (g,) = torch.autograd.grad(exact.sum(), x)
        assert g.abs().sum() > 0  # LUTs pass the true derivative through
    assert set(LUT_RANGE) == {"sigmoid", "tanh"}


@pytest.mark.parametrize("kind", ["hard", "plan"])
def test_smooth_gradient_keeps_values_and_reaches_saturated_units(kind):
    """``smooth_grad``: the same forward values (and so the same integers), the true
    function's derivative backwards, also where the piecewise-linear kind saturates."""
    nl = golden.Nonlinearity(kind)
    x = torch.tensor([-9.0, -0.5, 0.0, 0.7, 9.0], dtype=torch.float64, requires_grad=True)
    for fn, true in (("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        fout = golden.DEFAULT_FORMATS["gate" if fn == "sigmoid" else "act"]
        plain, smooth = (TorchNonlinearity(nl, integer_twin=True, smooth_grad=sg)(fn, x, fout)
                         for sg in (False, True))
        assert torch.equal(plain, smooth)
        (g_plain,) = torch.autograd.grad(plain.sum(), x)
        (g_smooth,) = torch.autograd.grad(smooth.sum(), x)
        assert g_plain[0] == 0 and g_plain[-1] == 0  # saturated: no gradient
        (want,) = torch.autograd.grad(true(x).sum(), x)
        assert torch.equal(g_smooth, want)


COMBOS = [("rnn", "binary", "plan", "vector", 2), ("rnn", "exponential", "exact", "token", 1),
          ("gru", "ternary", "hard", "token", 2), ("gru", "pow2-ternary", "lut", "vector", 1),
          ("gru", "exponential", "plan", "token", 1), ("lstm", "ternary", "lut", "token", 2),
          ("lstm", "binary", "hard", "vector", 1), ("lstm", "pow2-ternary", "exact", "token", 1)]


@pytest.mark.parametrize("cell,method,kind,input_kind,layers", COMBOS)
def test_fake_quant_forward_is_golden_integer_path(cell, method, kind, input_kind, layers):
    torch.manual_seed(0)
    net = QuantRNN(cell, 9, 12, 7, num_layers=layers, method=method, nonlinearity=kind,
                   fake_quant=True, input_kind=input_kind)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(4)  # push into every quantization level and some saturation
    net.clip_()
    model = net.export()
    rng = np.random.default_rng(1)
    x = rng.integers(0, 9, (4, 15)) if input_kind == "token" else rng.normal(0, 1.5, (4, 15, 9))
    from train.trainer import net_logits

    assert np.array_equal(net_logits(net, x, "quant"), model.run(x, mode="int").logits)
    net.fake_quant = False  # without fake quantization: golden's float path
    assert np.allclose(net_logits(net, x, "quant"), model.run(x, mode="float").logits,
                       atol=1e-9)


# ------------------------------------------------------------------------- training
@pytest.mark.parametrize("method,stochastic", [("float", False), ("binary", False),
                                               ("ternary", False), ("ternary", True),
                                               ("pow2-ternary", False), ("exponential", False)])
def test_tiny_model_overfits(tiny_corpus, method, stochastic):
    cfg = tiny_config(method=method, stochastic=stochastic, epochs=8)
    tr = Trainer(cfg, corpus=tiny_corpus)
    log = tr.run()
    first, last = log.epochs[0]["train_bpc"], log.epochs[-1]["train_bpc"]
    assert last < first - 0.5, (first, last)
    assert last < 3.0


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_export_keeps_the_trained_bpc(tiny_corpus, cell):
    cfg = tiny_config(cell=cell, method="ternary", fake_quant=True, nonlinearity="plan")
    tr = Trainer(cfg, corpus=tiny_corpus)
    log = tr.run()
    model = tr.export()
    trainer_bpc = log.final["test_bpc"]
    int_bpc = bpc(model, tiny_corpus.test, "int")
    assert abs(int_bpc - trainer_bpc) < 0.02
    assert int_bpc == pytest.approx(trainer_bpc, abs=1e-9)  # fake-quant is bit-exact here
    assert model.meta["vocab"] == tiny_corpus.vocab and model.input_kind == "token"
    assert bpc(tr.net, tiny_corpus.test, "int") == pytest.approx(int_bpc)


def _state(tr):
    return {k: v.clone() for k, v in tr.net.state_dict().items()}


def test_same_seed_same_weights(tiny_corpus):
    cfg = tiny_config(method="ternary", stochastic=True, epochs=2)
    a, b = Trainer(cfg, corpus=tiny_corpus), Trainer(cfg, corpus=tiny_corpus)
    a.run()
    b.run()
    sa, sb = _state(a), _state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.export().hash() == b.export().hash()
    c = Trainer(tiny_config(method="ternary", stochastic=True, epochs=2, seed=2),
                corpus=tiny_corpus)
    c.run()
    assert not all(torch.equal(sa[k], c.net.state_dict()[k]) for k in sa)


def test_resume_is_bit_identical(tiny_corpus, tmp_path):
    ck = tmp_path / "ck.pt"
    full = Trainer(tiny_config(method="exponential", stochastic=True, epochs=3),
                   corpus=tiny_corpus)
    full.run()
    Trainer(tiny_config(method="exponential", stochastic=True, epochs=3), corpus=tiny_corpus,
            checkpoint=ck).run(stop_after=1)
    resumed = Trainer(tiny_config(method="exponential", stochastic=True, epochs=3),
                      corpus=tiny_corpus, checkpoint=ck, resume=True)
    assert resumed.epoch == 1
    log = resumed.run()
    assert len(log.epochs) == 3
    sa, sb = _state(full), _state(resumed)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ValueError, match="different settings"):
        Trainer(tiny_config(method="ternary", epochs=3), corpus=tiny_corpus, checkpoint=ck,
                resume=True)


def test_keep_best_selects_the_best_validated_epoch(tiny_corpus):
    tr = Trainer(tiny_config(method="binary", epochs=4, lr=3e-2), corpus=tiny_corpus)
    log = tr.run()
    valid = [r["valid_bpc"] for r in log.epochs]
    assert log.final["selected_epoch"] == int(np.argmin(valid)) + 1
    assert tr.evaluate("valid")["valid_bpc"] == pytest.approx(min(valid))
    assert tr.export().meta["valid_bpc"] == pytest.approx(min(valid))
    last = Trainer(tiny_config(method="binary", epochs=4, lr=3e-2, keep_best=False),
                   corpus=tiny_corpus)
    assert last.run().final["selected_epoch"] == 4
    assert last.evaluate("valid")["valid_bpc"] == pytest.approx(valid[-1])


def test_train_lm_api_and_float_baseline(tiny_corpus, tmp_path):
    model, log = train_lm(tiny_corpus, config=tiny_config(method="pow2-ternary", epochs=1),
                          log_path=tmp_path / "log.json")
    assert isinstance(model, golden.Model) and model.method == "pow2-ternary"
    assert (tmp_path / "log.json").read_text().startswith("{")
    assert "test_bpc" in log.final and len(log.epochs) == 1
    with pytest.raises(ExportError, match="no hardware form"):
        train_lm(tiny_corpus, config=tiny_config(method="float", epochs=1))
    tr, _ = train_lm(tiny_corpus, config=tiny_config(method="float", epochs=1),
                     return_trainer=True)
    with pytest.raises(ExportError, match="no hardware form"):
        tr.export()
    assert train.bpc(tr.net, tiny_corpus, "shadow") == train.bpc(tr.net, tiny_corpus, "quant")


def test_classifier_learns_a_token_rule():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (240, 6))
    y = (x[:, -1] >= 2).astype(np.int64)  # the label is in the last token
    model, log = train_classifier((x, y), cell="lstm", method="ternary", hidden=12, epochs=6,
                                  batch=16, lr=2e-2, seed=0)
    assert log.final["test_acc"] >= 0.9
    acc_int = (model.run(x, mode="int").logits[:, -1].argmax(-1) == y).mean()
    assert acc_int >= 0.9 and model.meta["classes"] == 2


def test_classifier_vector_input():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (200, 5, 3))
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    model, log = train_classifier((x, y), cell="rnn", method="exponential", hidden=8, epochs=6,
                                  batch=16, lr=2e-2, fake_quant=True)
    assert model.input_kind == "vector" and log.final["test_acc"] >= 0.75


# ----------------------------------------------------------------------------- CLI
def test_cli_train_then_eval(tmp_path, capsys):
    from shiftrnn.cli import main

    text = tmp_path / "t.txt"
    text.write_text(TINY_TEXT * 2)
    out, log = tmp_path / "m.npz", tmp_path / "log.csv"
    args = ["train", "--cell", "gru", "--method", "ternary", "--hidden", "12", "--epochs", "2",
            "--batch", "4", "--seq-len", "16", "--corpus", str(text), "--fake-quant",
            "--out", str(out), "--log", str(log), "--no-progress"]
    assert main(args) == 0
    assert out.is_file() and log.read_text().splitlines()[0].startswith("epoch,")
    assert main(args) == 2  # refuses to overwrite
    assert "exists" in capsys.readouterr().err
    model = golden.load(out)
    assert model.meta["vocab"] == sorted(set(TINY_TEXT))
    assert main(["eval", str(out), "--corpus", str(text)]) == 0
    printed = capsys.readouterr().out
    assert "float" in printed and "int" in printed
    assert main(["eval", str(out), "--corpus", str(text), "--json"]) == 0
    import json

    res = json.loads(capsys.readouterr().out)
    assert res["int"] == pytest.approx(bpc(model, str(text), "int"))
    assert main(["train", "--method", "float", "--out", str(tmp_path / "f.npz")]) == 2
    assert "no hardware form" in capsys.readouterr().err


def test_overfit_each_cell_combination_is_cheap(tiny_corpus):
    """RNN and 2-layer nets train too (one short epoch each)."""
    for cell, layers in itertools.product(("rnn", "lstm"), (1, 2)):
        tr = Trainer(tiny_config(cell=cell, layers=layers, method="exponential", epochs=1,
                                 fake_quant=True, nonlinearity="lut"), corpus=tiny_corpus)
        log = tr.run()
        assert np.isfinite(log.final["test_bpc"])


def test_cli_classify_then_eval(tmp_path, capsys):
    from shiftrnn.cli import main

    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (120, 5))
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=(x[:, -1] >= 2).astype(np.int64))
    out = tmp_path / "c.npz"
    assert main(["train", "--task", "classify", "--data", str(data), "--cell", "rnn",
                 "--method", "binary", "--hidden", "8", "--epochs", "2", "--batch", "16",
                 "--out", str(out), "--no-progress"]) == 0
    assert main(["eval", str(out), "--data", str(data), "--json"]) == 0
    import json

    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["metric"] == "accuracy" and 0 <= res["int"] <= 1
    assert main(["train", "--task", "classify", "--method", "binary", "--out",
                 str(tmp_path / "e.npz")]) == 2
    assert "--data" in capsys.readouterr().err
