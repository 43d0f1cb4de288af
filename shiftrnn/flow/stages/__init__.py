"""The flow's stages, one module each; every stage returns a frozen dataclass."""

from .estimate import EstimateResult, EstimateStage
from .generate import GenerateResult, GenerateStage
from .model import ModelResult, ModelStage
from .quantize import QuantizeResult, QuantizeStage
from .report import ReportResult, ReportStage
from .simulate import SimulateResult, SimulateStage
from .verify import VerifyResult, VerifyStage

#: The flow, in order.
STAGES = (ModelStage(), QuantizeStage(), GenerateStage(), VerifyStage(), SimulateStage(),
          EstimateStage(), ReportStage())

__all__ = [
    "STAGES", "EstimateResult", "EstimateStage", "GenerateResult", "GenerateStage",
    "ModelResult", "ModelStage", "QuantizeResult", "QuantizeStage", "ReportResult",
    "ReportStage", "SimulateResult", "SimulateStage", "VerifyResult", "VerifyStage",
]
