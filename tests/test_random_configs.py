"""Random configurations outside the tests' matrix, generated and run on the fast path.

Each seed draws a model (cell, method and its parameters, input kind and size, hidden size 1-16,
1-3 layers, head or none, nonlinearity and table bits, scale terms, bias mode, activation
formats) and a hardware configuration (lanes from 1 to the hidden size or unrolled, datapath,
zero skipping). A combination the model or the generator refuses must say why in one line; any
other must be bit-exact with golden, with the cycle formula's timing. The seeds are fixed, so a
failure reproduces with :func:`draw`.
"""

from __future__ import annotations

import numpy as np
import pytest

import golden
import hw
import sim

SEEDS = range(8)


def _formats(rng: np.random.Generator) -> dict:
    """The default formats with one to three of them widened, narrowed or re-pointed."""
    fm = dict(golden.DEFAULT_FORMATS)
    for k in rng.choice(sorted(fm), size=int(rng.integers(1, 4)), replace=False):
        f0 = fm[k]
        bits = max(3, f0.bits + int(rng.integers(-3, 4)))
        frac = int(np.clip(f0.frac + rng.integers(-3, 3), 0, bits - f0.signed))
        fm[k] = golden.Fixed(bits, frac, f0.signed)
    return fm


def _method_params(rng: np.random.Generator, method: str) -> dict | None:
    if method == "pow2-ternary":
        i = int(rng.integers(0, 4))
        return {"i": i, "f": int(rng.integers(max(0, 1 - i), 7))}
    if method == "exponential":
        kmin = int(rng.integers(-8, 1))
        return {"kmin": kmin, "kmax": int(rng.integers(kmin, 4))}
    return None


def draw(seed: int) -> tuple[dict, dict, np.ndarray]:
    """``Model.random`` arguments, ``hw.generate`` arguments and the input of one seed."""
    rng = np.random.default_rng(seed)
    method = str(rng.choice(golden.METHODS))
    hidden = int(rng.integers(1, 17))
    kind = str(rng.choice(["token", "vector"]))
    model = dict(cell=str(rng.choice(list(golden.CELLS))), method=method,
                 input_size=int(rng.integers(1, 13)), hidden_size=hidden,
                 layers=int(rng.integers(1, 4)), input_kind=kind,
                 output_size=None if rng.random() < 0.25 else int(rng.integers(1, 11)),
                 method_params=_method_params(rng, method), scale_terms=int(rng.integers(1, 4)),
                 nonlinearity=golden.Nonlinearity(str(rng.choice(["hard", "plan", "lut"])),
                                                  lut_bits=int(rng.integers(3, 9))),
                 formats=_formats(rng) if rng.random() < 0.6 else None, seed=seed)
    if rng.random() < 0.3:
        bits = int(rng.integers(4, 13))
        model.update(bias_mode="fixed", bias_format=golden.Fixed(bits, int(rng.integers(0, bits))))
    unrolled = bool(rng.random() < 0.25)
    hardware = dict(lanes=None if unrolled else int(rng.integers(1, hidden + 1)),
                    unrolled=unrolled, skip=bool(rng.random() < 0.8),
                    datapath="mult" if rng.random() < 0.15 else "shiftadd")
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 7)))
    if kind == "token":
        x = rng.integers(0, model["input_size"], size=shape)
    else:
        fx = (model["formats"] or golden.DEFAULT_FORMATS)["x"]
        x = rng.integers(fx.min_int, fx.max_int + 1, size=(*shape, model["input_size"]))
    return model, hardware, x


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_random_configuration_is_bit_exact_or_refused(tmp_path, seed):
    model_kw, hw_kw, x = draw(seed)
    model_kw = {k: v for k, v in model_kw.items() if v is not None}
    args = [model_kw.pop(k) for k in ("cell", "method", "input_size", "hidden_size")]
    try:
        model = golden.Model.random(*args, **model_kw)
        design = hw.generate(model, out_dir=tmp_path / "d", **hw_kw)
    except (ValueError, golden.ShiftrnnError) as e:
        assert str(e) and "\n" not in str(e), f"seed {seed}: refusal not one line: {e!r}"
        return
    res = sim.simulate(sim.Design(design), x)
    assert res.golden_equal and res.timing_ok, f"seed {seed}: {res.message}"
