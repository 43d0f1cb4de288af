"""The integer path: agrees with a plain reference, tracks the float path, respects its bounds."""

from __future__ import annotations

import numpy as np
import pytest

import golden.model as gm
from golden import Fixed, Model, Nonlinearity, bits_signed, narrow

CELLS = ("rnn", "gru", "lstm")


def formats(f: int) -> dict[str, Fixed]:
    """Formats with ``f`` fractional bits and enough integer bits for the test inputs."""
    return {"x": Fixed(f + 4, f), "h": Fixed(f + 2, f), "c": Fixed(f + 5, f),
            "pre": Fixed(f + 5, f), "gate": Fixed(f + 1, f, signed=False),
            "act": Fixed(f + 2, f), "out": Fixed(f + 8, f)}


# ----------------------------------------------------------------- plain reference model
def _align(*terms):
    frac = max(f for _, f in terms)
    return sum(np.asarray(v, dtype=np.int64) << (frac - f) for v, f in terms), frac


def reference_run_int(m: Model, x: np.ndarray):
    """The equations of golden/model.py's docstring, step by step, nothing precomputed."""
    f, nl, H = m.formats, m.nonlinearity, m.hidden_size
    fp, fg, fa, fh, fc = f["pre"], f["gate"], f["act"], f["h"], f["c"]
    B, T = x.shape[:2]
    seq, out = x, []
    for li, layer in enumerate(m.layers):
        wi, wh, bi, bh = layer.w_ih, layer.w_hh, layer.b_ih, layer.b_hh
        h, c = np.zeros((B, H), np.int64), np.zeros((B, H), np.int64)
        hs = np.zeros((B, T, H), np.int64)
        for t in range(T):
            if li == 0 and m.input_kind == "token":
                xw, xf = wi.codes.T[seq[:, t]] * wi.C, -wi.shift
            else:
                xw, xf = seq[:, t] @ wi.codes.T * wi.C, m.layer_input_format(li).frac - wi.shift
            hw, hf = h @ wh.codes.T * wh.C, fh.frac - wh.shift

            def pre(g, xw=xw, xf=xf, hw=hw, hf=hf, bi=bi, bh=bh):
                s = slice(g * H, (g + 1) * H)
                return narrow(*_align((xw[:, s], xf), (bi.ints[s], bi.frac), (hw[:, s], hf),
                                      (bh.ints[s], bh.frac)), fp)

            if m.cell == "rnn":
                h = narrow(nl.int_fn("tanh", pre(0), fp, fa), fa.frac, fh)
            elif m.cell == "gru":
                r = nl.int_fn("sigmoid", pre(0), fp, fg)
                z = nl.int_fn("sigmoid", pre(1), fp, fg)
                s = slice(2 * H, 3 * H)
                hn = narrow(*_align((hw[:, s], hf), (bh.ints[s], bh.frac)), fp)
                npre = narrow(*_align((xw[:, s], xf), (bi.ints[s], bi.frac),
                                      (r * hn, fg.frac + fp.frac)), fp)
                n = narrow(nl.int_fn("tanh", npre, fp, fa), fa.frac, fh)
                h = narrow((1 << fg.frac) * n - z * n + z * h, fg.frac + fh.frac, fh)
            else:
                i, fgt, o = (nl.int_fn("sigmoid", pre(k), fp, fg) for k in (0, 1, 3))
                g = nl.int_fn("tanh", pre(2), fp, fa)
                c = narrow(*_align((fgt * c, fg.frac + fc.frac), (i * g, fg.frac + fa.frac)), fc)
                h = narrow(o * nl.int_fn("tanh", c, fc, fa), fg.frac + fa.frac, fh)
            hs[:, t] = h
        out.append(hs)
        seq = hs
    logits = None
    if m.head is not None:
        hw = seq @ m.head.w.codes.T * m.head.w.C
        logits = narrow(*_align((hw, fh.frac - m.head.w.shift),
                                (m.head.b.ints, m.head.b.frac)), f["out"])
    return out, logits


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind", ["hard", "plan", "lut"])
@pytest.mark.parametrize("input_kind,method", [("token", "ternary"), ("vector", "exponential"),
                                               ("vector", "pow2-ternary")])
def test_run_int_equals_plain_reference(cell, kind, input_kind, method, rng):
    m = Model.random(cell, method, 6, 5, output_size=3, layers=2, input_kind=input_kind, seed=4,
                     nonlinearity=Nonlinearity(kind), method_params={"f": 2, "i": 1}
                     if method == "pow2-ternary" else None)
    if input_kind == "token":
        x = rng.integers(0, 6, size=(3, 7))
        xi = x
    else:
        x = rng.uniform(-5, 5, size=(3, 7, 6))  # some saturate in formats.x
        xi = m.quantize_inputs(x)
    got = m.run(x, mode="int")
    want_h, want_logits = reference_run_int(m, xi)
    for a, b in zip(got.hidden_int, want_h, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(got.logits_int, want_logits)
    assert np.array_equal(got.output_int, want_logits)
    assert np.array_equal(got.h, m.formats["h"].to_float(want_h[-1]))


@pytest.mark.parametrize("cell", CELLS)
def test_batch_rows_are_independent(cell, rng):
    m = Model.random(cell, "ternary", 4, 6, layers=2, input_kind="vector", seed=9)
    x = rng.uniform(-2, 2, size=(5, 6, 4))
    whole = m.run(x).hidden_int[-1]
    for b in range(5):
        assert np.array_equal(m.run(x[b:b + 1]).hidden_int[-1], whole[b:b + 1])
    if cell == "lstm":
        assert m.run(x).cell_int[0].shape == (5, 6, 6)


# ------------------------------------------------------------------ int tracks float
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind", ["hard", "plan"])
def test_int_path_error_shrinks_as_formats_widen(cell, kind, rng):
    x = rng.uniform(-2, 2, size=(6, 16, 5))
    errs = []
    for f in (4, 8, 12, 16):
        m = Model.random(cell, "ternary", 5, 12, output_size=3, layers=2, input_kind="vector",
                         seed=3, nonlinearity=Nonlinearity(kind), formats=formats(f))
        a, b = m.run(x, mode="int"), m.run(x, mode="float")
        errs.append(max(np.abs(a.h - b.h).max(), np.abs(a.logits - b.logits).max()))
        assert errs[-1] < 2.0 ** (5 - f), (f, errs)
    assert all(e2 < e1 / 4 for e1, e2 in zip(errs, errs[1:], strict=False)), errs


# --------------------------------------------------------------------- declared bounds
def extreme_model(method: str, cell: str, sign: int) -> Model:
    """Every weight code at its largest magnitude, with sign ``sign``."""
    params = {"pow2-ternary": {"i": 1, "f": 2}, "exponential": {"kmin": -4, "kmax": 0}}
    G, n_in, H = gm.CELLS[cell] * 4, 6, 4
    big = sign * 50.0

    def layer(n):
        return {"weight_ih": np.full((G, n), big), "weight_hh": np.full((G, H), big),
                "bias_ih": np.full(G, big), "bias_hh": np.full(G, big)}

    return Model.from_float(cell, [layer(n_in), layer(H)],
                            {"weight": np.full((3, H), big), "bias": np.full(3, big)},
                            method=method, method_params=params.get(method), input_kind="vector")


@pytest.fixture
def bound_log(monkeypatch):
    """Record (max |value|, declared bound) of every checked weighted sum."""
    log = []
    real = gm.check_bound

    def spy(v, bound, what):
        log.append((int(np.abs(v).max()), bound))
        real(v, bound, what)

    monkeypatch.setattr(gm, "check_bound", spy)
    return log


@pytest.mark.parametrize("method", ["binary", "ternary", "pow2-ternary", "exponential"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("sign", [1, -1])
def test_declared_bound_is_tight_and_never_exceeded(method, cell, sign, bound_log):
    m = extreme_model(method, cell, sign)
    q = m.layers[0].w_ih
    assert (np.abs(q.codes) == q.max_code).all() and (np.sign(q.codes) == sign).all()
    fx = m.formats["x"]
    for level in (-1e9, 1e9):  # inputs saturated at the min / max of formats.x
        r = m.run(np.full((2, 5, 6), level), mode="int")
        assert np.array_equal(m.quantize_inputs(np.full((1, 1, 6), level)),
                              np.full((1, 1, 6), fx.min_int if level < 0 else fx.max_int))
        assert r.logits_int.shape == (2, 5, 3)
    assert bound_log and all(v <= b for v, b in bound_log)
    w = m.widths()["layers"][0]
    # all codes at max magnitude and x = min_int reach the input bound exactly
    assert max(v for v, b in bound_log if b == w["bound_ih"]) == w["bound_ih"]
    assert w["bound_ih"] == 6 * q.max_code * abs(q.C) * (1 << (fx.bits - 1))
    for key in ("ih", "hh"):
        acc, b = w[f"acc_{key}"], w[f"bound_{key}"]
        assert -(1 << (acc - 1)) <= -b and b <= (1 << (acc - 1)) - 1  # the width holds it
        assert acc == bits_signed(-b, b)


def test_too_small_declared_bound_is_detected(monkeypatch):
    m = extreme_model("ternary", "gru", 1)
    real = Model.widths

    def shrunk(self):
        w = real(self)
        w["layers"][0]["bound_ih"] -= 1
        return w

    monkeypatch.setattr(Model, "widths", shrunk)
    x = np.full((1, 2, 6), -1e9)
    with pytest.raises(AssertionError, match="exceeds declared bound"):
        m.run(x, mode="int")
    m.run(np.zeros((1, 2, 6)), mode="int")  # a small input stays inside the smaller bound


# --------------------------------------------------------------------------- misc
def test_run_argument_errors():
    m = Model.random("gru", "ternary", 4, 3, input_kind="token", seed=0)
    with pytest.raises(ValueError, match="mode must be"):
        m.run(np.zeros((1, 2), np.int64), mode="fast")
    with pytest.raises(ValueError, match=r"token indices must lie in \[0, 4\)"):
        m.run(np.array([[0, 4]]))
    with pytest.raises(ValueError, match="token input must be integers"):
        m.run(np.zeros((1, 2)))
    v = Model.random("gru", "ternary", 4, 3, input_kind="vector", seed=0)
    with pytest.raises(ValueError, match=r"\(batch, time, 4\)"):
        v.run(np.zeros((1, 2, 5)))
    with pytest.raises(ValueError, match="must be float"):
        v.run(np.zeros((1, 2, 4), np.int64))


def test_layer_input_format():
    m = Model.random("rnn", "ternary", 4, 3, layers=3, input_kind="token", seed=0)
    assert m.layer_input_format(0) == Fixed(2, 0)
    assert m.layer_input_format(1) == m.formats["h"] == m.layer_input_format(2)
    v = Model.random("rnn", "ternary", 4, 3, layers=2, input_kind="vector", seed=0)
    assert v.layer_input_format(0) == v.formats["x"] and v.layer_input_format(1) == v.formats["h"]


def test_op_counts_skip_zero_weights():
    m = Model.random("gru", "ternary", 8, 6, output_size=2, input_kind="vector", seed=1)
    ops = m.op_counts()
    nonzero = sum(int(np.count_nonzero(q.codes)) for q in (m.layers[0].w_ih, m.layers[0].w_hh,
                                                          m.head.w))
    assert ops["weights"] == 18 * 8 + 18 * 6 + 2 * 6
    assert nonzero <= sum(ops["add"].values())
    assert ops["nonlin"] == {"sigmoid": 12, "tanh": 6}
    assert m.run(np.zeros((1, 1, 8))).ops == ops


@pytest.mark.parametrize("input_kind", ["token", "vector"])
@pytest.mark.parametrize("shape", [(0, 5), (2, 0)])
def test_empty_batch_or_sequence(input_kind, shape):
    m = Model.random("lstm", "ternary", 4, 3, output_size=2, layers=2, input_kind=input_kind,
                     seed=0)
    x = np.zeros(shape, np.int64) if input_kind == "token" else np.zeros((*shape, 4))
    for mode in ("int", "float"):
        r = m.run(x, mode=mode)
        assert r.h.shape == (*shape, 3) and r.logits.shape == (*shape, 2)
