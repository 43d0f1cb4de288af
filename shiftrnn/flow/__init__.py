"""The flow: one TOML file to a trained, quantized, generated, verified and estimated design.

``run_flow(load_config("examples/gru.toml"))`` runs seven stages into ``rtl_out/NAME/``:

========= ==================================================================================
model     train the network (quantization-aware, ``train/``), or take a PyTorch ``.pt`` file,
          or a shiftrnn model file
quantize  weights to the chosen method, activation formats; golden float and integer paths
          evaluated on the data (bits per character for a character language model)
generate  Verilog + manifest (``hw/``), and the multiplier baseline for the estimates
verify    Verilator lint and the cocotb bench: every output bit-exact, cycle counts, waveform
simulate  the data through the RTL on the fast path: bit-exact, cycles, toggles, RTL BPC
estimate  yosys resources per target, nextpnr fit and fmax, energy beside the baselines
report    ``report.md`` and a self-contained ``report.html`` with plots and a block diagram
========= ==================================================================================

Modules: :mod:`.config` (schema, loading, built-in examples), :mod:`.engine` (the ``Stage``
protocol, content hashes, skipping, the folder transaction), :mod:`.stages` (one module per
stage, each returning a frozen dataclass), :mod:`.data` (evaluation data, through
:mod:`golden.evaluation`), :mod:`.compare` (the precision comparison), :mod:`.report`.
"""

from .config import (
    DEMO_EXAMPLE,
    EXAMPLES,
    SCHEMA,
    FlowConfig,
    builtin_config,
    load_config,
    parse_config,
)
from .engine import FLOW_VERSION, STATE_FILE
from .errors import FlowError
from .run import FlowResult, run_flow
from .stages import STAGES as _STAGES

#: Stage names, in order.
STAGES = tuple(s.name for s in _STAGES)

__all__ = [
    "DEMO_EXAMPLE", "EXAMPLES", "FLOW_VERSION", "SCHEMA", "STAGES", "STATE_FILE", "FlowConfig",
    "FlowError", "FlowResult", "builtin_config", "load_config", "parse_config", "run_flow",
]
