"""hw: the Amaranth generator of multiplier-free recurrent datapaths (imports golden only)."""

from .blocks import ConstMultiplier, GateMultiplier, Narrower, NonlinUnit, TermUnit
from .cell import CellUnit, cell_update
from .core import DATAPATHS, MatrixCodes, RecurrentCore, Timing, timing
from .generate import GENERATOR_VERSION, LINT_WAIVED, AxiTop, build_top, generate

__all__ = [
    "DATAPATHS", "GENERATOR_VERSION", "LINT_WAIVED", "AxiTop", "CellUnit", "ConstMultiplier",
    "GateMultiplier", "MatrixCodes", "Narrower", "NonlinUnit", "RecurrentCore", "TermUnit",
    "Timing", "build_top", "cell_update", "generate", "timing",
]
