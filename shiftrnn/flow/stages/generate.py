"""Stage 3, generate: Verilog, manifest and lint waiver (``hw``), and the multiplier baseline."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass

from golden.manifest import Manifest

from ..config import check_lanes
from ..engine import RunContext, StageBase, StageOutput, file_sha256
from ..errors import FlowError
from .model import one_line
from .quantize import QuantizeResult, flow_model

__all__ = ["BaselineDesign", "GenerateResult", "GenerateStage", "want_baseline"]


@dataclass(frozen=True)
class GenerateResult:
    """The generated design, from its manifest.

    Attributes
    ----------
    top, verilog, manifest : str
        Top module, Verilog file and manifest file (in the design folder).
    cycles_per_timestep, latency : int
        From the generator's timing (the cocotb bench and the fast path check both).
    cycle_formula : str
    phases : dict of str to int
        Cycles per phase.
    lanes : int
    unrolled : bool
    datapath : str
    verilog_bytes : int
    generation_seconds : float
    ports : dict of str to int
        Data port widths (``s_axis_tdata``, ``m_axis_tdata``).
    generator_version : str
    baseline : BaselineDesign or None
        The multiplier baseline, when the estimates want one.
    digest : str
        Content hash of the design files.
    """

    top: str
    verilog: str
    manifest: str
    cycles_per_timestep: int
    latency: int
    cycle_formula: str
    phases: dict[str, int]
    lanes: int
    unrolled: bool
    datapath: str
    verilog_bytes: int
    generation_seconds: float
    ports: dict[str, int]
    generator_version: str
    baseline: BaselineDesign | None
    digest: str


@dataclass(frozen=True)
class BaselineDesign:
    """The multiplier datapath of the same architecture (``baseline_mult/``)."""

    folder: str
    top: str
    verilog: str
    digest: str
    cycles_per_timestep: int


def want_baseline(cfg) -> bool:
    """Whether the estimates want the multiplier baseline generated and synthesised."""
    return bool(cfg.estimate.baseline and cfg.estimate.targets
                and cfg.hardware.datapath == "shiftadd")


def _baseline(ctx: RunContext, stage_dir, lanes) -> BaselineDesign:
    import hw

    hwc, bname = ctx.cfg.hardware, f"{ctx.cfg.name}_mult"
    with ctx.status(f"hw.generate {bname} (multiplier baseline)"):
        b = hw.generate(flow_model(ctx), out_dir=stage_dir / "baseline_mult", lanes=lanes,
                        unrolled=hwc.unrolled, datapath="mult", name=bname)
    target = ctx.work / "baseline_mult"
    os.replace(b, target)
    bman = Manifest.read(target)
    return BaselineDesign("baseline_mult", bman.top, f"baseline_mult/{bman.verilog}",
                          file_sha256(target / bman.verilog), bman.cycles_per_timestep)


class GenerateStage(StageBase):
    """``hw.generate`` into the design folder (and ``baseline_mult/``)."""

    name, result_type, summary = "generate", GenerateResult, "generate Verilog"

    def inputs(self, ctx: RunContext) -> dict:
        q: QuantizeResult = ctx.results["quantize"]
        check_lanes(ctx.cfg, q.info.hidden_size)
        return {"model": q.hash, "hardware": ctx.cfg.section("hardware"),
                "baseline": want_baseline(ctx.cfg)}

    def run(self, ctx: RunContext) -> StageOutput:
        import hw

        cfg, name, hwc = ctx.cfg, ctx.cfg.name, ctx.cfg.hardware
        lanes = None if hwc.unrolled else (hwc.lanes or 1)
        stage_dir = ctx.work / ".generate"
        shutil.rmtree(stage_dir, ignore_errors=True)
        shutil.rmtree(ctx.work / "baseline_mult", ignore_errors=True)
        try:
            with ctx.status(f"hw.generate {name}"):
                d = hw.generate(flow_model(ctx), out_dir=stage_dir / name, lanes=lanes,
                                unrolled=hwc.unrolled, datapath=hwc.datapath, name=name)
            man = Manifest.read(d)
            files = [man.verilog, man.lint_waiver, "manifest.json"]
            for f in files:
                os.replace(d / f, ctx.work / f)
            baseline = _baseline(ctx, stage_dir, lanes) if want_baseline(cfg) else None
        except ValueError as e:
            raise FlowError(f"{cfg.source}: [hardware]: {one_line(e)}") from None
        finally:
            shutil.rmtree(stage_dir, ignore_errors=True)
        if baseline is not None:
            files.append(baseline.verilog)
        digest = hashlib.sha256(json.dumps({f: file_sha256(ctx.work / f) for f in files},
                                           sort_keys=True).encode()).hexdigest()
        res = GenerateResult(
            top=man.top, verilog=man.verilog, manifest="manifest.json",
            cycles_per_timestep=man.cycles_per_timestep, latency=man.latency,
            cycle_formula=man.cycle_formula, phases=dict(man.cycle_phases),
            lanes=man.config.lanes, unrolled=hwc.unrolled, datapath=hwc.datapath,
            verilog_bytes=man.verilog_bytes, generation_seconds=float(man.generation_seconds),
            ports={p.name: p.width for p in man.ports if p.fields},
            generator_version=man.generator_version, baseline=baseline, digest=digest)
        mode = "unrolled" if hwc.unrolled else f"lanes {lanes}"
        note = (f"{res.verilog} ({res.verilog_bytes // 1024} KiB), {mode}: "
                f"{res.cycles_per_timestep} cycles/timestep")
        return StageOutput(res, tuple(files), note)
