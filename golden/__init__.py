"""golden: the numpy, bit-accurate integer spec of shiftrnn. Imports nothing else of ours."""

from .errors import ShiftrnnError
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
    load,
    matvec_bound,
)
from .nonlin import KINDS, Nonlinearity
from .quantize import METHODS, QuantMatrix, csd_digits, csd_round, encode, glorot_bound, quantize

__all__ = [
    "CELLS", "DEFAULT_FORMATS", "GATES", "KINDS", "METHODS", "Bias", "Fixed", "Head", "Layer",
    "Model", "ModelFileError", "Nonlinearity", "QuantMatrix", "RunResult", "ShiftrnnError",
    "atomic_write_bytes", "bits_signed", "bits_unsigned", "csd_digits", "csd_round", "encode",
    "glorot_bound", "load", "matvec_bound", "narrow", "quantize", "saturate",
]
