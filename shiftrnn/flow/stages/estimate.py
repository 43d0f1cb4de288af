"""Stage 6, estimate: yosys resources per target (and the multiplier audit), nextpnr fit and
fmax per device, energy beside the baselines, and the optional precision comparison."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from estimate import EnergyEstimate, PnrFigures, SynthFigures
from golden.manifest import Manifest

from ..compare import CompareRow
from ..engine import RunContext, StageBase, StageOutput
from ..errors import FlowError
from .generate import GenerateResult
from .model import one_line
from .quantize import QuantizeResult, flow_data, flow_model
from .simulate import SimulateResult

__all__ = ["CompareSummary", "EstimateResult", "EstimateStage", "Throughput"]


@dataclass(frozen=True)
class Throughput:
    """Timesteps per second of the design at its fmax on one device."""

    fmax_mhz: float
    timesteps_per_s: float


@dataclass(frozen=True)
class CompareSummary:
    """The precision comparison (``compare/``), as the report shows it."""

    rows: tuple[CompareRow, ...]
    target: str
    device: str | None
    lanes: int
    md: str
    json: str
    plots: dict[str, str]


@dataclass(frozen=True)
class EstimateResult:
    """Resources, fit, fmax and energy.

    Attributes
    ----------
    synth : dict
        target -> design (``shiftrnn``, ``mult``: the baseline) -> resources.
    pnr : dict
        device -> design -> fit and fmax.
    multiplier_free : bool
        No ``$mul``/``$macc`` cell and no DSP on any target (False when nothing was synthesised).
    energy : dict of str to EnergyEstimate
        ``shiftrnn``, ``int8-mult``, ``float32`` and (from RTL toggles) ``activity``.
    throughput : dict of str to Throughput
        Per device where the design fits.
    compare : CompareSummary or None
    """

    synth: dict[str, dict[str, SynthFigures]]
    pnr: dict[str, dict[str, PnrFigures]]
    multiplier_free: bool
    energy: dict[str, EnergyEstimate]
    throughput: dict[str, Throughput]
    compare: CompareSummary | None


def _tool_hint(e) -> str:
    errs = [ln.strip() for ln in str(getattr(e, "log_tail", "")).splitlines()
            if "ERROR" in ln.upper()]
    return f": {errs[-1][:160]}" if errs else ""


def _tool_runs(ctx: RunContext, designs: dict) -> tuple[dict, dict]:
    """Every yosys and nextpnr run, ``{(target or device, design): figures}``."""
    import estimate as E

    est = ctx.cfg.estimate
    synth: dict = {}
    pnr: dict = {}

    def do_synth(target, label):
        v, top = designs[label]
        synth[(target, label)] = E.synth_figures(v, top, target, timeout=est.synth_timeout)

    def do_pnr(dev, label):
        v, top = designs[label]
        pnr[(dev, label)] = E.pnr_figures(v, top, dev, timeout=est.pnr_timeout)

    # The first yosys run alone (it may compile yosys's WebAssembly, cached after that);
    # then one chain per design on two workers: the tools are single-threaded.
    jobs = [(do_synth, t, lab) for t in est.targets for lab in designs]
    jobs += [(do_pnr, dev, lab) for dev in est.devices for lab in designs
             if lab == "shiftrnn" or est.baseline_pnr]
    chains = [c for c in ([j for j in jobs[1:] if j[2] == lab] for lab in designs) if c]

    def run_chain(chain):
        for fn, a, lab in chain:
            fn(a, lab)

    with ctx.status(f"estimate: {len(jobs)} yosys/nextpnr runs"):
        run_chain(jobs[:1])
        if chains:
            with ThreadPoolExecutor(max(1, min(len(chains), os.cpu_count() or 1, 2))) as pool:
                for f in [pool.submit(run_chain, c) for c in chains]:
                    f.result()
    return synth, pnr


def _energy(ctx: RunContext, g: GenerateResult) -> dict[str, EnergyEstimate]:
    import estimate as E

    s: SimulateResult = ctx.results["simulate"]
    e = E.design_energy(flow_model(ctx), Manifest.read(ctx.work), label="shiftrnn")
    energy = {"shiftrnn": e["design"], "int8-mult": e["int8-mult"], "float32": e["float32"]}
    if s.cycles and s.timesteps:
        energy["activity"] = E.activity_energy(s.toggles, s.cycles, timesteps=s.timesteps)
    return energy


def _compare(ctx: RunContext, g: GenerateResult) -> tuple[CompareSummary, list[str]]:
    """``shiftrnn compare`` on the model at the design's lanes, into ``compare/``."""
    from ..compare import compare

    c, data = ctx.cfg.compare, flow_data(ctx)
    out = ctx.work / "compare"
    shutil.rmtree(out, ignore_errors=True)
    try:
        with ctx.status(f"compare: {', '.join(c.methods)} vs int8-mult and float32"):
            r = compare(flow_model(ctx), int(g.lanes), out,
                        tokens=data.tokens if data.kind == "lm" else None, target=c.target,
                        progress=False, methods=c.methods, place=c.place,
                        length=int(data.x.shape[1]), force=True, corpus=data.describe)
    except ValueError as e:
        raise FlowError(f"{ctx.cfg.source}: [compare]: {one_line(e)}") from None
    plots = {k: f"compare/{p.name}" for k, p in r.plots.items()}
    res = CompareSummary(r.rows, r.config["target"], r.config["device"], int(g.lanes),
                         "compare/compare.md", "compare/compare.json", plots)
    return res, [res.md, res.json, *plots.values()]


def _note(res: EstimateResult) -> str:
    parts = []
    for t, d in res.synth.items():
        r = d["shiftrnn"]
        parts.append(f"{t} {r.lut} LUT" if r.lut else f"{t} {r.cells_total} cells")
    for dev, d in res.pnr.items():
        p = d["shiftrnn"]
        parts.append(f"{dev} fmax {p.fmax_mhz:.1f} MHz" if p.fits and p.fmax_mhz
                     else f"{dev} {'fits' if p.fits else 'does not fit'}")
    parts.append(f"{res.energy['shiftrnn'].per_timestep_pj:.1f} pJ/timestep")
    if res.compare is not None:
        parts.append(f"compared with {len(res.compare.rows)} variants")
    return ", ".join(parts)


class EstimateStage(StageBase):
    """Synthesis, place and route, energy (and ``[compare]``)."""

    name, result_type, summary = "estimate", EstimateResult, "synthesis, place and route, energy"

    def inputs(self, ctx: RunContext) -> dict:
        g: GenerateResult = ctx.results["generate"]
        q: QuantizeResult = ctx.results["quantize"]
        s: SimulateResult = ctx.results["simulate"]
        return {"design": g.digest, "baseline": g.baseline,
                "estimate": ctx.cfg.section("estimate"), "compare": ctx.cfg.section("compare"),
                "activity": {"toggles": s.toggles, "cycles": s.cycles,
                             "timesteps": s.timesteps},
                "model": q.hash, "data": q.data_digest}

    def run(self, ctx: RunContext) -> StageOutput:
        import estimate as E

        cfg, g = ctx.cfg, ctx.results["generate"]
        designs = {"shiftrnn": (ctx.work / g.verilog, g.top)}
        if g.baseline is not None:
            designs["mult"] = (ctx.work / g.baseline.verilog, g.baseline.top)
        try:
            synth, pnr = _tool_runs(ctx, designs)
            comparison = _compare(ctx, g) if cfg.compare.methods else None
        except E.ToolError as e:
            log = ctx.work / "estimate_error.log"
            log.write_text(str(e) + "\n")
            raise FlowError(f"estimate: {e.tool} failed ({one_line(e.detail)}{_tool_hint(e)}); "
                            f"its log is in {ctx.failed_dir()}/{log.name}; reinstall the tool "
                            f"if it is broken (pip install --force-reinstall {e.tool}) or drop "
                            "the target in [estimate]") from None
        by_target = {t: {lab: synth[(t, lab)] for lab in designs if (t, lab) in synth}
                     for t in cfg.estimate.targets}
        by_device = {d: {lab: pnr[(d, lab)] for lab in designs if (d, lab) in pnr}
                     for d in cfg.estimate.devices}
        ours = [t["shiftrnn"] for t in by_target.values() if "shiftrnn" in t]
        throughput = {dev: Throughput(p.fmax_mhz, p.fmax_mhz * 1e6 / g.cycles_per_timestep)
                      for dev, d in by_device.items()
                      if (p := d.get("shiftrnn")) is not None and p.fits and p.fmax_mhz}
        res = EstimateResult(
            synth=by_target, pnr=by_device,
            multiplier_free=bool(ours) and all(not r.mul_cells and r.dsp == 0 for r in ours),
            energy=_energy(ctx, g), throughput=throughput,
            compare=None if comparison is None else comparison[0])
        files = [] if comparison is None else comparison[1]
        return StageOutput(res, tuple(files), _note(res))
