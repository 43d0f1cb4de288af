"""Run the cocotb bench (:mod:`sim.bench`) on a design through ``cocotb_tools.runner``."""

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
from .toolchain import ensure_verilator

__all__ = ["VerifyResult", "verify"]

TESTS = ("timing", "streams")


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`.

    Attributes
    ----------
    passed : bool
        Every cocotb test passed (bit-exact outputs, flags, cycle counts).
    cycles_per_timestep, latency : float or None
        Measured in the ``timing`` test (``None`` when it did not run).
    outputs : int
        Output beats compared with golden, over all tests.
    tests : dict
        Per-test reports written by the bench (``passed``, ``message``, counts, ...).
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
    build_dir: Path | None = None
    built: bool = False
    log: Path | None = None
    waves: Path | None = None
    seconds: float = 0.0
    build_seconds: float = 0.0

    def observed_sequences(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(inputs, RTL outputs) of every ``streams`` sequence whose steps all came out.

        Sequences cut by the mid-stream reset are left out. Lets other simulators (the fast
        path) be compared with what the cocotb bench saw, output for output.
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
        s = (f"{status} {self.design}: {self.outputs} outputs bit-exact vs golden"
             if self.passed else f"{status} {self.design}")
        s += (f"; cycles/timestep {cpt} (manifest {self.manifest_cycles_per_timestep}), latency "
              f"{lat} (manifest {self.manifest_latency}); seed {self.seed}, "
              f"{self.sequences} sequences up to length {self.length}; "
              f"{'built' if self.built else 'cached build'}, {self.seconds:.1f} s")
        if self.waves:
            s += f"; waves {self.waves}"
        if not self.passed and self.message:
            s += "\n" + self.message
        return s


def verify(design_dir, *, sequences: int = 8, length: int = 24, seed: int = 0,
           idle_prob: float = 0.3, backpressure: float = 0.3, waves: bool = False,
           waves_path=None, work_dir=None, tests: tuple[str, ...] = TESTS) -> VerifyResult:
    """Build (cached) and run the cocotb bench on one design folder.

    Parameters
    ----------
    design_dir : path-like
        ``rtl_out/<design>/`` (Verilog, manifest.json, model.npz).
    sequences, length : int
        Number of random sequences in the ``streams`` test and the long length (also sequences of
        length 1, a few steps and random lengths run).
    seed : int
        Seeds every random choice (data, idle cycles, backpressure, the reset point).
    idle_prob, backpressure : float
        Probability of idle cycles before an input beat / of ready low in a cycle.
    waves : bool
        Record a VCD waveform (a separate cached build with tracing).
    waves_path : path-like, optional
        Where the waveform goes (default ``<design_dir>/<design>.vcd``).
    work_dir : path-like, optional
        Folder for the run's log, reports and results (default: a fresh temporary folder, removed
        after a passing run unless waves were asked for).
    tests : tuple of str
        Which bench tests to run (``timing``, ``streams``).

    Returns
    -------
    VerifyResult
    """
    t0 = time.perf_counter()
    ensure_verilator()
    design = Design(design_dir)
    unknown = set(tests) - set(TESTS)
    if unknown or not tests:
        raise ValueError(f"tests must be a non-empty subset of {TESTS}, got {tests}")
    if sequences < 1 or length < 1:
        raise ValueError("sequences and length must be >= 1")
    tb = time.perf_counter()
    build_dir, built = cocotb_build(design.verilog, design.top, verilog_hash=design.verilog_hash,
                                    waves=waves)
    build_seconds = time.perf_counter() - tb
    temp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix=f"verify-{design.name}-")) if temp else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    reports = work / "reports"
    if reports.exists():
        shutil.rmtree(reports)
    reports.mkdir()
    cfg = {"design_dir": str(design.path), "seed": int(seed), "sequences": int(sequences),
           "length": int(length), "idle_prob": float(idle_prob),
           "backpressure": float(backpressure), "report_dir": str(reports)}
    cfg_path = work / "bench_config.json"
    cfg_path.write_text(json.dumps(cfg, indent=1))
    wave_file = None
    test_args = []
    if waves:
        wave_file = Path(waves_path) if waves_path else design.path / f"{design.name}.vcd"
        test_args = ["--trace-file", str(wave_file.resolve())]
    log = work / "sim.log"
    from cocotb_tools.runner import get_runner

    runner = get_runner("verilator")
    failure = ""
    try:
        runner.test(test_module="sim.bench", hdl_toplevel=design.top, hdl_toplevel_lang="verilog",
                    build_dir=str(build_dir), test_dir=str(work),
                    results_xml=str(work / "results.xml"), seed=int(seed),
                    extra_env={"SHIFTRNN_SIM_CONFIG": str(cfg_path),
                               "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "INFO")},
                    testcase=list(tests), waves=waves, test_args=test_args, log_file=str(log),
                    timescale=("1ns", "1ps"))
    except SystemExit as e:  # cocotb's runner exits when a test fails under pytest
        failure = f"cocotb exited with status {e.code}"
    except RuntimeError as e:
        failure = f"simulator failed: {e}"
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
    res = VerifyResult(
        design=design.name,
        passed=passed and not missing,
        seed=int(seed),
        sequences=int(sequences),
        length=int(length),
        cycles_per_timestep=timing.get("cycles_per_timestep"),
        latency=timing.get("latency"),
        manifest_cycles_per_timestep=design.cycles_per_timestep,
        manifest_latency=design.latency,
        outputs=sum(int(r.get("outputs", 0)) for r in results.values()),
        message="\n".join(msgs),
        tests=results,
        build_dir=build_dir,
        built=built,
        log=log,
        waves=wave_file if wave_file is not None and wave_file.exists() else None,
        seconds=time.perf_counter() - t0,
        build_seconds=build_seconds,
    )
    if temp and res.passed:
        shutil.rmtree(work, ignore_errors=True)
        res.log = None
    return res
