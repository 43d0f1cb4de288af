"""hw: the Amaranth generator of multiplier-free recurrent datapaths (imports golden only)."""

from .cell import CellUnit, cell_update
from .core import DATAPATHS, MatrixCodes, RecurrentCore, Timing, timing
from .generate import GENERATOR_VERSION, AxiTop, build_top, generate

__all__ = [
    "DATAPATHS", "GENERATOR_VERSION", "AxiTop", "CellUnit", "MatrixCodes", "RecurrentCore",
    "Timing", "build_top", "cell_update", "generate", "timing",
]
