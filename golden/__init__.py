"""golden: the numpy, bit-accurate integer spec of shiftrnn. Imports nothing else of ours."""

from .fixed import Fixed, bits_signed, bits_unsigned, narrow, saturate
from .model import (
    CELLS,
    DEFAULT_FORMATS,
    GATES,
    Bias,
    Head,
    Layer,
    Model,
    ModelFileError,
    RunResult,
    atomic_write_bytes,
    fold_input_norm,
    load,
    matvec_bound,
)
from .nonlin import KINDS, Nonlinearity
from .quantize import (
    METHODS,
    SCALE_PARAMS,
    QuantMatrix,
    ScaleVector,
    csd_digits,
    csd_round,
    encode,
    glorot_bound,
    quantize,
)

__all__ = [
    "CELLS", "DEFAULT_FORMATS", "GATES", "KINDS", "METHODS", "SCALE_PARAMS", "Bias",
    "Fixed", "Head", "Layer", "Model", "ModelFileError", "Nonlinearity",
    "QuantMatrix", "RunResult", "ScaleVector", "atomic_write_bytes", "bits_signed", "bits_unsigned",
    "csd_digits", "csd_round", "encode", "fold_input_norm", "glorot_bound", "load",
    "matvec_bound", "narrow", "quantize", "saturate",
]
