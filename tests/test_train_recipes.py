"""Training recipes: the paper's choices, data-derived per-matrix and per-row scales, the input
normalisation folded at export, bit-exact export, long-stream stability, and the CLI."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import golden  # noqa: E402
import train  # noqa: E402
from train import data as D  # noqa: E402
from train.nets import QuantRNN  # noqa: E402
from train.recipes import RECIPES, paper_lr_scale  # noqa: E402
from train.trainer import TrainConfig, Trainer, bpc, net_logits, train_classifier  # noqa: E402

pytestmark = pytest.mark.torch

TEXT = ("the cat sat on the mat. the dog sat on the log. " * 12 + "a cat and a dog. " * 6)


@pytest.fixture(scope="module")
def corpus():
    vocab = sorted(set(TEXT))
    tok = D.encode_text(TEXT, vocab)
    n = len(tok)
    return D.Corpus(vocab, tok[: int(0.8 * n)], tok[int(0.8 * n): int(0.9 * n)],
                    tok[int(0.9 * n):], source="tiny", fmt="plain")


def config(**kw):
    base = dict(cell="gru", hidden=12, epochs=3, batch=4, seq_len=16, lr=1e-2, seed=1,
                fake_quant=True)
    return TrainConfig(**{**base, **kw})


def test_recipes_are_one_list_with_descriptions():
    assert list(RECIPES) == ["classic", "paper", "learned", "accurate", "accurate-matrix"]
    assert all(r.description and r.name == k for k, r in RECIPES.items())
    assert TrainConfig().recipe == "classic"  # earlier configs and checkpoints mean this
    assert TrainConfig.from_dict({"method": "ternary"}).recipe == "classic"
    with pytest.raises(ValueError, match="recipe must be one of classic, paper"):
        TrainConfig(recipe="fast")


@pytest.mark.parametrize("recipe", ["paper", "accurate", "accurate-matrix"])
@pytest.mark.parametrize("cell,method,stochastic", [("gru", "ternary", True),
                                                    ("lstm", "binary", False),
                                                    ("gru", "pow2-ternary", False),
                                                    ("rnn", "exponential", False)])
def test_export_keeps_the_trained_bpc_bit_for_bit(corpus, recipe, cell, method, stochastic):
    tr = Trainer(config(cell=cell, method=method, stochastic=stochastic, recipe=recipe),
                 corpus=corpus)
    log = tr.run()
    model = tr.export()
    assert bpc(model, corpus.test, "int") == pytest.approx(log.final["test_bpc"], abs=1e-9)
    layer = model.layers[0]
    assert (layer.x_scale is not None) == (recipe in ("paper", "accurate"))
    few = method != "exponential"
    assert (layer.w_hh.row_scale is not None) == (recipe == "accurate" and few)


@pytest.mark.parametrize("recipe", ["paper", "accurate"])
@pytest.mark.parametrize("input_kind", ["token", "vector"])
def test_fake_quant_forward_is_golden_integer_path(recipe, input_kind):
    torch.manual_seed(0)
    net = QuantRNN("lstm", 9, 12, 7, num_layers=2, method="ternary", fake_quant=True,
                   input_kind=input_kind, recipe=recipe, nonlinearity="plan")
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for norm in net.input_norms:  # statistics as if trained
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.05, 2)
            norm.weight.uniform_(-0.3, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    net.eval()
    x = rng.integers(0, 9, (4, 15)) if input_kind == "token" else rng.normal(0, 1.5, (4, 15, 9))
    model = net.export()
    assert np.array_equal(net_logits(net, x, "quant"), model.run(x, mode="int").logits)
    net.fake_quant = False
    assert np.allclose(net_logits(net, x, "quant"), model.run(x, mode="float").logits,
                       atol=1e-9)


def test_paper_recipe_follows_the_authors():
    net = QuantRNN("gru", 10, 16, 10, method="ternary", recipe="paper")
    W0_in, W0_hid = np.sqrt(6 / (10 + 16)), np.sqrt(6 / 32)
    for name, want in (("weight_ih_l0", W0_in), ("bias_ih_l0", W0_in), ("bias_hh_l0", W0_in),
                       ("weight_hh_l0", W0_hid), ("head.weight", np.sqrt(6 / (16 + 10)))):
        assert net.quantizers[name].scale == pytest.approx(want)
    assert torch.equal(net.input_norms[0].weight, torch.full((10,), 0.1))
    w = net.weight_ih_l0.detach()
    assert 0.07 < float(w.std()) < 0.13 and float(net.bias_ih_l0.detach().abs().max()) == 0
    assert QuantRNN("gru", 10, 16, 10, method="binary", recipe="paper").quantizers[
        "weight_hh_l0"].scale == 1.0  # H = 1
    tr = Trainer(TrainConfig(cell="gru", method="ternary", hidden=16, recipe="paper"),
                 corpus=D.load_corpus(None))
    scales = sorted(g["lr_scale"] for g in tr.opt.param_groups)  # the layer's and the head's
    assert scales == pytest.approx([1.0, paper_lr_scale(len(tr.corpus.vocab), 16)])


def test_data_scales_follow_the_weights():
    net = QuantRNN("gru", 6, 8, 6, method="ternary", recipe="accurate")
    qs = net.tensor_quantizers()
    w = net.weight_hh_l0.detach().double()
    want = 2 * RECIPES["accurate"].threshold * w.abs().mean(1).numpy()
    assert np.allclose(qs["weight_hh_l0"].row_scales, want, rtol=0, atol=1e-15)
    assert np.array_equal(qs["bias_hh_l0"].row_scales, qs["weight_hh_l0"].row_scales)
    net = QuantRNN("gru", 6, 8, 6, method="pow2-ternary", recipe="accurate-matrix")
    s = net.tensor_quantizers()["weight_ih_l0"].scale
    assert s == 2.0 ** round(np.log2(s))  # a power of two: no adder


def test_classifier_with_normalised_vector_input():
    rng = np.random.default_rng(1)
    x = rng.normal(3, 0.2, (160, 5, 3))  # far from zero mean: the normalisation matters
    y = (x[:, :, 0].mean(1) > 3).astype(np.int64)
    tr, log = train_classifier((x, y), cell="gru", method="ternary", hidden=8, epochs=4,
                               batch=16, lr=2e-2, recipe="paper", fake_quant=True,
                               return_trainer=True)
    model = tr.export()
    acc = (model.run(x, mode="int").logits[:, -1].argmax(-1) == y).mean()
    assert model.layers[0].x_scale is not None and acc > 0.5


def test_generator_builds_input_scales_and_refuses_per_row_scales(corpus, tmp_path):
    """``paper`` (input batch norm folded into input column scales) and ``learned`` (one trained
    scale per gate as well) generate; ``accurate`` (a scale per row) is refused in one line,
    and nothing is written."""
    hw = pytest.importorskip("hw")
    models = {}
    for recipe in ("paper", "learned", "accurate"):
        tr = Trainer(config(recipe=recipe, epochs=1), corpus=corpus)
        tr.run()
        models[recipe] = tr.export()
    for recipe in ("paper", "learned"):
        d = hw.generate(models[recipe], out_dir=tmp_path / recipe, lanes=2)
        assert (d / "manifest.json").is_file()
    gates = models["learned"].layers[0].w_hh.block_multipliers(3)
    assert models["learned"].layers[0].w_hh.row_scale is not None and len(set(gates)) > 1
    with pytest.raises(ValueError, match="w_ih: the per-row scales differ within a gate's rows"):
        hw.generate(models["accurate"], out_dir=tmp_path / "accurate")
    assert not (tmp_path / "accurate").exists()


@pytest.mark.slow
def test_long_streams_keep_the_short_stream_bpc():
    """A stochastically trained ternary model scores the same over streams of 256, 4k and 32k
    characters (the deterministic tail of the recipe trains the network that is exported)."""
    corpus = D.load_corpus(None)
    tr = Trainer(TrainConfig(cell="gru", method="ternary", stochastic=True, hidden=16,
                             epochs=8, recipe="accurate", fake_quant=True), corpus=corpus)
    tr.run()
    model = tr.export()
    text = np.concatenate([corpus.train, corpus.valid, corpus.test] * 2)[:32769]
    res = [D.golden_bpc(model, text, "int", streams=32768 // n) for n in (256, 4096, 32768)]
    assert res[0] < 4.0  # it learned something
    assert max(res) - res[0] < 0.05, res


def test_cli_recipe(tmp_path, capsys):
    from shiftrnn.cli import main

    text = tmp_path / "t.txt"
    text.write_text(TEXT * 2)
    out = tmp_path / "m.npz"
    assert main(["train", "--recipe", "paper", "--method", "binary", "--hidden", "8",
                 "--epochs", "1", "--batch", "4", "--corpus", str(text), "--fake-quant",
                 "--out", str(out), "--no-progress"]) == 0
    model = golden.load(out)
    assert model.meta["train_config"]["recipe"] == "paper"
    assert model.layers[0].w_ih.scale == 1.0 and model.layers[0].x_scale is not None
    assert "[paper]" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--recipe", "nope", "--method", "binary", "--out", str(out)])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert train.RECIPES is RECIPES


def test_recipe_search_variant(monkeypatch):
    """bench/recipe_search.py: a recipe with some knobs changed, typed from text; a bad field or
    value stops with the allowed values."""
    import importlib.util
    from pathlib import Path

    from train import recipes

    bench = Path(__file__).resolve().parents[1] / "bench"
    monkeypatch.syspath_prepend(str(bench))
    monkeypatch.setattr(recipes, "RECIPES", dict(recipes.RECIPES))
    spec = importlib.util.spec_from_file_location("recipe_search", bench / "recipe_search.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.variant("paper", ["lr_scale=false", "quant_lr=4", "init=torch"])
    assert (r.lr_scale, r.quant_lr, r.init, r.input_norm) == (False, 4.0, "torch", True)
    assert r.name == "paper+lr_scale=False+quant_lr=4.0+init=torch"
    assert recipes.get_recipe(r.name) is r
    assert mod.variant("learned", ["quant_final_lr=none"]).quant_final_lr is None
    assert mod.variant("paper", ["quant_final_lr=0"]).quant_final_lr == 0.0
    with pytest.raises(SystemExit, match="FIELD one of scales, threshold"):
        mod.variant("paper", ["bogus=1"])
    with pytest.raises(SystemExit, match="lr_scale: expected true or false"):
        mod.variant("paper", ["lr_scale=maybe"])
    with pytest.raises(SystemExit, match=r"--set: recipe 'paper\+rows=True': rows = true "
                                         "needs scales = 'data'"):
        mod.variant("paper", ["rows=true"])
    with pytest.raises(SystemExit, match="quant_lr: expected a float"):
        mod.variant("paper", ["quant_lr=x"])


def test_learned_scale_gets_lsq_gradient_and_keeps_the_value():
    """The forward value is the fixed-scale quantizer's; the scale's gradient is LSQ's:
    ``level - w/s`` inside the range, ``level`` (the saturated code) outside it."""
    q = train.TensorQuantizer.for_tensor("ternary", (1, 4), {"W0": 0.5}, scale_terms=8)
    w = torch.tensor([[0.1, 0.3, -0.4, 0.9]], dtype=torch.float64, requires_grad=True)
    s = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    out = q(w, scale=s)
    assert torch.equal(out.detach(), q.values(w))
    out.sum().backward()
    levels, v = np.array([0, 1, -1, 1]), np.array([0.2, 0.6, -0.8, 1.8])
    want = (levels - np.where(np.abs(v) <= 1, v, 0)).sum() / np.sqrt(4 * 1)
    assert float(s.grad) == pytest.approx(want, abs=1e-12)
    assert torch.equal(w.grad, torch.ones_like(w))


@pytest.mark.parametrize("cell,method", [("gru", "ternary"), ("lstm", "pow2-ternary"),
                                         ("gru", "exponential")])
def test_learned_scales_train_and_export_bit_for_bit(corpus, cell, method):
    """``learned``: every gate's scale moves (one per gate of each cell matrix, one for the
    head), at its own learning rate, and the export keeps the trained BPC bit for bit with the
    trained scales (one row scale per gate)."""
    tr = Trainer(config(cell=cell, method=method, recipe="learned"), corpus=corpus)
    lr_of = {id(p): g["lr_scale"] for g in tr.opt.param_groups for p in g["params"]}
    assert {lr_of[id(p)] for p in tr.net.log_scales.values()} == {RECIPES["learned"].scale_lr}
    start = {k: v.detach().clone() for k, v in tr.net.log_scales.items()}
    log = tr.run()
    moved = {k: v.detach() for k, v in tr.net.log_scales.items()}
    gates = len(golden.GATES[cell])
    assert {k: tuple(v.shape) for k, v in start.items()} == {
        "weight_ih_l0": (gates,), "weight_hh_l0": (gates,), "head_weight": ()}
    assert all((moved[k] != start[k]).all() for k in start)
    model = tr.export()
    assert bpc(model, corpus.test, "int") == pytest.approx(log.final["test_bpc"], abs=1e-9)
    params = tr.net.tensor_params()
    H = tr.net.hidden_size
    want = np.repeat((2.0 ** moved["weight_hh_l0"].double()).numpy(), H)
    assert np.array_equal(params["weight_hh_l0"]["row_scales"], want)
    assert params["bias_hh_l0"]["row_scales"] is params["weight_hh_l0"]["row_scales"]
    assert params["head.weight"][golden.SCALE_PARAMS[method]] == 2.0 ** moved["head_weight"].item()
    assert len(model.layers[0].w_hh.block_multipliers(gates)) == gates  # what hw builds


def test_gate_scales_get_their_own_rows_lsq_gradient():
    """A trained scale per gate (its value repeated over the gate's rows) gets its rows' LSQ
    gradient, scaled by the weights that share one value; the values are the per-row ones."""
    rows = np.array([0.5, 0.5, 0.25, 0.25])
    q = train.TensorQuantizer("ternary", {"W0": 1.0}, 8, row_scales=rows)
    w = torch.tensor([[0.1, 0.3], [-0.4, 0.9], [0.1, -0.2], [0.3, 0.05]], dtype=torch.float64,
                     requires_grad=True)
    log_s = torch.log2(torch.tensor([0.5, 0.25], dtype=torch.float64)).requires_grad_()
    out = q(w, scale=2.0 ** log_s)
    assert torch.equal(out.detach(), torch.from_numpy(
        np.where(np.abs(w.detach().numpy()) > rows[:, None] / 2,
                 np.sign(w.detach().numpy()), 0) * rows[:, None]))
    out.sum().backward()
    v = w.detach().numpy() / rows[:, None]
    lv = np.where(np.abs(v) > 0.5, np.sign(v), 0)
    per_row = (lv - np.where(np.abs(v) <= 1, v, 0)).sum(1) / np.sqrt(4 * 1)
    ds = np.array([per_row[:2].sum() * 0.5, per_row[2:].sum() * 0.25]) * np.log(2)
    assert np.allclose(log_s.grad.numpy(), ds, atol=1e-12)
    q.clip_(w.data)  # each row to its own range
    assert torch.equal(w.detach(), torch.tensor([[0.1, 0.3], [-0.4, 0.5], [0.1, -0.2],
                                                 [0.25, 0.05]], dtype=torch.float64))


@pytest.mark.parametrize("base,change,message", [
    ("accurate", {"learn_scales": True}, "learn_scales trains one scale per matrix or per gate"),
    ("paper", {"gate_scales": True}, "gate_scales = true needs learn_scales = true"),
    ("paper", {"rows": True}, "rows = true needs scales = 'data'"),
    ("paper", {"scales": "Paper"}, "scales must be one of glorot, paper, data, got 'Paper'"),
    ("paper", {"init": "xavier"}, "init must be one of torch, paper"),
    ("learned", {"quant_final_lr": 1.5}, r"quant_final_lr must be in \[0, 1\]"),
    ("paper", {"final_lr": -0.1}, r"final_lr must be in \[0, 1\]"),
    ("paper", {"quant_lr": 0.0}, "quant_lr must be > 0"),
    ("paper", {"scale_lr": -1.0}, "scale_lr must be >= 0"),
])
def test_recipe_refuses_bad_values_and_combinations(base, change, message):
    """A recipe is checked when it is made: a field out of range, or a combination that would
    silently do nothing, is one line naming the recipe and the field."""
    import dataclasses

    with pytest.raises(ValueError, match=f"recipe 'bad': {message}"):
        dataclasses.replace(RECIPES[base], name="bad", **change)


def test_quantized_networks_anneal_to_their_own_final_lr(corpus):
    """``quant_final_lr``: a quantized network's learning rate decays to it (every tensor);
    a float network's to ``final_lr``."""
    recipe = RECIPES["learned"]
    assert recipe.quant_final_lr == 0.0 and recipe.lr_factor(1.0, 0.0) == 0.0
    assert recipe.lr_factor(1.0) == pytest.approx(recipe.final_lr)
    ends = {}
    for method in ("ternary", "float"):
        tr = Trainer(config(method=method, recipe="learned"), corpus=corpus)
        start = tr._lr()
        tr.run()
        ends[method] = tr._lr() / start
        last = [g["lr"] / g.get("lr_scale", 1.0) for g in tr.opt.param_groups]
        assert max(last) - min(last) < 1e-12 and max(last) < start  # one schedule for all
    assert ends["ternary"] == 0.0 and ends["float"] == pytest.approx(recipe.final_lr)


@pytest.mark.parametrize("f", [1, 2])
def test_trained_pow2_ternary_scale_starts_at_the_ternary_level(f):
    """A trained pow2-ternary scale starts with its first level ``scale * 2**-f`` at ternary's
    W0; the authors' recipe keeps their scale of 1."""
    mp = {"f": f}
    learned = QuantRNN("gru", 10, 16, 10, method="pow2-ternary", method_params=mp,
                       recipe="learned").quantizers
    ternary = QuantRNN("gru", 10, 16, 10, method="ternary", recipe="learned").quantizers
    paper = QuantRNN("gru", 10, 16, 10, method="pow2-ternary", method_params=mp,
                     recipe="paper").quantizers
    for name in ("weight_ih_l0", "weight_hh_l0", "head.weight"):
        assert learned[name].scale * 2.0**-f == pytest.approx(ternary[name].scale)
        assert paper[name].scale == 1.0
