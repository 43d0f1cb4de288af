"""Which signals a waveform of the cocotb bench records, for Verilator and for Icarus Verilog.

Two modes:

``debug`` (the default of ``waves=True``)
    What a person debugging the stream needs: every signal of the top module (the ports and
    their aliases), the control registers (``busy`` of the input stage, ``issuing`` and
    ``group`` of each weighted-sum engine) and the state banks' registers (``h__v__<unit>``,
    ``c__v__<unit>`` of each layer, ``y__v__<unit>`` of the head).
``full``
    Every signal of every instance.

The debug selection is read from the Verilog text (yosys's ``write_verilog`` output: one
declaration per line, instances as ``<module> <instance> (``): :func:`debug_signals` lists the
hierarchical names, which become Verilator ``tracing_on -scope`` rules (:func:`verilator_config`)
or Icarus ``$dumpvars`` calls (:func:`icarus_dump_module`).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["WAVE_MODES", "debug_signals", "icarus_dump_module", "verilator_config",
           "wave_mode"]

#: ``waves=`` values of :func:`sim.verify` (``True`` means ``debug``, ``False`` none).
WAVE_MODES = ("none", "debug", "full")

#: Register names that the debug waveform keeps besides the top module's signals.
STATE_NAME = re.compile(r"^(?:busy|issuing|group|[hcy]__v__\d+)$")

_MODULE = re.compile(r"^module\s+(\\\S+|\w+)\s*\(")
_DECL = re.compile(r"^\s+(?:reg|wire)\s+(?:signed\s+)?(?:\[[^\]]+\]\s+)?(\\\S+|\w+)")
_INSTANCE = re.compile(r"^\s+(\\\S+|\w+)\s+(\\\S+|\w+)\s*\(\s*$")


def wave_mode(waves) -> str:
    """Normalise a ``waves=`` argument to one of :data:`WAVE_MODES`."""
    if waves is None or waves is False:
        return "none"
    if waves is True:
        return "debug"
    if waves in WAVE_MODES:
        return str(waves)
    raise ValueError(f"waves must be one of {', '.join(WAVE_MODES)} (or True/False), got "
                     f"{waves!r}")


def _modules(text: str) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    """module name -> (declared signal names, [(child module, instance name)])."""
    mods: dict[str, tuple[list[str], list[tuple[str, str]]]] = {}
    current = None
    for line in text.splitlines():
        m = _MODULE.match(line)
        if m:
            current = mods.setdefault(m.group(1).lstrip("\\"), ([], []))
            continue
        if current is None or line.startswith("endmodule"):
            current = None if line.startswith("endmodule") else current
            continue
        d = _DECL.match(line)
        if d:
            current[0].append(d.group(1))
            continue
        i = _INSTANCE.match(line)
        if i and i.group(1) not in ("assign", "always", "if", "else", "case", "casez"):
            current[1].append((i.group(1).lstrip("\\"), i.group(2)))
    return mods


def debug_signals(verilog: Path | str, top: str) -> list[list[str]]:
    """Hierarchical paths (lists of names from ``top``) of the debug waveform's state registers.

    The top module's own signals are not listed (both back ends take them whole).
    """
    return [[n.lstrip("\\") for n in path] for path in _debug_paths(verilog, top)]


def _debug_paths(verilog: Path | str, top: str) -> list[list[str]]:
    """:func:`debug_signals` with names as the Verilog writes them (escaped ones with their
    backslash: an instance called ``input`` is ``\\input``)."""
    text = Path(verilog).read_text() if isinstance(verilog, Path) else verilog
    mods = _modules(text)
    out: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        names, children = mods.get(module, ([], []))
        if path[1:]:
            out.extend(path + [n] for n in names if STATE_NAME.match(n))
        for child, inst in children:
            if child in mods and len(path) < 16:
                walk(child, path + [inst])

    walk(top, [top])
    return out


def verilator_config(verilog: Path, top: str) -> str:
    """A Verilator control file (``.vlt``) that traces the debug selection only."""
    lines = ["`verilator_config", 'tracing_off -scope "*"',
             f'tracing_on -scope "{top}" -levels 1']
    lines += [f'tracing_on -scope "{".".join(p)}"' for p in debug_signals(verilog, top)]
    return "\n".join(lines) + "\n"


def _ref(path: list[str]) -> str:
    """A Verilog hierarchical reference (escaped names end with a space)."""
    return ".".join(f"{p} " if p.startswith("\\") else p for p in path)


#: Name of the module :func:`icarus_dump_module` writes (a second root of the Icarus build).
DUMP_MODULE = "shiftrnn_waves"


def icarus_dump_module(verilog: Path, top: str, mode: str, dumpfile: str) -> str:
    """Verilog-2005 source of a module that dumps the ``mode`` selection into ``dumpfile``."""
    if mode == "full":
        calls = [f"$dumpvars(0, {top});"]
    else:
        calls = [f"$dumpvars(1, {top});"]
        calls += [f"$dumpvars(0, {_ref(p)});" for p in _debug_paths(verilog, top)]
    body = "\n".join(f"        {c}" for c in calls)
    return (f"module {DUMP_MODULE};\n    initial begin\n        $dumpfile(\"{dumpfile}\");\n"
            f"{body}\n    end\nendmodule\n")
