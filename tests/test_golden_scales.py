"""Per-row scales and folded input normalisation in golden: exact integer semantics, the float
path, the model file (older files load and hash as before) and the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import golden
from golden import Bias, Model, ModelFileError, QuantMatrix, ScaleVector, fold_input_norm, load

#: Model.random("gru", method, 7, 5, output_size=7, layers=2, input_kind="token", seed=3,
#: method_params=...).hash() before per-row and input scales existed: older files hash the same.
OLD_HASHES = {
    "binary": "bcdef79dcb4ed800eca9bb1c3baeaf1edbfa0493799bb7c8dbc3c5a102eea304",
    "ternary": "c5f8e4ca953ab1459629697c872bcfdab9c52961aa6b1fb7966bca5727a71b51",
}


def scaled_model(cell, method, input_kind, rng, layers=2, V=6, H=5):
    """A model with per-row scales on every matrix and input scales on every layer."""
    G = golden.CELLS[cell] * H
    ws, tp = [], {}
    for k in range(layers):
        n_in = V if k == 0 else H
        ws.append({"weight_ih": rng.normal(0, .4, (G, n_in)),
                   "weight_hh": rng.normal(0, .4, (G, H)),
                   "bias_ih": rng.normal(0, .4, G), "bias_hh": rng.normal(0, .4, G),
                   "input_scale": rng.uniform(-2, 3, n_in),
                   "input_offset": rng.normal(0, 1, n_in)})
        for name in (f"weight_ih_l{k}", f"weight_hh_l{k}"):
            tp[name] = {"row_scales": rng.uniform(0.1, 0.6, G)}
    tp["head.weight"] = {"row_scales": rng.uniform(0.1, 0.6, V)}
    head = {"weight": rng.normal(0, .4, (V, H)), "bias": rng.normal(0, .4, V)}
    params = {"kmin": -5, "kmax": 1} if method == "exponential" else {}
    return Model.from_float(cell, ws, head, method=method, input_kind=input_kind,
                            tensor_params=tp, method_params=params, scale_terms=2)


def reference_int(model: Model, x: np.ndarray) -> np.ndarray:
    """The integer path with every scale applied the long way round: column scales multiply the
    input (or select a per-token constant), row scales multiply each row's weighted sum."""
    def plain(q: QuantMatrix, cols=None) -> QuantMatrix:
        codes, exp = q.codes * q.row_scale.ints[:, None], q.exp - q.row_scale.frac
        if cols is not None:
            codes, exp = codes * cols.ints[None, :], exp - cols.frac
        return QuantMatrix(codes, exp, 1.0)

    m = object.__new__(Model)  # integer codes beyond any method's range: skip validation
    m.__dict__.update(model.__dict__)
    m.layers = [golden.Layer(plain(la.w_ih, la.x_scale), plain(la.w_hh), la.b_ih, la.b_hh)
                for la in model.layers]
    m.head = golden.Head(plain(model.head.w), model.head.b)
    return m.run_int(x).logits_int


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("method", golden.METHODS)
@pytest.mark.parametrize("input_kind", ["token", "vector"])
def test_scaled_model_integer_path_is_exact(cell, method, input_kind, rng):
    m = scaled_model(cell, method, input_kind, rng)
    x = rng.integers(0, 6, (3, 9)) if input_kind == "token" else rng.normal(0, 1, (3, 9, 6))
    xi = m.quantize_inputs(x)
    got = m.run_int(xi)
    assert np.array_equal(got.logits_int, reference_int(m, xi))
    assert np.abs(got.logits - m.run(x, "float").logits).max() < 0.25  # 8-bit activations
    # per-row constants: every row's weighted sum, bound and width still derived exactly
    w = m.widths()["layers"][0]
    assert w["bound_hh"] == golden.matvec_bound(m.layers[0].w_hh, m.formats["h"])
    assert m.op_counts()["add"]


def test_row_scales_and_input_scales_round_trip(tmp_path, rng):
    m = scaled_model("lstm", "ternary", "token", rng)
    back = load(m.save(tmp_path / "m.npz"))
    assert back.hash() == m.hash()
    assert back.layers[0].x_scale.frac == m.layers[0].x_scale.frac
    assert np.array_equal(back.head.w.row_scale.ints, m.head.w.row_scale.ints)
    x = rng.integers(0, 6, (2, 5))
    assert np.array_equal(back.run(x).logits_int, m.run(x).logits_int)
    hdr = m.header()
    assert "x_scale_frac" in hdr["layers"][0] and "row_scale_frac" in hdr["head"]["w"]


@pytest.mark.parametrize("method", sorted(OLD_HASHES))
def test_models_without_the_new_fields_hash_as_before(method):
    m = Model.random("gru", method, 7, 5, output_size=7, layers=2, input_kind="token", seed=3)
    assert m.hash() == OLD_HASHES[method]
    hdr = json.dumps(m.header())
    assert "row_scale" not in hdr and "x_scale" not in hdr
    assert not any("scale" in k for k in m.arrays())


def test_fold_input_norm_is_the_affine_map(rng):
    q = golden.encode(rng.normal(0, .3, (8, 4)), "ternary")
    b = Bias(np.arange(8) - 4, 3)
    scale, offset = rng.uniform(0.2, 2, 4), rng.normal(0, 1, 4)
    xs, bf = fold_input_norm(q, b, scale, offset, 3)
    assert xs.max_terms <= 3 and bf.frac >= 10
    x = rng.normal(0, 1, (5, 4))
    want = (scale * x + offset) @ q.values.T + b.values
    got = (xs.values * x) @ q.values.T + bf.values
    assert np.abs(got - want).max() < 0.1 * np.abs(q.values).sum(1).max()  # 3 CSD terms
    again = fold_input_norm(q, b, scale, offset, 3)
    assert np.array_equal(again[0].ints, xs.ints) and np.array_equal(again[1].ints, bf.ints)
    with pytest.raises(ValueError, match="one per input column"):
        fold_input_norm(q, b, scale[:3], offset, 2)


def test_bad_scale_fields_are_named(tmp_path, rng):
    m = scaled_model("gru", "ternary", "token", rng, layers=1)
    hdr, arrays = m.header(), dict(m.arrays())
    arrays["layer0.x_scale"] = arrays["layer0.x_scale"][:3]
    with pytest.raises(ModelFileError, match=r"layer0\.x_scale.*one per input column"):
        golden.model._from_header(hdr, arrays, "f.npz")
    arrays = dict(m.arrays())
    arrays["head.w.row_scale"] = np.full_like(arrays["head.w.row_scale"], 0b10101)  # 3 terms
    with pytest.raises(ModelFileError, match=r"head\.w\.row_scale.*scale_terms allows 2"):
        golden.model._from_header(hdr, arrays, "f.npz")
    del arrays["head.w.row_scale"]
    with pytest.raises(ModelFileError, match=r"'head\.w\.row_scale': array missing"):
        golden.model._from_header(hdr, arrays, "f.npz")


def test_scale_vector_from_float_keeps_sign_and_terms():
    sv = ScaleVector.from_float([-0.3, 5.0, 0.0], 1)
    assert sv.max_terms == 1 and sv.values.tolist() == [-0.25, 4.0, 0.0]


@pytest.mark.parametrize("hh_scales,head_scales,kind", [
    (None, None, "matrix"), ("gate", None, "gate"), ("row", None, "row"),
    (None, "row", "row")])
def test_scale_granularity_names_what_the_sums_meet(rng, hh_scales, head_scales, kind):
    """One constant per matrix, one per gate (equal within each gate's rows, not across gates)
    or per row (differing within a gate, or within the head)."""
    H, V = 4, 5
    layer = {"weight_ih": rng.normal(0, .4, (3 * H, V)), "weight_hh": rng.normal(0, .4, (3 * H, H)),
             "bias_ih": rng.normal(0, .4, 3 * H), "bias_hh": rng.normal(0, .4, 3 * H)}
    head = {"weight": rng.normal(0, .4, (V, H)), "bias": rng.normal(0, .4, V)}
    rows = {"gate": np.repeat([0.25, 0.5, 0.75], H), "row": rng.uniform(0.1, 0.6, 3 * H)}
    tp = {}
    if hh_scales:
        tp["weight_hh_l0"] = {"row_scales": rows[hh_scales]}
    if head_scales:
        tp["head.weight"] = {"row_scales": rng.uniform(0.1, 0.6, V)}
    m = Model.from_float("gru", [layer], head, method="ternary", tensor_params=tp)
    assert m.scale_granularity() == kind
