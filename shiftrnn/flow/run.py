"""``run_flow``: one flow configuration to a design folder, as a plain function.

No global state: the configuration, the output folder and the options go in, a picklable
:class:`FlowResult` comes out, so a run can be shipped to another process (or a Dask worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import FlowConfig
from .engine import run_stages
from .report import ReportInputs, summary_lines
from .stages import STAGES, ReportResult
from .stages.report import report_inputs

__all__ = ["FlowResult", "run_flow"]


@dataclass(frozen=True)
class FlowResult:
    """Outcome of :func:`run_flow`.

    Attributes
    ----------
    name : str
    folder : Path
        ``OUT_DIR/NAME``.
    inputs : ReportInputs
        Every stage's result before the report (``inputs.quantize.golden_int``, ...).
    report : ReportResult
    ran, skipped : tuple of str
        Stages that ran / were skipped as unchanged.
    seconds : float
        Wall-clock time of the run.
    """

    name: str
    folder: Path
    inputs: ReportInputs
    report: ReportResult
    ran: tuple[str, ...]
    skipped: tuple[str, ...]
    seconds: float

    @property
    def report_html(self) -> Path:
        return self.folder / "report.html"

    @property
    def report_md(self) -> Path:
        return self.folder / "report.md"

    def summary(self) -> str:
        """The one-screen summary printed at the end of a run."""
        return "\n".join(summary_lines(self.inputs, self.folder, list(self.ran),
                                       list(self.skipped), self.seconds))


def run_flow(cfg: FlowConfig, *, out_dir="rtl_out", force: bool = False, progress: bool = True,
             echo: Callable[[str], None] | None = None) -> FlowResult:
    """Run every stage of a flow configuration; skip the unchanged ones.

    Parameters
    ----------
    cfg : FlowConfig
        From :func:`load_config` or :func:`builtin_config`.
    out_dir : path-like
        Parent of the design folder (``OUT_DIR/NAME``).
    force : bool
        Run every stage again, and replace a folder that the flow did not make.
    progress : bool
        Status bars (stderr) while stages run.
    echo : callable, optional
        Receives the per-stage lines (default: print to stdout).

    Returns
    -------
    FlowResult

    Raises
    ------
    FlowError
        A bad configuration, input or combination, or a stage failed. ``OUT_DIR/NAME`` is then
        exactly as before the run.
    """
    echo = echo or (lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    run = run_stages(cfg, STAGES, out_dir=out_dir, force=force, progress=progress, echo=echo)
    return FlowResult(cfg.name, Path(out_dir) / cfg.name, report_inputs(run),
                      run.results["report"], tuple(run.ran), tuple(run.skipped),
                      time.perf_counter() - t0)
