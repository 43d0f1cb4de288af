"""hw: the Amaranth generator of multiplier-free recurrent datapaths (imports golden only)."""

from .blocks import ConstMultiplier, GateMultiplier, Narrower, NonlinUnit, TermUnit
from .cell import CellPipeline, CellUnit, cell_update
from .codes import MatrixCodes
from .core import DATAPATHS, RecurrentCore
from .generate import GENERATOR_VERSION, LINT_WAIVED, AxiTop, build_top, generate
from .timing import Timing, timing

__all__ = [
    "DATAPATHS", "GENERATOR_VERSION", "LINT_WAIVED", "AxiTop", "CellPipeline", "CellUnit",
    "ConstMultiplier", "GateMultiplier", "MatrixCodes", "Narrower", "NonlinUnit",
    "RecurrentCore", "TermUnit", "Timing", "build_top", "cell_update", "generate", "timing",
]
