"""The fast path's compiled part: the generated header, the Verilated model, the cached build.

:func:`fast_build` Verilates the design (its own top, as ``verilator --cc -O3``), writes
``shiftrnn_harness.h`` (:func:`harness_header`: port widths, input and output copies and the
toggle counter, see :mod:`sim.fast` for what is counted) and compiles ``sim/harness.cpp`` with it.

What makes a cycle cheap (docs/verification.md explains, docs/benchmarks.md measures):

* Toggles are counted over memory words: :func:`_probe_layout` compiles a few lines of C++ that
  print the byte offsets of the counted signals in the model, and the header reads the aligned
  64-bit words that hold them, each masked to the counted bits, one hardware popcount per word
  (the instruction is picked at run time when the CPU has it).
* The input-combinational phase runs only when an input changed. Verilator's ``eval()`` always
  begins by recomputing the logic that reads a top-level input (its "ico" region, which for the
  generated designs is most of the next-state logic), although the harness changes the inputs
  only after an input handshake; logic that also reads registers is recomputed after every
  clock edge in the "nba" region anyway. :func:`gate_input_phase` makes that first recomputation
  conditional on a flag the harness sets when it changes an input (one line of the generated
  C++; if Verilator's output does not have that line, the model is left as it is and every
  evaluation recomputes the phase, which is slower and equally exact).
* With clk's rising edge the model's only trigger, the falling edge with unchanged inputs is
  recorded by setting the trigger's previous value instead of an evaluation; and the model's
  own evaluation function is called instead of ``Vtop::eval()`` (whose extra bookkeeping serves
  multithreaded models). Both only when the generated model has that shape.

A build folder is keyed by the Verilog's hash, the top name, the port widths, the harness
sources and recipe, the optimisation flags and the tool versions (:mod:`sim.cache`): a design is
built once and every later run reuses the binary (Dask workers get its bytes, :mod:`sim.shard`).
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
from pathlib import Path

from golden import Fixed
from golden.manifest import Field, Port

from . import build
from .build import BuildError, log_tail, tool_versions
from .cache import build_key, cached_build
from .design import Design
from .toolchain import ensure_verilator

__all__ = ["fast_build", "fast_runtime", "flop_names", "gate_input_phase", "harness_header"]

#: Bump when the harness, the generated top or the build recipe changes.
HARNESS_RECIPE = 6
#: gcc optimisation of the design's per-cycle C++ (``OPT_FAST``) and of the harness. -O2 and
#: -O3 ran no faster here (GRU-16 and GRU-128, best of 5) and compile large designs up to twice
#: as long.
OPT = "-O1"
#: Verilator options of the fast-path build (besides the file names).
VERILATOR_FLAGS = ("-O3", "-Wno-fatal")
#: Top-level 1-bit signals counted in ``port.control``.
CONTROL = ("rst", "s_axis_tvalid", "s_axis_tready", "s_axis_tuser", "s_axis_tlast",
           "m_axis_tvalid", "m_axis_tready", "m_axis_tuser", "m_axis_tlast")


# ---------------------------------------------------------------------------- flip-flops
_MEMBER = re.compile(
    r"^\s*(CData|SData|IData|QData|VlWide<(\d+)>)\s*/\*(\d+):(\d+)\*/\s*([A-Za-z_][A-Za-z0-9_]*);")
_NBA = re.compile(r"^\s*(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)\s*(?:\[[^\]]*\]\s*)?<=")
_DECL = re.compile(r"^\s*(?:output\s+)?reg\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s*)?"
                   r"(\\\S+|[A-Za-z_][\w$]*)")
_MANGLED = re.compile(r"__0([0-9A-F]{2})")


def flop_names(verilog_text: str) -> dict[str, int]:
    """Flip-flops of a Verilog file: names assigned with ``<=`` (Amaranth uses ``<=`` only in
    clocked processes), with their declared widths."""
    widths = {}
    for line in verilog_text.splitlines():
        m = _DECL.match(line)
        if m:
            w = abs(int(m.group(1)) - int(m.group(2))) + 1 if m.group(1) else 1
            widths[m.group(3).lstrip("\\")] = w
    flops = {}
    for line in verilog_text.splitlines():
        m = _NBA.match(line)
        if m:
            name = m.group(1).lstrip("\\")
            flops[name] = widths.get(name, 0)
    return flops


def _demangle(part: str) -> str:
    return _MANGLED.sub(lambda m: chr(int(m.group(1), 16)), part)


def _state_signals(root_header: Path, top: str, flops: dict[str, int]
                   ) -> list[tuple[str, int, int, str]]:
    """(member, width, words, group) for every flip-flop Verilator kept as a model member."""
    out = []
    prefix = f"{top}__DOT__"
    for line in root_header.read_text().splitlines():
        m = _MEMBER.match(line)
        if not m:
            continue
        member = m.group(5)
        if not member.startswith(prefix):
            continue
        parts = [_demangle(p) for p in member[len(prefix):].split("__DOT__")]
        if parts[-1] not in flops:
            continue
        width = int(m.group(3)) - int(m.group(4)) + 1
        words = int(m.group(2)) if m.group(2) else 0
        group = "state.top" if len(parts) == 1 else f"state.{parts[0]}"
        out.append((member, width, words, group))
    return out


# --------------------------------------------------------------------------- the header
def _probe_layout(folder: Path, members: list[str]) -> dict[str, tuple[int, int]]:
    """Byte offset and size of each member of the Verilated model's root class.

    Compiles and runs a few lines of C++ against ``Vtop___024root.h`` (``offsetof`` on a class
    that is not standard-layout: supported by gcc and clang, hence ``-Wno-invalid-offsetof``).
    """
    tc = ensure_verilator()
    lines = [f'    std::printf("%zu %zu\\n", offsetof(Vtop___024root, {m}), '
             f"sizeof(Vtop___024root::{m}));" for m in members]
    src = folder / "layout_probe.cpp"
    src.write_text('#include <cstddef>\n#include <cstdio>\n#include "Vtop___024root.h"\n'
                   "double sc_time_stamp() { return 0; }\n"
                   'int main() {\n    std::printf("%zu\\n", sizeof(Vtop___024root));\n'
                   + "\n".join(lines) + "\n}\n")
    inc = tc.root / "include"
    exe = folder / "layout_probe"
    _run(["c++", "-O0", "-Wno-invalid-offsetof", f"-I{folder}", f"-I{inc}",
          f"-I{inc / 'vltstd'}", str(src), "-o", str(exe)], folder, folder / "build.log")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    size, rest = int(out[0]), [int(v) for v in out[1:]]
    layout = {m: (rest[2 * i], rest[2 * i + 1]) for i, m in enumerate(members)}
    for m, (off, n) in layout.items():
        if off + n > size:
            raise BuildError(f"{folder}: member {m} at {off}+{n} lies outside the model ({size})")
    return layout


def _windows(signals: list[tuple[str, int, int, int]],
             layout: dict[str, tuple[int, int]]) -> list[tuple[int, int, int]]:
    """The sampled bits as (8-byte-aligned offset, 64-bit mask, group) windows of the model.

    ``signals`` are (member, width, words, group index): a scalar counts its low ``width``
    bits (the value masked to its width), a wide signal (``words`` > 0) all bits of its 32-bit
    words. One window per aligned 8 bytes and group that holds counted bits: a load, a mask
    and a popcount stand for every signal in it (members are little-endian).
    """
    masks: dict[tuple[int, int], int] = {}
    for member, width, words, group in signals:
        off, size = layout[member]
        value_bits = 32 * words if words else min(width, 8 * size)
        for bit in range(value_bits):
            byte = off + bit // 8
            key = (byte - byte % 8, group)
            masks[key] = masks.get(key, 0) | 1 << (8 * (byte % 8) + bit % 8)
    return [(off, mask, group) for (off, group), mask in sorted(masks.items())]


def _port_copy(port: Port, name: str, direction: str) -> str:
    """C++ statements copying between ``uint32_t* w`` and a top-level port."""
    if port.width <= 32:
        return f"top->{name} = w[0];" if direction == "in" else f"w[0] = top->{name};"
    if port.width <= 64:
        if direction == "in":
            return f"top->{name} = (uint64_t)w[0] | ((uint64_t)w[1] << 32);"
        return f"w[0] = (uint32_t)top->{name}; w[1] = (uint32_t)(top->{name} >> 32);"
    if direction == "in":
        return f"for (int i = 0; i < {port.words}; ++i) top->{name}[i] = w[i];"
    return f"for (int i = 0; i < {port.words}; ++i) w[i] = top->{name}[i];"


def harness_header(s_port: Port, m_port: Port, *, name: str, top: str, folder: Path,
                   state: bool, flops: dict[str, int], root_eval: bool,
                   clk_trigger_only: bool) -> tuple[str, dict[str, int]]:
    """The generated ``shiftrnn_harness.h`` and the bits tracked per group.

    Parameters
    ----------
    s_port, m_port : Port
        The design's stream ports.
    name, top : str
        Design name (for the header's comment) and top module.
    folder : Path
        The Verilated model (``Vtop___024root.h``: its members are the countable state).
    state : bool
        Count the design's flip-flops (else the ports only).
    flops : dict
        :func:`flop_names` of the design's Verilog.
    root_eval : bool
        The model defines ``Vtop___024root___eval`` (the harness then calls it directly).
    clk_trigger_only : bool
        The model's only trigger is clk's rising edge (the harness then records the falling
        edge without an evaluation when no input changed).
    """
    groups = ["port.s_axis_tdata", "port.m_axis_tdata", "port.control"]
    bits = {g: 0 for g in groups}
    signals: list[tuple[str, int, int, int]] = []

    def add(expr: str, width: int, words: int, group: str) -> None:
        if group not in bits:
            groups.append(group)
            bits[group] = 0
        bits[group] += width
        signals.append((expr, width, words, groups.index(group)))

    for port, pname in ((s_port, "s_axis_tdata"), (m_port, "m_axis_tdata")):
        wide = port.width > 64
        add(pname, port.width, port.words if wide else 0, f"port.{pname}")
    for cname in CONTROL:
        add(cname, 1, 0, "port.control")
    if state:
        for member, width, words, group in _state_signals(folder / "Vtop___024root.h", top,
                                                          flops):
            add(member, width, words, group)
        bits["state_bits_declared"] = sum(flops.values())
    windows = _windows(signals, _probe_layout(folder, [m for m, *_ in signals]))
    stmts = [f"{{ uint64_t v; std::memcpy(&v, b + {off}, 8); v &= 0x{mask:x}ull; "
             f"c[{group}] += POP(v ^ p[{k}]); p[{k}] = v; }}"
             for k, (off, mask, group) in enumerate(windows)]
    n_prev = len(windows)
    names = ", ".join(f'"{g}"' for g in groups)
    body = " \\\n    ".join(stmts)
    set_in = _port_copy(s_port, "s_axis_tdata", "in")
    get_out = _port_copy(m_port, "m_axis_tdata", "out")
    return f"""// Generated by sim/harness.py for design {name} (top {top}). Do not edit.
#pragma once
#define SR_IN_WORDS {s_port.words}
#define SR_OUT_WORDS {m_port.words}
#define SR_ROOT_EVAL {int(root_eval)}
#define SR_CLK_TRIGGER_ONLY {int(clk_trigger_only)}
#define SR_N_GROUPS {len(groups)}
#define SR_N_PREV {n_prev}
static const char* const sr_group_names[SR_N_GROUPS] = {{{names}}};
static inline void sr_set_input(Vtop* top, const uint32_t* w) {{ {set_in} }}
static inline void sr_get_output(const Vtop* top, uint32_t* w) {{ {get_out} }}
// Adds the toggles since the previous call to c[group]; p holds the previous words; b is the
// model's root object (its counted bits in aligned 64-bit windows, see sim/harness.py).
#define SR_TOGGLES_BODY \\
    {body}
""", bits


# ------------------------------------------------------------------------------- building
def _template() -> str:
    return importlib.resources.files("sim").joinpath("harness.cpp").read_text()


def _run(cmd: list[str], cwd: Path, log: Path) -> None:
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise BuildError(f"command failed ({proc.returncode}): {' '.join(cmd[:3])} ...; "
                         f"log {log}:\n{log_tail(log)}")


#: The line of Verilator's eval loop that forces the input-combinational phase, and its gate.
_ICO_FORCED = "    vlSelfRef.__VicoFirstIteration = 1U;\n"
_ICO_GATED = "    vlSelfRef.__VicoFirstIteration = shiftrnn_inputs_changed;\n"
_ROOT_EVAL = "void Vtop___024root___eval(Vtop___024root* vlSelf);"
#: The model member holding clk's previous value for its rising-edge trigger.
_CLK_TRIGGER = "__Vtrigprevexpr___TOP__clk__0"


def gate_input_phase(folder: Path) -> bool:
    """Make the model's input-combinational phase conditional on ``shiftrnn_inputs_changed``.

    Patches the one line of Verilator's ``Vtop___024root___eval`` that sets
    ``__VicoFirstIteration``; returns False (and changes nothing) unless exactly one generated
    file has exactly one such line.
    """
    hits = [(f, f.read_text()) for f in sorted(folder.glob("Vtop___024root__*.cpp"))]
    hits = [(f, t) for f, t in hits if _ICO_FORCED in t]
    if len(hits) != 1 or hits[0][1].count(_ICO_FORCED) != 1:
        return False
    f, text = hits[0]
    text = text.replace(_ICO_FORCED, _ICO_GATED)
    head, sep, rest = text.partition('#include "Vtop__pch.h"\n')
    if not sep:
        return False
    f.write_text(head + sep + "extern int shiftrnn_inputs_changed;  // sim/harness.py\n" + rest)
    return True


def _build_harness(verilog: Path, top: str, s_port: Port, m_port: Port,
                   folder: Path, runtime: Path | None, *, name: str, state: bool = True) -> dict:
    """Verilate and compile the harness of one design into ``folder``; returns the bits
    tracked per toggle group."""
    tc = ensure_verilator()
    log = folder / "build.log"
    (folder / "harness.cpp").write_text(_template())
    cmd = [str(tc.verilator), "--cc", "--exe", "--prefix", "Vtop", "-Mdir", str(folder),
           "--top-module", top, *VERILATOR_FLAGS, "-o", "harness",
           str(folder / "harness.cpp"), str(verilog)]
    _run(cmd, folder, log)
    gated = gate_input_phase(folder)
    flops = flop_names(Path(verilog).read_text()) if state else {}
    root_eval = _ROOT_EVAL in (folder / "Vtop.cpp").read_text()
    triggers = re.findall(r"\b__Vtrigprevexpr\w*", (folder / "Vtop___024root.h").read_text())
    clk_only = set(triggers) == {_CLK_TRIGGER}
    header, bits = harness_header(s_port, m_port, name=name, top=top, folder=folder,
                                  state=state, flops=flops, root_eval=root_eval,
                                  clk_trigger_only=clk_only)
    (folder / "shiftrnn_harness.h").write_text(header)
    (folder / "toggle_bits.json").write_text(json.dumps(bits, indent=1))
    (folder / "model_notes.json").write_text(json.dumps(
        {"input_phase_gated": gated, "root_eval": root_eval, "clk_trigger_only": clk_only},
        indent=1))
    if runtime is not None:
        build.install_runtime(runtime, folder)
    env, unit = build.one_unit("harness")
    _run([*env, "make", "-j", str(build.build_jobs()), "-C", str(folder), "-f", "Vtop.mk",
          f"OPT_FAST={OPT}", "OPT_GLOBAL=-O2", "OPT_SLOW=-O0", *build.MAKE_VARS, *unit],
         folder, log)
    if not (folder / "harness").is_file():
        raise BuildError(f"fast-path build produced no harness; log {log}:\n{log_tail(log)}")
    return bits


def _recipe() -> list:
    """Everything about the build that is not the design (part of every build key)."""
    return [HARNESS_RECIPE, OPT, list(VERILATOR_FLAGS), _template(), tool_versions()]


def fast_runtime() -> Path:
    """Cached run-time objects for harness builds (compiled once from a dummy design)."""
    key = build_key("runtime-fast", _recipe())

    def build_dummy(folder: Path) -> None:
        work = folder / "dummy"
        work.mkdir()
        (work / "shiftrnn_dummy.v").write_text(build.DUMMY_VERILOG)
        layout = Port("d", "in", 8, "dummy", "vector", (Field("d", 0, 8, Fixed(8, 0)),))
        _build_harness(work / "shiftrnn_dummy.v", "shiftrnn_dummy", layout, layout, work, None,
                       name="shiftrnn_dummy", state=False)
        build.harvest_runtime(work, folder)
        shutil.rmtree(work)

    folder, _ = cached_build("runtime-fast", key, build_dummy, info=tool_versions())
    return folder


def fast_build(design: Design) -> tuple[Path, bool]:
    """Build (or reuse) the fast-path harness of one design; returns (folder, built now)."""
    key = build_key("fast", design.verilog_hash, design.top, design.s_port.width,
                    design.m_port.width, _recipe())
    runtime = fast_runtime()

    def build_design(folder: Path) -> None:
        _build_harness(design.verilog, design.top, design.s_port, design.m_port, folder,
                       runtime, name=design.name)

    return cached_build("fast", key, build_design,
                        info={"verilog": str(design.verilog), "top": design.top, **tool_versions()})
