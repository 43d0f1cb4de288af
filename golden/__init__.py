"""golden: the numpy, bit-accurate integer spec of shiftrnn. Imports nothing else of ours."""

from .errors import ShiftrnnError
from .evaluation import DataError
from .files import atomic_write_bytes, cache_root, fresh_folder
from .fixed import Fixed, bits_signed, bits_unsigned, narrow, saturate
from .model import (
    BIAS_MODES,
    CELLS,
    DEFAULT_FORMATS,
    FORMAT_NAMES,
    GATES,
    INPUT_KINDS,
    Bias,
    Head,
    Layer,
    Model,
    ModelFileError,
    RunResult,
    fold_input_norm,
    load,
    matvec_bound,
    parse_format,
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
    "BIAS_MODES", "CELLS", "DEFAULT_FORMATS", "FORMAT_NAMES", "GATES", "INPUT_KINDS", "KINDS",
    "METHODS", "SCALE_PARAMS", "Bias", "DataError", "Fixed", "Head", "Layer", "Model",
    "ModelFileError", "Nonlinearity", "QuantMatrix", "RunResult", "ScaleVector", "ShiftrnnError",
    "atomic_write_bytes", "bits_signed", "bits_unsigned", "cache_root", "csd_digits", "csd_round",
    "encode", "fold_input_norm", "fresh_folder", "glorot_bound", "load", "matvec_bound", "narrow",
    "parse_format", "quantize", "saturate",
]
