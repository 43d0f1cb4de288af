"""Regenerate model.npz and manifest.json of the hand-written ``runsum`` fixture.

``runsum.v`` computes ``h' = clip(h + x, -1, 1)`` on three Fixed(8, 6) elements. That is exactly a
one-layer golden RNN with identity ternary weights (scale 1), zero biases and hard tanh, with
``formats.x = Fixed(8, 6)``; so the fixture's twin is a real ``golden.Model`` and the benches treat
it like any generated design. Run: ``.venv/bin/python tests/data/sim/runsum/make_fixture.py``.
"""

import json
from pathlib import Path

import numpy as np

from golden import Bias, Fixed, Layer, Model, Nonlinearity, QuantMatrix

HERE = Path(__file__).resolve().parent
N = 3
CPT = 3


def model() -> Model:
    eye = QuantMatrix(np.eye(N, dtype=np.int64), 0, 1.0, ((1, 0),))
    zero = Bias(np.zeros(N, np.int64), 0)
    m = Model(cell="rnn", input_kind="vector", input_size=N, hidden_size=N,
              layers=[Layer(eye, eye, zero, zero)], method="ternary",
              nonlinearity=Nonlinearity("hard"), meta={"source": "sim fixture runsum"})
    return m.with_formats(x=Fixed(8, 6))


def port(prefix: str, fmt: Fixed) -> dict:
    fields = [{"name": f"{prefix}[{j}]", "lsb": j * fmt.bits, "width": fmt.bits,
               "format": fmt.to_dict()} for j in range(N)]
    return {"width": N * fmt.bits, "kind": "vector", "fields": fields}


def main() -> None:
    m = model()
    m.save(HERE / "model.npz", force=True)
    manifest = {
        "design": "runsum",
        "top": "runsum",
        "generator_version": "hand-written fixture",
        "model_hash": m.hash(),
        "config": {"cell": "rnn", "method": "ternary", "lanes": 1, "unrolled": False,
                   "datapath": "shiftadd"},
        "ports": {"s_axis_tdata": port("x", m.formats["x"]),
                  "m_axis_tdata": port("h", m.formats["h"])},
        "cycles_per_timestep": CPT,
        "latency": CPT,
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
