"""Area, timing and energy estimates for shiftrnn designs.

- :func:`synthesize`: yosys resource counts and the multiplier audit for a target in
  :data:`TARGETS` (``generic``, ``xilinx7``, ``ice40``, ``ecp5``).
- :func:`place_and_route`: nextpnr fit, fmax and utilisation on a device in :data:`DEVICES`.
- :func:`datapath_energy`: per-timestep energy from golden's op counts and the design's weight
  memories (Horowitz, ISSCC 2014, 45 nm): a shiftrnn design and the float32 and int8-multiplier
  baselines priced by the one function.
- :func:`activity_energy`: relative energy from RTL switching activity.
- :func:`estimate_design`: all of it for one generated design folder (``shiftrnn estimate``);
  the flow and ``shiftrnn compare`` use its pieces (:mod:`estimate.design`).

Tool results are cached (``$SHIFTRNN_CACHE/estimate``, default ``~/.cache/shiftrnn/estimate``);
method, constants and limits are in ``docs/estimates.md``.
"""

from .design import (
    DEFAULT_DEVICES,
    DesignEstimate,
    HardwareEstimate,
    PnrFigures,
    SynthFigures,
    design_energy,
    estimate_design,
    hardware_estimate,
    pnr_figures,
    read_design,
    resolve_device,
    synth_figures,
)
from .energy import (
    BASELINES,
    EnergyEstimate,
    activity_energy,
    datapath_energy,
    weight_memory_bits,
)
from .pnr import DEVICES, PnrResult, place_and_route
from .synth import TARGETS, MulCell, SynthResult, synthesize
from .tools import ToolError, ToolTimeout

__all__ = [
    "BASELINES",
    "DEFAULT_DEVICES",
    "DesignEstimate",
    "HardwareEstimate",
    "PnrFigures",
    "SynthFigures",
    "design_energy",
    "estimate_design",
    "hardware_estimate",
    "pnr_figures",
    "read_design",
    "resolve_device",
    "synth_figures",
    "DEVICES",
    "TARGETS",
    "EnergyEstimate",
    "MulCell",
    "PnrResult",
    "SynthResult",
    "ToolError",
    "ToolTimeout",
    "activity_energy",
    "datapath_energy",
    "place_and_route",
    "synthesize",
    "weight_memory_bits",
]
