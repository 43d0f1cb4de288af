"""The float path equals PyTorch's nn.RNN (tanh) / nn.GRU / nn.LSTM with the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from golden import Model, Nonlinearity

pytestmark = pytest.mark.torch


def torch_twin(model: Model):
    """A float64 PyTorch module holding the model's effective (quantized, CSD-scaled) weights."""
    torch = pytest.importorskip("torch")
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[model.cell]
    kw = {"nonlinearity": "tanh"} if model.cell == "rnn" else {}
    net = cls(model.input_size, model.hidden_size, num_layers=len(model.layers),
              batch_first=True, dtype=torch.float64, **kw)
    with torch.no_grad():
        for k, layer in enumerate(model.layers):
            getattr(net, f"weight_ih_l{k}").copy_(torch.from_numpy(layer.w_ih.values))
            getattr(net, f"weight_hh_l{k}").copy_(torch.from_numpy(layer.w_hh.values))
            getattr(net, f"bias_ih_l{k}").copy_(torch.from_numpy(layer.b_ih.values))
            getattr(net, f"bias_hh_l{k}").copy_(torch.from_numpy(layer.b_hh.values))
    return net


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("method", ["ternary", "exponential"])
def test_float_path_equals_pytorch(cell, layers, method, rng):
    torch = pytest.importorskip("torch")
    model = Model.random(cell, method, 5, 7, output_size=3, layers=layers, input_kind="vector",
                         seed=11, nonlinearity=Nonlinearity("exact"))
    x = rng.normal(0, 1.5, size=(4, 9, 5))
    got = model.run(x, mode="float")
    net = torch_twin(model)
    with torch.no_grad():
        out, _ = net(torch.from_numpy(x))
        logits = out @ torch.from_numpy(model.head.w.values).T + torch.from_numpy(
            model.head.b.values)
    assert np.abs(got.h - out.numpy()).max() < 1e-6
    assert np.abs(got.logits - logits.numpy()).max() < 1e-6
    assert got.h.shape == (4, 9, 7) and len(got.hidden) == layers


def test_float_path_token_input_is_one_hot(rng):
    torch = pytest.importorskip("torch")
    model = Model.random("gru", "ternary", 6, 4, input_kind="token", seed=2,
                         nonlinearity=Nonlinearity("exact"))
    tokens = rng.integers(0, 6, size=(3, 8))
    net = torch_twin(model)
    with torch.no_grad():
        out, _ = net(torch.nn.functional.one_hot(torch.from_numpy(tokens), 6).double())
    assert np.abs(model.run(tokens, mode="float").h - out.numpy()).max() < 1e-6
