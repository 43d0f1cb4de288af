"""Regenerate model.npz and manifest.json of the hand-written ``runsum`` fixture.

``runsum.v`` computes ``h' = clip(h + x, -1, 1)`` on three Fixed(8, 6) elements. That is exactly a
one-layer golden RNN with identity ternary weights (scale 1), zero biases and hard tanh, with
``formats.x = Fixed(8, 6)``; so the fixture's twin is a real ``golden.Model`` and the benches treat
it like any generated design. Run: ``.venv/bin/python tests/data/sim/runsum/make_fixture.py``.
"""

from pathlib import Path

import numpy as np

from golden import Bias, Fixed, Layer, Model, Nonlinearity, QuantMatrix
from golden.manifest import DesignConfig, Manifest, axis_ports

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


def main() -> None:
    m = model()
    m.save(HERE / "model.npz", force=True)
    config = DesignConfig(cell="rnn", method="ternary", input_kind="vector", input_size=N,
                          hidden_size=N, output_size=m.output_size, layers=1, lanes=1,
                          unrolled=False, datapath="shiftadd",
                          nonlinearity=m.nonlinearity.describe())
    Manifest(design="runsum", top="runsum", verilog="runsum.v", lint_waiver="",
             model_file="model.npz", generator_version="hand-written fixture",
             model_hash=m.hash(), config=config, formats=dict(m.formats), ports=axis_ports(m),
             cycles_per_timestep=CPT, latency=CPT, cycle_phases={"compute": CPT},
             cycle_formula="CPT (a Verilog parameter)").write(HERE)


if __name__ == "__main__":
    main()
