"""Token indices past the vocabulary: what golden does with every index the token field can carry.

A token model with ``input_size`` tokens has a ``ceil(log2(input_size))``-bit token field
(``Model.token_bits``). An index in ``[input_size, 2**token_bits)`` selects an all-zero ``W_ih``
column (the step still runs: biases and the recurrence); an index outside the field cannot be
sent and raises. The RTL side of the same rule is pinned in tests/test_sim.py.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from golden import Model


def padded(model: Model) -> Model:
    """The same model with ``2**token_bits`` tokens, the extra ``W_ih`` columns all zero."""
    lay = model.layers[0]
    n = 1 << model.token_bits
    codes = np.zeros((lay.w_ih.codes.shape[0], n), lay.w_ih.codes.dtype)
    codes[:, :model.input_size] = lay.w_ih.codes
    wide = replace(lay, w_ih=replace(lay.w_ih, codes=codes))
    return replace(model, input_size=n, layers=[wide, *model.layers[1:]])


@pytest.mark.parametrize("cell,layers,out", [("gru", 1, 5), ("lstm", 2, None), ("rnn", 1, 3)])
def test_token_past_the_vocabulary_selects_a_zero_column(cell, layers, out):
    m = Model.random(cell, "ternary", 5, 6, output_size=out, layers=layers, input_kind="token",
                     seed=3)
    assert m.token_bits == 3
    wide = padded(m)
    assert wide.token_bits == 3
    rng = np.random.default_rng(0)
    x = rng.integers(0, 8, size=(4, 12))
    x[0] = [5, 6, 7] * 4  # a sequence of nothing but out-of-vocabulary indices
    assert (x >= 5).any() and (x < 5).any()
    got, want = m.run_int(x), wide.run_int(x)
    assert np.array_equal(got.output_int, want.output_int)
    for a, b in zip(got.hidden_int, want.hidden_int, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(m.run(x, mode="float").h, wide.run(x, mode="float").h)
    # The step runs: with a zero column the state still moves (biases and recurrence).
    assert np.abs(got.hidden_int[-1][0]).sum() > 0


def test_token_outside_the_field_raises():
    m = Model.random("gru", "ternary", 5, 4, input_kind="token", seed=0)
    for bad in (8, -1):
        with pytest.raises(ValueError, match=r"token indices must lie in \[0, 8\)"):
            m.run(np.array([[0, bad]]))
        with pytest.raises(ValueError, match=r"\[0, 8\)"):
            m.run_int(np.array([[bad, 1]]))


def test_power_of_two_vocabulary_has_no_spare_indices():
    m = Model.random("rnn", "binary", 8, 3, input_kind="token", seed=1)
    assert m.token_bits == 3
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        m.run_int(np.array([[8]]))
    assert Model.random("rnn", "binary", 1, 2, input_kind="token", seed=1).token_bits == 1
