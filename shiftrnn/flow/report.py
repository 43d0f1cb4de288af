"""Reports of a flow run: ``report.md``, a self-contained ``report.html``, plots, block diagram.

Everything here reads the stages' typed results (:class:`ReportInputs`, the same records
``flow_state.json`` keeps) and the files in the design folder; nothing is recomputed, so the
report shows exactly what the stages measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import golden

from .diagram import DiagramParams, block_diagram
from .document import Doc, fmt, fmt_bpc
from .plots import (
    ENERGY_ORDER,
    plot_accuracy,
    plot_energy,
    plot_resources,
    plot_training,
    resources_of,
)
from .stages.estimate import EstimateResult
from .stages.generate import GenerateResult
from .stages.model import ModelResult
from .stages.quantize import ModelInfo, QuantizeResult
from .stages.simulate import SimulateResult
from .stages.verify import VerifyResult

__all__ = ["REPORT_VERSION", "ReportInputs", "StageLine", "diagram_params", "summary_lines",
           "write_report"]

#: Bump when the report's content changes (the flow then rewrites existing reports).
REPORT_VERSION = 3
IMG_DIR = "img"
#: Place-and-route resources shown in the timing table.
SHOWN_BELS = ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP", "TRELLIS_COMB", "TRELLIS_FF",
              "DP16KD", "MULT18X18D", "SB_IO")


@dataclass(frozen=True)
class StageLine:
    """One row of the report's stage table."""

    name: str
    seconds: float
    finished: str
    note: str


@dataclass(frozen=True)
class ReportInputs:
    """What a report shows: the run's description and every stage's result."""

    name: str
    description: str
    config_source: str
    config_text: str
    shiftrnn_version: str
    model: ModelResult
    quantize: QuantizeResult
    generate: GenerateResult
    verify: VerifyResult
    simulate: SimulateResult
    estimate: EstimateResult
    stages: tuple[StageLine, ...]


def _model_line(info: ModelInfo) -> str:
    return (f"{info.cell} {info.method}, {info.input_kind} input {info.input_size}, hidden "
            f"{info.hidden_size}, output {info.output_size or '-'}, {info.layers} layer(s)")


def _lint(v: VerifyResult, clean: str, warnings: str) -> str:
    if v.lint_warnings is None:
        return "not run"
    return clean if not v.lint_warnings else warnings


def _trim(s: str, n: int) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


# ============================================================================ one-screen summary
def _summary_accuracy(r: ReportInputs) -> list[str]:
    m, q, s = r.model, r.quantize, r.simulate
    if q.metric:
        parts = []
        if m.float_test_bpc is not None:
            parts.append(f"float net {fmt_bpc(m.float_test_bpc)}")
        if m.test_bpc is not None:
            parts.append(f"trainer {fmt_bpc(m.test_bpc)}")
        parts += [f"golden float {fmt_bpc(q.golden_float)}",
                  f"golden int {fmt_bpc(q.golden_int)}", f"RTL {fmt_bpc(s.rtl)}"]
        return [f"  {q.metric:<11} " + " | ".join(parts)]
    return [f"  outputs     integer vs float path max |error| {q.max_abs_err:.4g}; RTL "
            "bit-exact vs integer"]


def _summary_estimate(e: EstimateResult) -> list[str]:
    out = []
    for t, d in e.synth.items():
        r, b = d["shiftrnn"], d.get("mult")
        if t == "generic":
            txt = f"{r.cells_total} cells, {r.ff} FF"
            txt += f"   (multiplier baseline {b.cells_total} cells)" if b else ""
        else:
            txt = f"{r.lut} LUT, {r.ff} FF, {r.carry} carry, {r.bram} BRAM, {r.dsp} DSP"
            txt += f"   (baseline {b.lut} LUT, {b.dsp} DSP)" if b else ""
        out.append(f"  {t:<11} {txt}")
    if e.synth:
        free = "yes: no $mul/$macc cells, no DSP" if e.multiplier_free else "NO"
        out.append(f"  mult-free   {free}")
    for dev, d in e.pnr.items():
        p = d["shiftrnn"]
        if p.fits and p.fmax_mhz:
            txt = (f"fits, fmax {p.fmax_mhz:.1f} MHz -> "
                   f"{e.throughput[dev].timesteps_per_s:,.0f} timesteps/s")
        else:
            txt = _trim(p.message, 64)
        out.append(f"  {dev:<11} {txt}")
    ours = e.energy["shiftrnn"].per_timestep_pj
    base = ", ".join(f"{k} {e.energy[k].per_timestep_pj:.1f} pJ "
                     f"({e.energy[k].per_timestep_pj / ours:.0f}x)"
                     for k in ("int8-mult", "float32") if k in e.energy)
    out.append(f"  energy      {ours:.1f} pJ/timestep (op counts, 45 nm); {base}")
    return out


def summary_lines(r: ReportInputs, folder: Path, ran: list, skipped: list, seconds: float
                  ) -> list[str]:
    """The end-of-run summary: model, accuracy, cycles, resources, fmax, energy, report path."""
    info, g, v, s = r.quantize.info, r.generate, r.verify, r.simulate
    mode = "unrolled" if g.unrolled else f"lanes {g.lanes}"
    return [
        "=" * 78,
        f"shiftrnn flow {r.name}: done in {seconds:.1f} s (ran: {', '.join(ran) or 'nothing'}; "
        f"skipped as unchanged: {', '.join(skipped) or 'nothing'})",
        f"  model       {_model_line(info)}, {info.nonlinearity}",
        *_summary_accuracy(r),
        f"  data        {r.quantize.data}",
        f"  hardware    {g.verilog}: {g.datapath} {mode}, {g.cycles_per_timestep} "
        f"cycles/timestep, latency {g.latency}",
        f"  verified    cocotb {'PASS' if v.passed else '?'} ({v.outputs} outputs bit-exact), "
        f"fast path {'bit-exact' if s.golden_equal else '?'} on {s.timesteps} timesteps, lint "
        f"{_lint(v, 'clean', 'warnings')}",
        *_summary_estimate(r.estimate),
        f"  report      {folder / 'report.html'}  (and report.md)",
        "=" * 78,
    ]


# ==================================================================================== sections
def diagram_params(info: ModelInfo, g: GenerateResult) -> DiagramParams:
    """Parameters of the block diagram from a flow's model info and generate result."""
    return DiagramParams(
        cell=info.cell, method=info.method, hidden=info.hidden_size,
        input_kind=info.input_kind, input_size=info.input_size, output=info.output_size,
        layers=info.layers, lanes=g.lanes, unrolled=g.unrolled, datapath=g.datapath,
        nonlinearity=info.nonlinearity, formats=info.formats, cycles=g.cycles_per_timestep)


def _head(d: Doc, r: ReportInputs) -> None:
    m, g, v, e = r.model, r.generate, r.verify, r.estimate
    d.h(1, f"shiftrnn report: {r.name}")
    if r.description:
        d.p(r.description)
    d.p(f"Flow configuration `{r.config_source}`; shiftrnn {r.shiftrnn_version}, "
        f"{g.generator_version}.")
    links = [f"[{g.verilog}]({g.verilog}) (Verilog, top `{g.top}`)",
             "[manifest.json](manifest.json) (ports, formats, cycle formula)",
             "[model.npz](model.npz) (the quantized model: `shiftrnn info model.npz`)"]
    if v.waves:
        links.append(f"[{v.waves}]({v.waves}) (VCD waveform of the cocotb `timing` test: "
                     f"`gtkwave {v.waves}`)")
    if g.baseline is not None:
        links.append(f"[{g.baseline.verilog}]({g.baseline.verilog}) (multiplier baseline)")
    if e.compare is not None:
        links.append(f"[{e.compare.md}]({e.compare.md}) (precision comparison)")
    if m.source == "train":
        links.append("[train_log.json](train_log.json) (training log)")
    links.append("[sim_outputs.npz](sim_outputs.npz) (RTL outputs on the data) and "
                 "[flow_state.json](flow_state.json) (every number below)")
    d.bullets(links)


def _summary(d: Doc, r: ReportInputs) -> None:
    m, q, g, s, e = r.model, r.quantize, r.generate, r.simulate, r.estimate
    d.h(2, "Summary")
    rows = [["model", _model_line(q.info)]]
    if q.metric:
        fl = (f"float network {fmt_bpc(m.float_test_bpc)}, " if m.float_test_bpc is not None
              else "")
        rows.append([q.metric, f"{fl}golden float {fmt_bpc(q.golden_float)}, golden integer "
                     f"{fmt_bpc(q.golden_int)}, RTL {fmt_bpc(s.rtl)}"])
    mode = "unrolled" if g.unrolled else f"{g.lanes} lane(s)"
    rows.append(["hardware", f"{g.datapath} datapath, {mode}, {g.cycles_per_timestep} "
                 "cycles/timestep"])
    rows.append(["verification", f"cocotb bench PASS ({r.verify.outputs} outputs), fast path "
                 f"bit-exact on {s.timesteps} timesteps"])
    for dev, t in e.throughput.items():
        rows.append([f"fmax ({dev})", f"{t.fmax_mhz:.1f} MHz, {t.timesteps_per_s:,.0f} "
                     "timesteps/s"])
    ours = e.energy["shiftrnn"].per_timestep_pj
    rows.append(["energy", f"{ours:.2f} pJ/timestep; " + ", ".join(
        f"{k} {e.energy[k].per_timestep_pj / ours:.1f}x more" for k in ("int8-mult", "float32")
        if k in e.energy)])
    d.table(["", "result"], rows, "ll")


def _model(d: Doc, r: ReportInputs, img: Path, files: list[str]) -> None:
    m, q, info = r.model, r.quantize, r.quantize.info
    d.h(2, "Model")
    params = f" {info.method_params}" if info.method_params else ""
    d.table(["property", "value"], [
        ["cell", f"{info.cell} ({info.layers} layer(s))"],
        ["weights", f"{info.method}{params}, {info.weights:,} weights, "
         f"{info.nonzero_weights:,} nonzero"],
        ["input", f"{info.input_kind}, size {info.input_size}"],
        ["hidden / output", f"{info.hidden_size} / {info.output_size or '-'}"],
        ["nonlinearity", info.nonlinearity],
        ["formats", ", ".join(f"{k} {f}" for k, f in info.formats.items())],
        ["scales", f"one per {info.scale_granularity}, {info.scale_terms} CSD term(s); "
                   f"biases {info.bias_mode}"],
        ["model hash", f"`{q.hash[:16]}...`"],
    ], "ll")
    if m.source == "train":
        d.p(f"Trained by `shiftrnn` (quantization-aware, {m.corpus}); the exported model is "
            f"epoch {m.selected_epoch} (best validation BPC).")
        if plot_training(m, img / "training.png"):
            files.append(f"{IMG_DIR}/training.png")
            d.img(f"{IMG_DIR}/training.png", "Training and validation bits per character")
    else:
        d.p(f"Source: {m.source} `{m.path}`.")


def _accuracy(d: Doc, r: ReportInputs, img: Path, files: list[str]) -> None:
    m, q, s = r.model, r.quantize, r.simulate
    d.h(2, "Accuracy")
    d.p(f"Data: {q.data}.")
    equal = f"**{'yes' if s.golden_equal else 'NO'}**"
    if not q.metric:
        d.p(f"No labels or next-token targets: the integer path differs from the float path "
            f"by at most {fmt(q.max_abs_err)} (mean {fmt(q.mean_abs_err)}); the RTL equals the "
            f"integer path bit for bit: {equal}.")
        return
    acc = []
    if m.float_test_bpc is not None:
        acts = ("activations narrowed to the Fixed formats" if m.fake_quant else
                "float32 activations")
        acc.append(("float network (unquantized, same budget)", m.float_test_bpc,
                    f"PyTorch, float32 weights, {acts}"))
    if m.test_bpc is not None:
        acc.append(("trainer (quantized weights)", m.test_bpc,
                    "PyTorch evaluation, deterministic quantized weights"))
    acc += [("golden float path", q.golden_float, "quantized weights, float activations (numpy)"),
            ("golden integer path", q.golden_int,
             "bit-accurate integer spec = what the hardware computes"),
            ("RTL (Verilator)", s.rtl,
             "the generated Verilog on the fast path, from its own logits")]
    ref = q.golden_float
    d.table(["evaluation", q.metric, "vs golden float", "what"],
            [[k, fmt_bpc(x), "n/a" if x is None or ref is None else f"{x - ref:+.4f}", w]
             for k, x, w in acc], "lrrl")
    d.p(f"RTL outputs equal the golden integer path bit for bit: {equal} ({s.timesteps:,} "
        "timesteps); RTL and integer-path numbers are therefore identical by construction.")
    if plot_accuracy([(k, x) for k, x, _ in acc], q.metric, img / "accuracy.png"):
        files.append(f"{IMG_DIR}/accuracy.png")
        d.img(f"{IMG_DIR}/accuracy.png", f"{q.metric}: float vs quantized vs integer vs RTL")


def _hardware(d: Doc, r: ReportInputs, img: Path, files: list[str]) -> None:
    g, v, s = r.generate, r.verify, r.simulate
    d.h(2, "Hardware")
    block_diagram(diagram_params(r.quantize.info, g), img / "block_diagram.png")
    files.append(f"{IMG_DIR}/block_diagram.png")
    d.img(f"{IMG_DIR}/block_diagram.png", "Block diagram of the generated datapath")
    mode = "unrolled" if g.unrolled else f"{g.lanes} lane(s)"
    d.table(["property", "value"], [
        ["top module", f"`{g.top}` in [{g.verilog}]({g.verilog}), {g.verilog_bytes:,} bytes"],
        ["datapath", f"{g.datapath}, {mode}"],
        ["ports", f"s_axis_tdata {g.ports.get('s_axis_tdata')} bits, m_axis_tdata "
         f"{g.ports.get('m_axis_tdata')} bits (AXI4-Stream style)"],
        ["cycles per timestep", f"{g.cycles_per_timestep} (manifest formula), "
         f"{fmt(v.cycles_per_timestep)} (cocotb), {fmt(s.cycles_per_timestep)} (fast path)"],
        ["latency", f"{g.latency} cycles (manifest), {fmt(v.latency)} (cocotb)"],
        ["cycle formula", f"`{g.cycle_formula}`"],
        ["phases", ", ".join(f"{k} {n}" for k, n in g.phases.items())],
    ], "ll")
    lint = _lint(v, "clean (-Wall, generator waivers)",
                 f"{len(v.lint_warnings or ())} warnings")
    d.p(f"Verification: Verilator lint {lint}; cocotb bench tests {', '.join(v.tests)}: PASS, "
        f"{v.outputs} outputs compared exactly with golden (seed {v.seed}, {v.sequences} random "
        f"sequences up to {v.length} steps, random idle cycles and backpressure). Fast path: "
        f"{s.timesteps:,} timesteps, {s.cycles:,} cycles, simulated at "
        f"{s.sim_cycles_per_s:,.0f} cycles/s.")


def _resources(d: Doc, r: ReportInputs, img: Path, files: list[str]) -> None:
    e = r.estimate
    if not e.synth:
        return
    d.h(2, "Resources")
    rows = []
    for t, dd in e.synth.items():
        ours, base = dd["shiftrnn"], dd.get("mult")
        for k, lab in resources_of(t):
            a, b = getattr(ours, k), None if base is None else getattr(base, k)
            ratio = f"{b / a:.2f}x" if a and b is not None else "n/a"
            rows.append([t, lab, a, "n/a" if b is None else b, ratio])
        rows.append([t, "$mul/$macc cells", len(ours.mul_cells),
                     "n/a" if base is None else len(base.mul_cells), ""])
    d.table(["target", "resource", "shiftrnn", "multiplier baseline", "baseline / ours"],
            rows, "llrrr")
    d.p("Multiplier-free: **" + ("yes" if e.multiplier_free else "NO") + "** "
        "(no `$mul`/`$macc` cell after yosys's coarse pass and no DSP block on any target). "
        "The baseline is the same architecture with `*` on the weights and gate products.")
    if plot_resources(e.synth, img / "resources.png"):
        files.append(f"{IMG_DIR}/resources.png")
        d.img(f"{IMG_DIR}/resources.png", "Resources per target, shiftrnn vs multiplier "
              "baseline")


def _timing(d: Doc, r: ReportInputs) -> None:
    if not r.estimate.pnr:
        return
    d.h(2, "Timing: place and route")
    rows = []
    cpt = r.generate.cycles_per_timestep or 1
    for dev, dd in r.estimate.pnr.items():
        for label, p in dd.items():
            util = ", ".join(f"{k} {u['used']}/{u['available']}"
                             for k, u in p.utilisation.items() if u["used"] and k in SHOWN_BELS)
            fm = p.fmax_mhz if p.fits else None
            rows.append([dev, "shiftrnn" if label == "shiftrnn" else "multiplier baseline",
                         "yes" if p.fits else "no", "n/a" if fm is None else f"{fm:.1f}",
                         "n/a" if fm is None else f"{fm * 1e6 / cpt:,.0f}",
                         "n/a" if fm is None else f"{cpt / fm * 1e3:,.0f}",
                         util or _trim(p.message, 80)])
    d.table(["device", "design", "fits", "fmax MHz", "timesteps/s", "ns/timestep",
             "utilisation"], rows, "llrrrrl")
    d.p("nextpnr with a fixed seed, the core wrapped in a three-pin I/O shell (the AXI "
        "ports are wider than the package). fmax is nextpnr's estimate of the slowest "
        "clock path.")


def _energy(d: Doc, r: ReportInputs, img: Path, files: list[str]) -> None:
    en = r.estimate.energy
    d.h(2, "Energy")
    T = r.simulate.length or 1
    ours = en["shiftrnn"].per_timestep_pj
    names = {"shiftrnn": "shiftrnn, operation counts",
             "activity": "shiftrnn, RTL toggles (relative)",
             "int8-mult": "int8 multiplier datapath", "float32": "float32 datapath"}
    rows = []
    for k in (k for k in ENERGY_ORDER if k in en):
        x = en[k].per_timestep_pj
        rows.append([names[k], f"{x:.2f}", f"{x * T:,.1f}", f"{x / ours:.2f}x",
                     ", ".join(f"{c} {val:.2f}" for c, val in en[k].breakdown.items() if val)])
    d.table(["design", "pJ/timestep", f"pJ/sequence ({T} steps)", "vs shiftrnn",
             "breakdown, pJ"], rows, "lrrrl")
    d.p("Operation counts from the golden model priced with Horowitz (ISSCC 2014, 45 nm): "
        "adds by width, shift-and-add gate products, nonlinearities, weight memory reads "
        "(0 when unrolled). The baselines do the same work with a multiply per weight. The "
        "activity row counts register and port toggles in the RTL simulation, calibrated to "
        "the same table; compare it between designs, not as an absolute number. See "
        "docs/estimates.md.")
    if plot_energy(en, img / "energy.png"):
        files.append(f"{IMG_DIR}/energy.png")
        d.img(f"{IMG_DIR}/energy.png", "Energy per timestep beside the baselines")


def _comparison(d: Doc, r: ReportInputs, folder: Path) -> None:
    cmp = r.estimate.compare
    if cmp is None:
        return
    d.h(2, "Precision comparison")
    where = f"`{cmp.target}`" + (f", place and route on `{cmp.device}`" if cmp.device
                                 else " (area only)")
    d.p(f"The same network at {cmp.lanes} lane(s) as float32 (energy model only), as "
        f"an int8-multiplier design and with each low-precision method (re-quantized from "
        f"the model's effective weights; `shiftrnn compare`), synthesised for {where}. "
        f"Details: [{cmp.md}]({cmp.md}).")
    rows = []
    area = "cells" if cmp.target == "generic" else "lut"
    for row in cmp.rows:
        if row.energy_pj is None:
            rows.append([row.method, "", "", "", "", "", "", row.note or ""])
            continue
        fm, a = row.fmax_mhz, getattr(row, area)
        rows.append([row.method, row.datapath or "-", "-" if a is None else f"{a:,}",
                     "-" if row.dsp is None else f"{row.dsp:,}",
                     "-" if fm is None else f"{fm:.1f}", f"{row.energy_pj:.1f}",
                     fmt_bpc(row.bpc), row.note or ""])
    d.table(["method", "datapath", "cells" if area == "cells" else "LUT", "DSP",
             "fmax MHz", "pJ/timestep", "BPC", "note"], rows, "llrrrrrl")
    for k, rel in cmp.plots.items():
        if (folder / rel).is_file():
            d.img(rel, f"Precision comparison: {k.replace('_', ' ')}")


def write_report(folder, r: ReportInputs) -> list[str]:
    """Write ``report.md``, ``report.html`` and the PNGs into a design folder.

    Parameters
    ----------
    folder : path-like
        The design folder (``rtl_out/NAME`` or the flow's working copy).
    r : ReportInputs
        The stage results.

    Returns
    -------
    list of str
        The files written, relative to ``folder``.
    """
    folder = Path(folder)
    img = folder / IMG_DIR
    files: list[str] = []
    d = Doc()
    _head(d, r)
    _summary(d, r)
    _model(d, r, img, files)
    _accuracy(d, r, img, files)
    _hardware(d, r, img, files)
    _resources(d, r, img, files)
    _timing(d, r)
    _energy(d, r, img, files)
    _comparison(d, r, folder)
    d.h(2, "Flow stages")
    d.table(["stage", "seconds", "finished", "result"],
            [[s.name, f"{s.seconds:.1f}", s.finished, s.note] for s in r.stages], "lrll")
    if r.config_text:
        d.h(2, "Configuration")
        d.code(r.config_text, "toml")
    golden.atomic_write_bytes(folder / "report.md", d.markdown().encode())
    golden.atomic_write_bytes(folder / "report.html",
                              d.html(f"shiftrnn report: {r.name}", folder).encode())
    return ["report.md", "report.html"] + files
