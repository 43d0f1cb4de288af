"""Draw the pictures of the docs: ``python docs/make_figures.py`` writes ``docs/img/*.png``.

``datapath.png`` (docs/hardware.md) is the block diagram every flow report draws for its own
design (:func:`shiftrnn.flow.diagram.block_diagram`), here for the demo's GRU (built-in corpus
vocabulary of 50 characters, hidden 32) folded on 4 lanes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import golden
import hw
from shiftrnn.flow.diagram import DiagramParams, block_diagram

HERE = Path(__file__).resolve().parent


def make_figures(out_dir=HERE / "img") -> list[Path]:
    """Write every figure into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    model = golden.Model.random("gru", "ternary", 50, 32, output_size=50, seed=0)
    lanes = 4
    params = DiagramParams(
        cell=model.cell, method=model.method, hidden=model.hidden_size,
        input_kind=model.input_kind, input_size=model.input_size, output=model.output_size,
        layers=len(model.layers), lanes=lanes, unrolled=False, datapath="shiftadd",
        nonlinearity=model.nonlinearity.describe(),
        formats={k: str(v) for k, v in model.formats.items()},
        cycles=hw.timing(model, lanes=lanes, unrolled=False).cycles_per_timestep)
    return [block_diagram(params, out_dir / "datapath.png")]


if __name__ == "__main__":
    for p in make_figures(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "img"):
        print(f"wrote {p}")
