"""The cocotb bench on Icarus Verilog, in Verilog-2005 (``-g2005``) or SystemVerilog (``-g2012``).

A second simulator with different semantics from Verilator: 4-state values (X and Z are visible
to the bench) and, in SystemVerilog mode, the IEEE 1800 rules for ``always @*`` at time 0. The
generated Verilog must behave the same in both modes (docs/hardware.md). Builds (``iverilog``
into ``sim.vvp``) are cached by content like the Verilator builds (``sim.cache``).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from .build import BuildError, log_tail
from .cache import build_key, cached_build
from .toolchain import find_icarus
from .waves import DUMP_MODULE, icarus_dump_module

__all__ = ["STANDARDS", "icarus_build", "icarus_runner"]

#: Language modes: ``standard`` argument -> iverilog generation flag.
STANDARDS = {"2005": "-g2005", "2012": "-g2012"}

#: File the dump module writes, relative to the test folder (moved by sim.verify).
WAVE_FILE = "waves.fst"


def icarus_runner(standard: str, dump: bool):
    """cocotb's Icarus runner with the language mode ``standard`` and FST dumping on or off.

    cocotb's runner always compiles with ``-g2012`` and, with waves, adds a dump module written in
    SystemVerilog; this one swaps in the chosen mode and leaves dumping to
    :func:`sim.waves.icarus_dump_module` (plain Verilog-2005).
    """
    from cocotb_tools.runner import Icarus

    flag = STANDARDS[standard]

    class ShiftrnnIcarus(Icarus):
        def _build_command(self):
            return [[flag if a == "-g2012" else a for a in cmd] for cmd in super()._build_command()]

        def _test_command(self):
            self.plusargs = [a for a in self.plusargs if a not in ("-fst", "-none")]
            cmds = super()._test_command()
            return [[a for a in cmd if a not in ("-fst", "-none")] + ["-fst" if dump else "-none"]
                    for cmd in cmds]

    return ShiftrnnIcarus()


def icarus_build(verilog: Path, top: str, *, verilog_hash: str, standard: str,
                 waves: str = "none") -> tuple[Path, bool]:
    """Compile (or reuse) the Icarus simulation of one design.

    Parameters
    ----------
    verilog, top, verilog_hash : the design's Verilog file, top module and content hash.
    standard : {'2005', '2012'}
        ``iverilog -g2005`` or ``-g2012``.
    waves : {'none', 'debug', 'full'}
        Which signals the run dumps into :data:`WAVE_FILE` (FST).

    Returns
    -------
    (Path, bool)
        Build folder (holds ``sim.vvp``) and whether it was built now.
    """
    if standard not in STANDARDS:
        raise ValueError(f"standard must be one of {', '.join(STANDARDS)}, got {standard!r}")
    tool = find_icarus()
    dump = icarus_dump_module(Path(verilog), top, waves, WAVE_FILE) if waves != "none" else ""
    versions = {"icarus": tool.version, "cocotb": importlib.metadata.version("cocotb")}
    key = build_key("icarus", verilog_hash, top, standard, dump, versions)

    def build(folder: Path) -> None:
        sources, args = [str(verilog)], []
        if dump:
            (folder / "waves.v").write_text(dump)
            sources.append(str(folder / "waves.v"))
            args = ["-s", DUMP_MODULE]
        log = folder / "build.log"
        try:
            icarus_runner(standard, bool(dump)).build(
                sources=sources, hdl_toplevel=top, build_dir=str(folder),
                timescale=("1ns", "1ps"), build_args=args, log_file=str(log), always=True)
        except (RuntimeError, SystemExit, OSError) as e:
            raise BuildError(f"iverilog {STANDARDS[standard]} of {verilog} failed ({e}); log "
                             f"{log}:\n{log_tail(log)}") from None
        if not (folder / "sim.vvp").is_file():
            raise BuildError(f"iverilog of {verilog} produced no sim.vvp; log {log}:\n"
                             f"{log_tail(log)}")

    return cached_build(f"icarus{standard}", key, build,
                        info={"verilog": str(verilog), "top": top, "standard": standard,
                              "waves": waves, **versions})
