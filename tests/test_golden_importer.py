"""Importing PyTorch nn.RNN / nn.GRU / nn.LSTM weights (golden.importer)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from golden import Model, Nonlinearity, encode
from golden.importer import StateDictError, from_state_dict, load_torch
from golden.model import INPUT_NORM_EPS

G = {"rnn": 1, "gru": 3, "lstm": 4}


def numpy_sd(cell: str, n_in: int, H: int, layers: int, rng, head: int | None = None) -> dict:
    sd = {}
    for k in range(layers):
        sd[f"weight_ih_l{k}"] = rng.uniform(-0.5, 0.5, (G[cell] * H, n_in if k == 0 else H))
        sd[f"weight_hh_l{k}"] = rng.uniform(-0.5, 0.5, (G[cell] * H, H))
        sd[f"bias_ih_l{k}"] = rng.uniform(-0.5, 0.5, G[cell] * H)
        sd[f"bias_hh_l{k}"] = rng.uniform(-0.5, 0.5, G[cell] * H)
    if head:
        sd["head.weight"] = rng.uniform(-0.5, 0.5, (head, H))
        sd["head.bias"] = rng.uniform(-0.5, 0.5, head)
    return sd


def assert_imported(model: Model, sd: dict, prefix: str = "", scale_terms: int = 2) -> None:
    """Each quantized tensor is ``encode`` of the tensor of the same PyTorch name."""
    for k, layer in enumerate(model.layers):
        for attr, name in (("w_ih", "weight_ih"), ("w_hh", "weight_hh")):
            want = encode(np.asarray(sd[f"{prefix}{name}_l{k}"], np.float64), model.method,
                          scale_terms=scale_terms, params=model.method_params)
            got = getattr(layer, attr)
            assert np.array_equal(got.codes, want.codes) and got.scale_csd == want.scale_csd
    if "head.weight" in sd:
        want = encode(np.asarray(sd["head.weight"], np.float64), model.method,
                      scale_terms=scale_terms, params=model.method_params)
        assert np.array_equal(model.head.w.codes, want.codes)
    else:
        assert model.head is None


# ------------------------------------------------------------------------ numpy state dicts
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_from_numpy_state_dict_equals_from_float(cell, rng):
    sd = numpy_sd(cell, 5, 3, 2, rng, head=4)
    m = from_state_dict(sd, cell, "ternary", nonlinearity=Nonlinearity("plan"))
    ref = Model.from_float(
        cell, [{n: sd[f"{n}_l{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
               for k in range(2)],
        {"weight": sd["head.weight"], "bias": sd["head.bias"]}, method="ternary",
        nonlinearity=Nonlinearity("plan"), meta={"source": "state_dict"})
    assert m.hash() == ref.hash()
    assert (m.input_size, m.hidden_size, m.output_size, len(m.layers)) == (5, 3, 4, 2)


def test_options_pass_through(rng):
    sd = numpy_sd("gru", 6, 2, 1, rng)
    m = from_state_dict(sd, "gru", "exponential", input_kind="token", scale_terms=1,
                        method_params={"kmin": -5, "kmax": 0}, meta={"run": 3})
    assert m.input_kind == "token" and m.scale_terms == 1
    assert m.method_params == {"kmin": -5, "kmax": 0} and m.meta == {"source": "state_dict",
                                                                     "run": 3}
    assert_imported(m, sd, scale_terms=1)
    assert m.run(np.array([[0, 5, 2]])).h.shape == (1, 3, 2)


@pytest.mark.parametrize("method", ["binary", "exponential", "ternary"])
def test_missing_bias_is_exact_zero(method, rng):
    sd = numpy_sd("lstm", 3, 2, 2, rng, head=2)
    for k in ("bias_ih_l0", "bias_hh_l1", "head.bias"):
        del sd[k]
    m = from_state_dict(sd, "lstm", method)
    assert not m.layers[0].b_ih.ints.any() and not m.layers[1].b_hh.ints.any()
    assert not m.head.b.ints.any()
    assert m.layers[0].b_hh.ints.any()  # present biases are quantized as usual
    assert m.run(np.zeros((1, 2, 3))).h.shape == (1, 2, 2)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda sd: sd.pop("weight_hh_l1"), "'weight_hh_l1': missing"),
        (lambda sd: sd.pop("weight_ih_l1"), "'weight_ih_l1': missing"),
        (lambda sd: sd.pop("weight_ih_l0"), "'weight_ih_l0': missing"),
        (lambda sd: sd.update(weight_ih_l1=np.zeros((9, 4))), "'weight_ih_l1': shape \\(9, 4\\)"),
        (lambda sd: sd.update(bias_hh_l0=np.zeros(8)), "'bias_hh_l0': shape \\(8,\\)"),
        (lambda sd: sd.update(weight_hh_l0=np.zeros((8, 3))), "'weight_hh_l0': shape \\(8, 3\\)"),
        (lambda sd: sd.update({"head.weight": np.zeros((2, 5))}), "'head.weight': shape"),
        (lambda sd: sd.update({"head.bias": np.zeros(3)}), "'head.weight': missing"),
        (lambda sd: sd.update(weight_ih_l3=np.zeros((9, 3))), "'weight_hh_l2': missing|l2"),
        (lambda sd: sd.update({"embed.weight": np.zeros((4, 4))}), "unexpected keys"),
        (lambda sd: sd.update(weight_ih_l0_reverse=np.zeros((9, 5))), "bidirectional"),
        (lambda sd: sd.update(bias_ih_l0=np.full(9, np.nan)), "'bias_ih_l0': contains NaN"),
        (lambda sd: sd.update(bias_ih_l0="abc"), "'bias_ih_l0': not a numeric array"),
        (lambda sd: sd.update({"input_norms.0.weight": np.ones(4)}),
         "'input_norms.0.weight': shape \\(4,\\) but a gru input norm of 5 columns"),
        (lambda sd: sd.update({"input_norms.1.weight": np.ones(3)}),
         "'input_norms.1.bias': shape|'input_norms.1.bias': missing"),
    ],
)
def test_state_dict_errors_name_the_key(edit, message, rng):
    sd = numpy_sd("gru", 5, 3, 2, rng)
    edit(sd)
    with pytest.raises(StateDictError, match=message):
        from_state_dict(sd, "gru", "ternary")


def test_trainer_input_norm_is_folded(rng):
    """The trainer's saved input batch norm (``input_norms.{k}.*``) becomes the layer's input
    column scales and folded bias, as ``Model.from_float`` folds them from the trainer."""
    sd = numpy_sd("gru", 5, 3, 1, rng)
    w, b, mean = rng.uniform(0.05, 1, 5), rng.normal(0, 0.3, 5), rng.uniform(0, 0.5, 5)
    var = rng.uniform(0.01, 0.3, 5)
    sd.update({"input_norms.0.weight": w, "input_norms.0.bias": b,
               "input_norms.0.running_mean": mean, "input_norms.0.running_var": var})
    got = from_state_dict(sd, "gru", "ternary", input_kind="vector")
    scale = w / np.sqrt(var + INPUT_NORM_EPS)
    layer = {k[:-3]: v for k, v in sd.items() if k.endswith("_l0")}
    want = Model.from_float("gru", [{**layer, "input_scale": scale,
                                     "input_offset": b - scale * mean}],
                            None, method="ternary", input_kind="vector",
                            meta={"source": "state_dict"})
    assert got.layers[0].x_scale is not None and got.hash() == want.hash()


def test_wrong_cell_is_named(rng):
    sd = numpy_sd("lstm", 5, 3, 1, rng)
    with pytest.raises(StateDictError, match="'weight_hh_l0': shape \\(12, 3\\).*is the cell"):
        from_state_dict(sd, "gru", "ternary")
    with pytest.raises(StateDictError, match="cell must be one of"):
        from_state_dict(sd, "tcn", "ternary")
    with pytest.raises(StateDictError, match="non-empty state dict"):
        from_state_dict({}, "gru", "ternary")


def test_load_torch_without_torch(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError, match="needs PyTorch, which is not installed"):
        load_torch(tmp_path / "m.pt")


# --------------------------------------------------------------------------- real PyTorch
def torch_module(cell: str, n_in: int, H: int, layers: int, bias: bool = True):
    torch = pytest.importorskip("torch")
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    return cls(n_in, H, num_layers=layers, bias=bias)


@pytest.mark.torch
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("head", [False, True])
def test_import_torch_saved_state_dict(cell, layers, head, tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rnn = torch_module(cell, 4, 3, layers)
    if head:
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn, self.head = rnn, torch.nn.Linear(3, 2)

        sd = Net().state_dict()  # keys rnn.weight_ih_l0 ... and head.weight, head.bias
    else:
        sd = rnn.state_dict()
    torch.save(sd, tmp_path / "w.pt")
    loaded = load_torch(tmp_path / "w.pt")
    assert sorted(loaded) == sorted(sd)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float64 for v in loaded.values())
    m = from_state_dict(loaded, cell, "ternary")
    assert_imported(m, loaded, prefix="rnn." if head else "")
    assert (m.input_size, m.hidden_size, len(m.layers)) == (4, 3, layers)
    assert m.output_size == (2 if head else None)
    # tensors straight from PyTorch work as well as numpy arrays
    assert from_state_dict(sd, cell, "ternary").hash() == m.hash()


@pytest.mark.torch
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_import_torch_saved_module(cell, tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    rnn = torch_module(cell, 4, 3, 2, bias=False)
    torch.save(rnn, tmp_path / "m.pt")
    sd = load_torch(tmp_path / "m.pt")
    assert sorted(sd) == sorted(rnn.state_dict())
    m = from_state_dict(sd, cell, "binary")
    assert all(not b.ints.any() for layer in m.layers for b in (layer.b_ih, layer.b_hh))


@pytest.mark.torch
def test_load_torch_errors(tmp_path):
    torch = pytest.importorskip("torch")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_torch(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(StateDictError, match="junk.pt: not a readable PyTorch file"):
        load_torch(tmp_path / "junk.pt")
    torch.save({"lr": 0.1}, tmp_path / "cfg.pt")
    with pytest.raises(StateDictError, match="cfg.pt: holds a dict"):
        load_torch(tmp_path / "cfg.pt")
    torch.save(Custom(), tmp_path / "custom.pt")
    with pytest.raises(StateDictError, match="custom.pt: holds objects other than tensors"):
        load_torch(tmp_path / "custom.pt")
    assert "rnn.weight_ih_l0" in load_torch(tmp_path / "custom.pt", trusted=True)
    torch.save(torch.nn.RNN(2, 2, nonlinearity="relu"), tmp_path / "relu.pt")
    with pytest.raises(StateDictError, match=r"relu.pt: nn.RNN \(top\) uses nonlinearity='relu'"):
        load_torch(tmp_path / "relu.pt")


def _custom_base():
    try:
        import torch
    except ImportError:  # pragma: no cover - the torch tests skip
        return object
    return torch.nn.Module


class Custom(_custom_base()):
    """A user module class: only loadable with trusted=True."""

    def __init__(self):
        import torch

        super().__init__()
        self.rnn = torch.nn.GRU(2, 2)
