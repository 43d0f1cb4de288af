"""The fast path: whole datasets through the Verilated design with no per-cycle Python.

:func:`simulate` packs every timestep into a binary file, runs a compiled C++ harness
(``sim/harness.cpp`` plus a generated header, built by :mod:`sim.harness`) that drives the AXI
handshake itself with no idle cycles and no backpressure, and reads back every output beat with
its cycle stamps. The outputs are compared exactly with golden, cycle counts are checked against
the manifest, and for language models (token input with a head) the bits per character are
computed from the RTL's own logits. With ``workers`` or ``scheduler`` the sequences run in
shards on Dask (:mod:`sim.shard`) and :func:`merge_runs` joins them into the result one run gives.

Switching activity: the harness samples signals once per cycle (the settled values before each
rising edge) and adds ``popcount(value XOR previous value)`` per signal group: the top-level ports
(``port.s_axis_tdata``, ``port.m_axis_tdata``, ``port.control``: rst and the valid, ready, user,
last of both streams) and the design's state, i.e. every flip-flop (a name assigned with ``<=``
in the Verilog) that Verilator keeps as a member of its model, grouped by first-level instance
(``state.<instance>``; ``state.top`` for the top module's own). Memories and wires
(combinational nets) are not counted, nor glitches inside a cycle: these are cycle-level toggle
counts of ports and registers. ``toggle_bits`` gives the bits tracked per group;
``state_bits_declared`` the flip-flop bits in the Verilog (some may be optimised away).
"""

from __future__ import annotations

import json
import numbers
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.evaluation import bits_per_char

from .design import Design
from .harness import fast_build

__all__ = ["HarnessRun", "SimResult", "Stream", "bpc_from_logits", "merge_runs", "run_harness",
           "simulate", "stream_beats", "stream_file"]
MAGIC = 0x314E5253  # 'SRN1'


@dataclass
class SimResult:
    """Outcome of :func:`simulate`.

    Attributes
    ----------
    outputs : ndarray
        ``(batch, time, n)`` integers streamed out by the RTL (logits or last hidden state).
    cycles : int
        Clock cycles from the first input handshake to the last output (reset excluded).
    timesteps_per_s, cycles_per_s : float
        Simulated throughput, wall-clock: of the harness's simulation loop for one run; with
        ``workers``, of the whole sharded run (Dask's scheduling and process starts included).
    toggles : dict
        Bit toggles per signal group over the run (see the module docstring).
    toggle_bits : dict
        Bits tracked per group (``toggles / (bits * cycles)`` is the activity factor).
    bpc : float or None
        Bits per character from the RTL's logits (language models only).
    golden_equal : bool or None
        Outputs equal golden exactly (``None`` if not checked).
    cycles_per_timestep, latency : float
        Measured (median input interval; output cycle minus input cycle).
    shards : int
        Harness runs the sequences were split into (1 without ``workers``).
    harness_seconds : float
        Wall seconds of the harnesses' simulation loops, summed over the shards (over the
        sharded run's wall time: the cores the shards actually got).
    toggles_exact : bool
        The toggle totals are those of one uninterrupted run (always, for one run; for shards,
        when every shard met its neighbour in the same state, see :func:`merge_runs`).
    """

    outputs: np.ndarray
    cycles: int
    timesteps_per_s: float
    cycles_per_s: float
    toggles: dict
    bpc: float | None = None
    golden_equal: bool | None = None
    message: str = ""
    cycles_per_timestep: float | None = None
    latency: float | None = None
    timing_ok: bool = True
    toggle_bits: dict = field(default_factory=dict)
    in_cycles: np.ndarray | None = None
    out_cycles: np.ndarray | None = None
    timesteps: int = 0
    wall_seconds: float = 0.0
    build_dir: Path | None = None
    built: bool = False
    shards: int = 1
    toggles_exact: bool = True
    harness_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.golden_equal is not False and self.timing_ok)

    def summary(self, name: str = "") -> str:
        status = {True: "PASS", False: "FAIL", None: "RAN"}[
            None if self.golden_equal is None and self.timing_ok else self.passed]
        parts = [f"{status} {name}".strip() + f": {self.timesteps} timesteps"]
        if self.golden_equal is not None:
            parts.append("bit-exact vs golden" if self.golden_equal else "MISMATCH vs golden")
        parts.append(f"{self.cycles} cycles ({self.cycles_per_timestep:g} cycles/timestep, "
                     f"latency {self.latency:g})")
        parts.append(f"{self.timesteps_per_s:,.0f} timesteps/s, {self.cycles_per_s:,.0f} "
                     "cycles/s simulated" + (f" on {self.shards} shards" if self.shards > 1
                                             else ""))
        if self.bpc is not None:
            parts.append(f"BPC {self.bpc:.4f} (from RTL logits)")
        tog = ", ".join(f"{k} {v}" for k, v in self.toggles.items())
        s = "; ".join(parts) + f"\ntoggles: {tog}"
        if self.message:
            s += "\n" + self.message
        return s


# ------------------------------------------------------------------------------------ run
def _as_sequences(design: Design, x) -> np.ndarray:
    m = design.model
    x = np.asarray(x)
    if m.input_kind == "token":
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"token input must be integers shaped (batch, time), got "
                             f"{x.dtype} {x.shape}")
        if x.size and (x.min() < 0 or x.max() >= m.input_size):
            raise ValueError(f"token indices must lie in [0, {m.input_size})")
    else:
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != m.input_size:
            raise ValueError(f"vector input must be shaped (batch, time, {m.input_size}), got "
                             f"{x.shape}")
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError("vector input must be formats.x integers (use "
                             "model.quantize_inputs for floats)")
    if x.shape[1] < 1 or x.shape[0] < 1:
        raise ValueError("need at least one sequence of at least one timestep")
    return x.astype(np.int64)


def bpc_from_logits(logits_int: np.ndarray, frac: int, tokens: np.ndarray) -> float:
    """Bits per character: softmax (float64) over the logits, next-token targets.

    Parameters
    ----------
    logits_int : ndarray
        ``(batch, time, vocab)`` integer logits at ``frac`` fractional bits.
    frac : int
        Fractional bits of the logits' format.
    tokens : ndarray
        ``(batch, time)`` input tokens; the logits at step ``t`` predict ``tokens[:, t + 1]``.
    """
    if tokens.shape[1] < 2:
        raise ValueError("BPC needs sequences of at least two characters")
    return bits_per_char(logits_int[:, :-1].astype(np.float64) * 2.0**-frac, tokens[:, 1:])


# ------------------------------------------------------------------------- one harness run
@dataclass
class HarnessRun:
    """What one harness process returned: its output beats and its JSON report."""

    raw: np.ndarray  #: ``(beats out, 5 + out_words)`` uint32 rows (see ``sim/harness.cpp``)
    info: dict  #: the harness's JSON line (cycles, seconds, toggles, window, digests)
    warm: int = 0  #: leading warm-up beats (their outputs are dropped by :func:`merge_runs`)


def stream_beats(design: Design, x: np.ndarray) -> np.ndarray:
    """Every timestep of ``x`` as one harness beat: ``(n, 1 + in_words)`` uint32 (flags, tdata).

    Sequences (rows of ``x``) go back to back, ``tuser`` on each first step, ``tlast`` on each
    last.
    """
    B, T = x.shape[:2]
    n = B * T
    flat = x.reshape(n, -1) if x.ndim == 3 else x.reshape(n)
    words = design.s_port.pack_words(flat)
    t_idx = np.tile(np.arange(T), B)
    flags = (t_idx == 0).astype(np.uint32) | ((t_idx == T - 1).astype(np.uint32) << 1)
    return np.concatenate([flags[:, None], words], axis=1).astype("<u4")


def stream_file(beats: np.ndarray, *, warm: int = 0, stop_at_last_in: bool = False) -> bytes:
    """The harness's input file: header (version 2) and beats (see ``sim/harness.cpp``)."""
    n = beats.shape[0]
    header = np.array([MAGIC, 2, n & 0xFFFFFFFF, n >> 32, beats.shape[1] - 1, warm,
                       int(stop_at_last_in), 0], "<u4")
    return header.tobytes() + np.ascontiguousarray(beats, "<u4").tobytes()


def max_cycles(design: Design, beats: int) -> int:
    """Cycle budget of a run of ``beats`` beats (four times the manifest's timing, plus slack)."""
    cpt = max(design.cycles_per_timestep, 1)
    return (beats + 2) * cpt * 4 + design.latency * 4 + 10_000


def run_harness(binary: Path, stream: bytes, *, out_words: int, budget: int,
                work_dir=None, keep_files: bool = False) -> HarnessRun:
    """Run the compiled harness on one input stream (:func:`stream_file`).

    Raises
    ------
    RuntimeError
        The harness failed or reported an error.
    """
    temp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="shiftrnn-fast-")) if temp else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        fin, fout = work / "input.bin", work / "output.bin"
        fin.write_bytes(stream)
        proc = subprocess.run([str(binary), str(fin), str(fout), str(budget)],
                              capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"fast-path harness failed ({proc.returncode}): "
                               f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        info = json.loads(lines[-1])
        if "error" in info:
            raise RuntimeError(f"fast-path harness: {info['error']}")
        raw = np.fromfile(fout, dtype="<u4").reshape(-1, 5 + out_words)
    finally:
        if temp and not keep_files:
            shutil.rmtree(work, ignore_errors=True)
    return HarnessRun(raw, info)


# ----------------------------------------------------------------------------- merging runs
@dataclass
class Stream:
    """The outputs of a whole stream, on the cycle numbering of one uninterrupted run."""

    out_flags: np.ndarray
    in_cycles: np.ndarray
    out_cycles: np.ndarray
    data: np.ndarray  #: ``(beats out, out_words)`` uint32
    cycles: int
    toggles: dict
    seconds: float  #: the harnesses' loop seconds, summed
    messages: list
    toggles_exact: bool = True


def _u64(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (lo.astype(np.uint64) | (hi.astype(np.uint64) << np.uint64(32))).astype(np.int64)


def merge_runs(runs: list[HarnessRun], out_words: int) -> Stream:
    """Join consecutive runs (shards of one stream) into the stream one run would produce.

    Each run after the first repeats, as warm-up, the sequence before its own beats: its
    interval from the last warm-up handshake to its first own handshake is the stream's, which
    places its cycles on the stream's numbering, and its counting window starts exactly where
    the previous run's ended (``sim/harness.cpp``), so the toggle totals are the stream's sums.
    Neighbouring runs must report the same digest at that boundary; a difference (the warm-up
    did not bring the design into the stream's state) is reported and clears ``toggles_exact``.
    """
    parts, toggles, messages = [], {}, []
    offset = last_in = 0
    seconds, exact, cycles = 0.0, True, 0
    for k, run in enumerate(runs):
        raw, info, warm = run.raw, run.info, run.warm
        in_c, out_c = _u64(raw[:, 1], raw[:, 2]), _u64(raw[:, 3], raw[:, 4])
        if k and raw.shape[0] > warm:
            gap = int(in_c[warm] - in_c[warm - 1]) if warm else 0
            offset = last_in + gap - int(in_c[warm])
            if info["start_digest"] != runs[k - 1].info["end_digest"]:
                exact = False
                messages.append(f"shard {k}: the warm-up did not reproduce the stream's state "
                                "at its first cycle; its toggles may differ from one run's")
        own = slice(warm, None)
        parts.append((raw[own, 0], in_c[own] + offset, out_c[own] + offset, raw[own, 5:]))
        if raw.shape[0] > warm:
            last_in = int(in_c[-1]) + offset
        for g, v in info["toggles"].items():
            toggles[g] = toggles.get(g, 0) + int(v)
        seconds += float(info["seconds"])
        cycles = int(info["cycles"]) + offset
        if info.get("timeout"):
            messages.append(f"timeout: run {k} gave {raw.shape[0] - warm} of "
                            f"{int(info['beats']) - warm} outputs after {info['cycles']} cycles")
    cat = [np.concatenate(c) if parts else np.zeros(0) for c in zip(*parts, strict=True)]
    data = cat[3].reshape(-1, out_words) if parts else np.zeros((0, out_words), np.uint32)
    return Stream(cat[0], cat[1], cat[2], data, cycles, toggles, seconds, messages, exact)


# ------------------------------------------------------------------------------- simulate
def simulate(design_dir, x_int, *, check: bool = True, work_dir=None,
             keep_files: bool = False, workers: int | None = None,
             scheduler: str | None = None, progress: bool = False) -> SimResult:
    """Run sequences through the Verilated design with the C++ harness.

    Parameters
    ----------
    design_dir : path-like or Design
        ``rtl_out/<design>/``.
    x_int : ndarray
        Tokens ``(batch, time)`` or ``formats.x`` integers ``(batch, time, input)``; each row is
        one sequence (``tuser`` on its first step, ``tlast`` on its last), sent back to back.
    check : bool
        Compare the outputs with ``model.run_int`` exactly (``golden_equal``).
    work_dir : path-like, optional
        Where the binary input/output files go (default: a temporary folder; one run only).
    keep_files : bool
        Keep the temporary folder.
    workers : int, optional
        Split the sequences into shards and run them on this many Dask workers
        (:mod:`sim.shard`; an embedded ``distributed.LocalCluster`` unless ``scheduler`` is
        given). The result is the same, bit for bit, as one run's: outputs, cycles, toggles.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``) to run the shards on.
    progress : bool
        Show a progress bar over the shards.

    Returns
    -------
    SimResult
    """
    if workers is not None and (not isinstance(workers, numbers.Integral) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    design = design_dir if isinstance(design_dir, Design) else Design(design_dir)
    x = _as_sequences(design, x_int)
    n = x.shape[0] * x.shape[1]
    folder, built = fast_build(design)
    bits = json.loads((folder / "toggle_bits.json").read_text())
    beats = stream_beats(design, x)
    out_words = design.m_port.words
    t0 = time.perf_counter()
    if workers is None and scheduler is None:
        run = run_harness(folder / "harness", stream_file(beats), out_words=out_words,
                          budget=max_cycles(design, n), work_dir=work_dir,
                          keep_files=keep_files)
        stream, shards = merge_runs([run], out_words), 1
        loop_seconds = stream.seconds
    else:
        from .shard import simulate_shards

        stream, shards = simulate_shards(design, folder, beats, x.shape[1], workers=workers,
                                         scheduler=scheduler, progress=progress)
        loop_seconds = time.perf_counter() - t0
    wall = time.perf_counter() - t0
    res = _check(design, x, stream, beats[:, 0], check)
    secs = max(loop_seconds, 1e-9)
    res.timesteps_per_s, res.cycles_per_s = n / secs, stream.cycles / secs
    res.toggle_bits, res.wall_seconds, res.build_dir, res.built = bits, wall, folder, built
    res.shards, res.harness_seconds = shards, stream.seconds
    return res


def _check(design: Design, x: np.ndarray, stream: Stream, flags: np.ndarray,
           check: bool) -> SimResult:
    """Outputs, flags, timing and golden checks of a merged stream."""
    B, T = x.shape[:2]
    n = B * T
    got = stream.data.shape[0]
    msgs = list(stream.messages)
    outputs = np.zeros((B, T, design.m_port.size), np.int64)
    outputs.reshape(n, -1)[:got] = design.m_port.unpack_words(stream.data)
    if got and not np.array_equal(stream.out_flags, flags[:got]):
        bad = np.flatnonzero(stream.out_flags != flags[:got])
        msgs.append(f"{bad.size} outputs carry wrong tuser/tlast (first at beat {bad[0]})")

    ic, oc = stream.in_cycles, stream.out_cycles
    intervals = np.diff(ic) if got > 1 else np.array([], np.int64)
    delays = oc - ic
    cpt, lat = design.cycles_per_timestep, design.latency
    meas_cpt = float(np.median(intervals)) if intervals.size else float(cpt)
    meas_lat = float(np.median(delays)) if delays.size else float("nan")
    timing_ok = bool((intervals == cpt).all() and (delays == lat).all() and got == n)
    if got and not timing_ok:
        msgs.append(f"cycle check: input intervals {sorted(set(intervals.tolist()))[:6]} "
                    f"(manifest {cpt}), output delays {sorted(set(delays.tolist()))[:6]} "
                    f"(manifest {lat})")

    golden_equal = None
    if check:
        want = design.model.run_int(x).output_int
        golden_equal = bool(got == n and np.array_equal(outputs, want))
        if not golden_equal:
            diff = outputs != want
            rows = np.argwhere(diff.any(axis=-1))
            first = [f"(seq {b}, step {t}): got {outputs[b, t][:8].tolist()} want "
                     f"{want[b, t][:8].tolist()}" for b, t in rows[:3]]
            msgs.append(f"{len(rows)} of {n} outputs differ from golden ({int(diff.sum())} "
                        f"elements); first " + "; ".join(first))
    bpc = None
    if design.is_language_model and T >= 2:
        bpc = bpc_from_logits(outputs, design.model.formats["out"].frac, x)
    return SimResult(outputs=outputs, cycles=stream.cycles, timesteps_per_s=0.0,
                     cycles_per_s=0.0, toggles=stream.toggles, bpc=bpc,
                     golden_equal=golden_equal, message="\n".join(msgs),
                     cycles_per_timestep=meas_cpt, latency=meas_lat, timing_ok=timing_ok,
                     in_cycles=ic, out_cycles=oc, timesteps=n,
                     toggles_exact=stream.toggles_exact)
