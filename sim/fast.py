"""The fast path: whole datasets through the Verilated design with no per-cycle Python.

:func:`simulate` packs every timestep into a binary file, runs a compiled C++ harness
(``sim/harness.cpp`` plus a generated header) that drives the AXI handshake itself with no idle
cycles and no backpressure, and reads back every output beat with its cycle stamps. The outputs
are compared exactly with golden, cycle counts are checked against the manifest, and for language
models (token input with a head) the bits per character are computed from the RTL's own logits.

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
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .design import Design
from .harness import fast_build

__all__ = ["SimResult", "simulate", "bpc_from_logits"]
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
        Simulated throughput, wall-clock, of the harness's simulation loop.
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
                     "cycles/s simulated")
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
    z = logits_int[:, :-1].astype(np.float64) * 2.0**-frac
    z -= z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    tgt = tokens[:, 1:]
    picked = np.take_along_axis(logp, tgt[..., None], axis=-1)[..., 0]
    return float(-picked.mean() / np.log(2.0))


def simulate(design_dir, x_int, *, check: bool = True, work_dir=None,
             keep_files: bool = False) -> SimResult:
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
        Where the binary input/output files go (default: a temporary folder).
    keep_files : bool
        Keep the temporary folder.

    Returns
    -------
    SimResult
    """
    design = design_dir if isinstance(design_dir, Design) else Design(design_dir)
    x = _as_sequences(design, x_int)
    B, T = x.shape[:2]
    n = B * T
    folder, built = fast_build(design)
    bits = json.loads((folder / "toggle_bits.json").read_text())

    flat = x.reshape(n, -1) if x.ndim == 3 else x.reshape(n)
    words = design.s_port.pack_words(flat)
    flags = np.zeros(n, np.uint32)
    t_idx = np.tile(np.arange(T), B)
    flags |= (t_idx == 0).astype(np.uint32)
    flags |= (t_idx == T - 1).astype(np.uint32) << 1
    body = np.concatenate([flags[:, None], words], axis=1).astype("<u4")
    header = np.array([MAGIC, 1, n & 0xFFFFFFFF, n >> 32, design.s_port.words, 0, 0, 0], "<u4")

    temp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix=f"fast-{design.name}-")) if temp else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        fin, fout = work / "input.bin", work / "output.bin"
        with open(fin, "wb") as fh:
            fh.write(header.tobytes())
            fh.write(body.tobytes())
        cpt = max(design.cycles_per_timestep, 1)
        max_cycles = (n + 2) * cpt * 4 + design.latency * 4 + 10_000
        t0 = time.perf_counter()
        proc = subprocess.run([str(folder / "harness"), str(fin), str(fout), str(max_cycles)],
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"fast-path harness failed ({proc.returncode}): "
                               f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        info = json.loads(lines[-1])
        if "error" in info:
            raise RuntimeError(f"fast-path harness: {info['error']}")
        stride = 5 + design.m_port.words
        raw = np.fromfile(fout, dtype="<u4").reshape(-1, stride)
    finally:
        if temp and not keep_files:
            shutil.rmtree(work, ignore_errors=True)

    got = raw.shape[0]
    out_flags = raw[:, 0]
    in_cyc = raw[:, 1].astype(np.uint64) | (raw[:, 2].astype(np.uint64) << np.uint64(32))
    out_cyc = raw[:, 3].astype(np.uint64) | (raw[:, 4].astype(np.uint64) << np.uint64(32))
    data = design.m_port.unpack_words(raw[:, 5:])
    msgs = []
    if info.get("timeout"):
        msgs.append(f"timeout: only {got} of {n} outputs after {info['cycles']} cycles")
    outputs = np.zeros((B, T, design.m_port.size), np.int64)
    outputs.reshape(n, -1)[:got] = data

    want_flags = flags
    if got and not np.array_equal(out_flags, want_flags[:got]):
        bad = np.flatnonzero(out_flags != want_flags[:got])
        msgs.append(f"{bad.size} outputs carry wrong tuser/tlast (first at beat {bad[0]})")

    ic, oc = in_cyc.astype(np.int64), out_cyc.astype(np.int64)
    intervals = np.diff(ic) if got > 1 else np.array([], np.int64)
    delays = oc - ic
    meas_cpt = float(np.median(intervals)) if intervals.size else float(design.cycles_per_timestep)
    meas_lat = float(np.median(delays)) if delays.size else float("nan")
    timing_ok = bool((intervals == design.cycles_per_timestep).all()
                     and (delays == design.latency).all() and got == n)
    if got and not timing_ok:
        msgs.append(f"cycle check: input intervals {sorted(set(intervals.tolist()))[:6]} "
                    f"(manifest {design.cycles_per_timestep}), output delays "
                    f"{sorted(set(delays.tolist()))[:6]} (manifest {design.latency})")

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

    cycles = int(info["cycles"])
    secs = max(float(info["seconds"]), 1e-9)
    return SimResult(
        outputs=outputs,
        cycles=cycles,
        timesteps_per_s=n / secs,
        cycles_per_s=cycles / secs,
        toggles={k: int(v) for k, v in info["toggles"].items()},
        toggle_bits=bits,
        bpc=bpc,
        golden_equal=golden_equal,
        message="\n".join(msgs),
        cycles_per_timestep=meas_cpt,
        latency=meas_lat,
        timing_ok=timing_ok,
        in_cycles=ic,
        out_cycles=oc,
        timesteps=n,
        wall_seconds=wall,
        build_dir=folder,
        built=built,
    )
