"""Reports of a flow run: ``report.md``, a self-contained ``report.html``, plots, block diagram.

Everything here reads the flow's recorded state (``flow_state.json``: every number a stage
produced) and the files in the design folder; nothing is recomputed, so the report shows
exactly what the stages measured. Plots are matplotlib figures rendered off-screen (Agg, no
pyplot state); the HTML embeds them as base64 PNGs, so it opens offline and can be mailed.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

__all__ = ["REPORT_VERSION", "block_diagram", "diagram_params", "summary_lines",
           "write_report"]

#: Bump when the report's content changes (the flow then rewrites existing reports).
REPORT_VERSION = 3
IMG_DIR = "img"

_COLORS = {"shiftrnn": "#2a7ab0", "mult": "#d08a2c", "int8-mult": "#d08a2c",
           "float32": "#b04a4a", "activity": "#5aa05a", "float": "#7f7f7f"}


# ================================================================================ formatting
def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:  # NaN
            return "n/a"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return str(v)


def _bpc(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _stage(state: dict, name: str) -> dict:
    return state.get("stages", {}).get(name, {}).get("result", {})


# ============================================================================ one-screen summary
def summary_lines(state: dict, folder: Path, ran: list, skipped: list, seconds: float
                  ) -> list[str]:
    """The end-of-run summary: model, accuracy, cycles, resources, fmax, energy, report path."""
    m, q = _stage(state, "model"), _stage(state, "quantize")
    g, v, s = _stage(state, "generate"), _stage(state, "verify"), _stage(state, "simulate")
    e = _stage(state, "estimate")
    info = q.get("info", {})
    out = [f"{'=' * 78}", f"shiftrnn flow {state.get('name')}: done in {seconds:.1f} s "
           f"(ran: {', '.join(ran) or 'nothing'}; skipped as unchanged: "
           f"{', '.join(skipped) or 'nothing'})"]
    model = (f"{info.get('cell')} {info.get('method')}, {info.get('input_kind')} input "
             f"{info.get('input_size')}, hidden {info.get('hidden_size')}, output "
             f"{info.get('output_size') or '-'}, {info.get('layers')} layer(s), "
             f"{info.get('nonlinearity')}")
    out.append(f"  model       {model}")
    if q.get("metric"):
        parts = []
        if m.get("float_test_bpc") is not None:
            parts.append(f"float net {_bpc(m['float_test_bpc'])}")
        if m.get("test_bpc") is not None:
            parts.append(f"trainer {_bpc(m['test_bpc'])}")
        parts += [f"golden float {_bpc(q.get('float'))}", f"golden int {_bpc(q.get('int'))}",
                  f"RTL {_bpc(s.get('rtl'))}"]
        out.append(f"  {q['metric']:<11} " + " | ".join(parts))
    elif "max_abs_err" in q:
        out.append(f"  outputs     integer vs float path max |error| {q['max_abs_err']:.4g}; "
                   "RTL bit-exact vs integer")
    out.append(f"  data        {q.get('data')}")
    mode = "unrolled" if g.get("unrolled") else f"lanes {g.get('lanes')}"
    out.append(f"  hardware    {g.get('verilog')}: {g.get('datapath')} {mode}, "
               f"{g.get('cycles_per_timestep')} cycles/timestep, latency {g.get('latency')}")
    out.append(f"  verified    cocotb {'PASS' if v.get('passed') else '?'} "
               f"({v.get('outputs')} outputs bit-exact), fast path "
               f"{'bit-exact' if s.get('golden_equal') else '?'} on {s.get('timesteps')} "
               f"timesteps, lint {'clean' if not v.get('lint_warnings') else 'warnings'}")
    for t, d in e.get("synth", {}).items():
        r, b = d.get("shiftrnn", {}), d.get("mult")
        if t == "generic":
            txt = f"{r.get('total_cells')} cells, {r.get('ff')} FF"
            if b:
                txt += f"   (multiplier baseline {b['total_cells']} cells)"
        else:
            txt = (f"{r.get('lut')} LUT, {r.get('ff')} FF, {r.get('carry')} carry, "
                   f"{r.get('bram')} BRAM, {r.get('dsp')} DSP")
            if b:
                txt += f"   (baseline {b['lut']} LUT, {b['dsp']} DSP)"
        out.append(f"  {t:<11} {txt}")
    if e.get("synth"):
        free = "yes: no $mul/$macc cells, no DSP" if e.get("multiplier_free") else "NO"
        out.append(f"  mult-free   {free}")
    for dev, d in e.get("pnr", {}).items():
        p = d.get("shiftrnn", {})
        if p.get("fits") and p.get("fmax_mhz"):
            tps = e.get("throughput", {}).get(dev, {}).get("timesteps_per_s", 0)
            txt = f"fits, fmax {p['fmax_mhz']:.1f} MHz -> {tps:,.0f} timesteps/s"
        else:
            txt = _trim(p.get("message", "?"), 64)
        out.append(f"  {dev:<11} {txt}")
    en = e.get("energy", {})
    if en:
        ours = en["shiftrnn"]["per_timestep_pj"]
        base = ", ".join(f"{k} {en[k]['per_timestep_pj']:.1f} pJ "
                         f"({en[k]['per_timestep_pj'] / ours:.0f}x)"
                         for k in ("int8-mult", "float32") if k in en)
        out.append(f"  energy      {ours:.1f} pJ/timestep (op counts, 45 nm); {base}")
    out.append(f"  report      {folder / 'report.html'}  (and report.md)")
    out.append("=" * 78)
    return out


def _trim(s: str, n: int) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


# ================================================================================== the blocks
class _Doc:
    """A document as blocks, rendered to Markdown and to HTML."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, head: list[str], rows: list[list], align: str | None = None):
        self.blocks.append(("table", head, [[_fmt(c) if not isinstance(c, str) else c
                                             for c in r] for r in rows], align))

    def img(self, rel: str, alt: str):
        self.blocks.append(("img", rel, alt))

    def code(self, text: str, lang: str = ""):
        self.blocks.append(("code", text, lang))

    def bullets(self, items: list[str]):
        self.blocks.append(("ul", items))

    # ------------------------------------------------------------------ markdown
    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                head, rows, align = b[1], b[2], b[3] or ("l" + "r" * (len(b[1]) - 1))
                out.append("| " + " | ".join(head) + " |")
                out.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
                out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |"
                        for r in rows]
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})")
            elif b[0] == "code":
                out.append(f"```{b[2]}\n{b[1].rstrip()}\n```")
            elif b[0] == "ul":
                out += [f"- {i}" for i in b[1]]
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    # ---------------------------------------------------------------------- html
    def html(self, title: str, folder: Path) -> str:
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{_inline(b[1])}</p>")
            elif b[0] == "table":
                head, rows, align = b[1], b[2], b[3] or ("l" + "r" * (len(b[1]) - 1))
                cls = [' class="r"' if a == "r" else "" for a in align]
                t = ["<table>", "<tr>" + "".join(f"<th{c}>{_inline(h)}</th>"
                                                 for h, c in zip(head, cls, strict=True))
                     + "</tr>"]
                t += ["<tr>" + "".join(f"<td{c}>{_inline(str(x))}</td>"
                                       for x, c in zip(r, cls, strict=True)) + "</tr>"
                      for r in rows]
                body.append("\n".join(t) + "\n</table>")
            elif b[0] == "img":
                data = base64.b64encode((folder / b[1]).read_bytes()).decode()
                body.append(f'<figure><img alt="{html.escape(b[2])}" '
                            f'src="data:image/png;base64,{data}"><figcaption>'
                            f"{html.escape(b[2])}</figcaption></figure>")
            elif b[0] == "code":
                body.append(f"<pre><code>{html.escape(b[1])}</code></pre>")
            elif b[0] == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
        return _HTML.format(title=html.escape(title), body="\n".join(body))


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 62em;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }}
h1 {{ border-bottom: 2px solid #2a7ab0; padding-bottom: .2em; }}
h2 {{ border-bottom: 1px solid #ccc; padding-bottom: .15em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; margin: .6em 0; }}
th, td {{ border: 1px solid #ccc; padding: .25em .6em; }}
th {{ background: #eef3f7; }}
td.r, th.r {{ text-align: right; font-variant-numeric: tabular-nums; }}
code {{ background: #f3f3f3; padding: 0 .2em; }}
pre {{ background: #f6f6f6; padding: .7em; overflow-x: auto; }}
figure {{ margin: 1em 0; }} figure img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ color: #555; font-size: .9em; }}
</style></head><body>
{body}
</body></html>
"""


def _inline(text: str) -> str:
    """Markdown-lite inline markup to HTML: `code`, **bold**, [text](link)."""
    out = html.escape(str(text), quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)
    return out


# ====================================================================================== plots
def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})


def _plot_training(m: dict, path: Path) -> bool:
    rows = m.get("epochs") or []
    if not rows:
        return False
    fig = _figure(6.4, 3.2)
    ax = fig.add_subplot()
    ep = [r["epoch"] for r in rows]
    ax.plot(ep, [r.get("train_bpc") for r in rows], label="train (quantized, running)",
            color=_COLORS["shiftrnn"])
    val = [(r["epoch"], r["valid_bpc"]) for r in rows if r.get("valid_bpc") is not None]
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="valid", color=_COLORS["mult"])
    fl = m.get("float_log") or []
    fv = [(r["epoch"], r["valid_bpc"]) for r in fl if r.get("valid_bpc") is not None]
    if fv:
        ax.plot(*zip(*fv, strict=True), "s--", label="valid, float network",
                color=_COLORS["float"])
    sel = m.get("selected_epoch")
    if sel:
        ax.axvline(sel, color="#999", lw=0.8, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per character")
    ax.set_title("Quantization-aware training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def _plot_accuracy(rows: list[tuple[str, float]], metric: str, path: Path) -> bool:
    rows = [(k, v) for k, v in rows if v is not None]
    if not rows:
        return False
    fig = _figure(6.4, 2.8)
    ax = fig.add_subplot()
    names = [k for k, _ in rows]
    vals = [v for _, v in rows]
    colors = [_COLORS["float"] if "float net" in k else _COLORS["activity"] if "RTL" in k
              else _COLORS["shiftrnn"] for k in names]
    bars = ax.barh(range(len(vals)), vals, color=colors)
    ax.set_yticks(range(len(vals)), names, fontsize=8)
    ax.invert_yaxis()
    for b, v in zip(bars, vals, strict=True):
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:.4f}", va="center",
                fontsize=8)
    ax.set_xlim(0, max(vals) * 1.18)
    ax.set_xlabel(metric + (" (lower is better)" if metric == "BPC" else ""))
    ax.set_title("Accuracy: float, quantized, integer golden, RTL", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)
    return True


def _plot_resources(synth: dict, path: Path) -> bool:
    if not synth:
        return False
    targets = list(synth)
    fig = _figure(3.2 * len(targets) + 0.4, 3.0)
    axes = fig.subplots(1, len(targets), squeeze=False)[0]
    for ax, t in zip(axes, targets, strict=True):
        d = synth[t]
        keys = (["total_cells", "ff"] if t == "generic" else
                ["lut", "ff", "carry", "bram", "dsp"])
        labels = ["cells", "FF"] if t == "generic" else ["LUT", "FF", "carry", "BRAM", "DSP"]
        designs = [k for k in ("shiftrnn", "mult") if k in d]
        width = 0.8 / len(designs)
        for i, des in enumerate(designs):
            xs = [j + (i - (len(designs) - 1) / 2) * width for j in range(len(keys))]
            vals = [d[des].get(k, 0) for k in keys]
            bars = ax.bar(xs, vals, width, color=_COLORS[des],
                          label="shiftrnn (shift-add)" if des == "shiftrnn" else
                          "multiplier baseline")
            ax.bar_label(bars, [f"{v:,}" for v in vals], fontsize=6, rotation=90, padding=2)
        ax.margins(y=0.25)
        ax.set_xticks(range(len(keys)), labels, fontsize=8)
        ax.set_title(t, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Resources after synthesis (yosys)", fontsize=10)
    _save(fig, path)
    return True


def _plot_energy(energy: dict, path: Path) -> bool:
    if not energy:
        return False
    order = [k for k in ("shiftrnn", "activity", "int8-mult", "float32") if k in energy]
    names = {"shiftrnn": "shiftrnn (op counts)", "activity": "shiftrnn (RTL toggles, relative)",
             "int8-mult": "int8 multiplier baseline", "float32": "float32 baseline"}
    vals = [energy[k]["per_timestep_pj"] for k in order]
    fig = _figure(6.4, 2.6)
    ax = fig.add_subplot()
    bars = ax.barh(range(len(order)), vals, color=[_COLORS[k] for k in order])
    ax.bar_label(bars, [f" {v:,.1f} pJ" for v in vals], fontsize=8)
    ax.set_yticks(range(len(order)), [names[k] for k in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min(vals) / 3, max(vals) * 20)
    ax.set_xlabel("energy per timestep, pJ (Horowitz 45 nm; log scale)")
    ax.set_title("Energy per timestep beside the baselines", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)
    return True


# ============================================================================== block diagram
def diagram_params(info: dict, gen: dict) -> dict:
    """Parameters of :func:`block_diagram` from a flow's model info and generate result."""
    return {"cell": info.get("cell", "gru"), "method": info.get("method", "ternary"),
            "hidden": info.get("hidden_size", 32), "input_kind": info.get("input_kind", "token"),
            "input_size": info.get("input_size", 50), "output": info.get("output_size"),
            "layers": info.get("layers", 1), "lanes": gen.get("lanes", 1),
            "unrolled": bool(gen.get("unrolled")), "datapath": gen.get("datapath", "shiftadd"),
            "nonlinearity": info.get("nonlinearity", "hard"),
            "formats": info.get("formats", {}),
            "cycles": gen.get("cycles_per_timestep")}


def block_diagram(p: dict, path) -> Path:
    """Draw the datapath of a generated design (a PNG).

    Parameters
    ----------
    p : dict
        ``cell``, ``method``, ``hidden``, ``input_kind``, ``input_size``, ``output`` (None: no
        head), ``layers``, ``lanes``, ``unrolled``, ``datapath``, ``nonlinearity``, ``formats``
        (name -> "Fixed" text), ``cycles`` (per timestep, optional); see :func:`diagram_params`.
    path : path-like
        The PNG to write.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    gates = {"rnn": 1, "gru": 3, "lstm": 4}[p["cell"]]
    gate_names = {"rnn": "h", "gru": "r z n", "lstm": "i f g o"}[p["cell"]]
    H, E, unrolled = p["hidden"], p["lanes"], p["unrolled"]
    mult = p.get("datapath") == "mult"
    fmt = p.get("formats") or {}
    fig = _figure(11.0, 6.0)
    ax = fig.add_subplot()
    ax.set_xlim(0, 110)
    ax.set_ylim(0, 60)
    ax.axis("off")

    def box(x, y, w, h, title, lines=(), color="#e8f1f8", edge="#2a7ab0", stack=0):
        for k in range(stack, 0, -1):
            ax.add_patch(FancyBboxPatch((x + k * 0.8, y - k * 0.8), w, h,
                                        boxstyle="round,pad=0.3", fc=color, ec=edge, lw=0.8))
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.3", fc=color, ec=edge,
                                    lw=1.3))
        ax.text(x + w / 2, y + h - 1.2, title, ha="center", va="top", fontsize=8.5,
                weight="bold")
        for i, ln in enumerate(lines):
            ax.text(x + w / 2, y + h - 4.0 - i * 2.4, ln, ha="center", va="top", fontsize=7.2)

    def arrow(a, b, text="", color="#333", rad=0.0, ls="-", conn=None, at=None):
        style = conn or f"arc3,rad={rad}"
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=11, color=color,
                                     lw=1.2, ls=ls, connectionstyle=style))
        if text:
            tx, ty = at or ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 1.0)
            ax.text(tx, ty, text, ha="center", fontsize=6.8, color="#444")

    title = (f"{p['cell'].upper()}, {p['layers']} layer(s), {p['method']} weights, hidden {H}, "
             f"{'unrolled' if unrolled else f'{E} lane(s) (folded)'}, "
             f"{'multiplier baseline' if mult else 'multiplier-free shift-add'} datapath")
    if p.get("cycles"):
        title += f": {p['cycles']} cycles/timestep"
    ax.text(55, 59.5, title, ha="center", va="top", fontsize=10, weight="bold")

    # input side
    tok = p["input_kind"] == "token"
    box(1, 26, 13, 14, "s_axis", ["AXI4-Stream in", "tdata, tvalid/tready", "tuser = first",
                                  "tlast = last"], color="#f3f3f3", edge="#666")
    box(18, 26, 13, 14, "input reg", [f"token 0..{p['input_size'] - 1}" if tok else
                                      f"x[{p['input_size']}] {fmt.get('x', '')}",
                                      "one-hot = column" if tok else "Fixed vector",
                                      "select (no adds)" if tok else ""])
    arrow((14.6, 33), (17.6, 33))
    # weights
    if unrolled:
        box(35, 45, 30, 8, "weights as wiring", ["constant multiplies" if mult else
                                                 "constant shift-add trees; zero weights "
                                                 "vanish"], color="#fdf3e3", edge="#d08a2c")
    else:
        box(35, 45, 30, 8, "weight-code ROMs (BRAM)", ["W_ih, W_hh, head: a CSD word "
                                                       "(sign, shift) per weight"],
            color="#fdf3e3", edge="#d08a2c")
    # MAC lanes
    term = "v * code (DSP)" if mult else ("+v, -v or skip" if p["method"] in ("binary", "ternary")
                                          else "+/-(v << k) per CSD digit")
    n_acc = 2 * gates * (H if unrolled else E)
    box(35, 22, 30, 17, f"MAC: {'all ' + str(H) + ' units' if unrolled else f'{E} lane(s)'}",
        [f"gates {gate_names}: W_ih x and W_hh h", f"term = {term}",
         f"{n_acc} accumulators (exact widths)",
         "one cycle per matrix" if unrolled else "one column per cycle"],
        stack=min(2, (H if unrolled else E) - 1))
    arrow((31.6, 33), (34.6, 31), "x")
    arrow((50, 44.6), (50, 39.6), "" if unrolled else "codes", at=(53.5, 41.5))
    # elementwise
    nl = p.get("nonlinearity", "hard").split()[0]
    prod = "gate products: a * b" if mult else "gate products: shift-and-add"
    box(70, 22, 22, 17, "cell update" + ("" if unrolled else f" x{E}"),
        ["scale C (multiply)" if mult else "scale C (CSD shift-add)",
         "+ biases, narrow to pre", f"sigmoid / tanh ({nl})",
         prod, {"rnn": "h' = tanh(.)", "gru": "h' = n + z (h - n)",
                "lstm": "c' = f c + i g; h' = o tanh(c')"}[p["cell"]]],
        stack=0 if unrolled else min(2, E - 1))
    arrow((65.6, 30), (69.6, 30), "sums")
    # state
    state = f"h[{H}] {fmt.get('h', '')}" + (f", c[{H}] {fmt.get('c', '')}"
                                             if p["cell"] == "lstm" else "")
    box(52, 3, 24, 10, "state registers", [state, "reset on tuser"], color="#eef7ee",
        edge="#5aa05a")
    arrow((81, 21.4), (70, 13.4), "h' (copied after the last group)", rad=-0.2,
          at=(84, 16))
    arrow((52, 8), (44, 21.4), "h (feedback)", rad=-0.25, color="#5aa05a", at=(42, 14))
    # head + output
    out_box = (96, 44, 13, 12)
    if p.get("output"):
        box(96, 24, 13, 14, "dense head", [f"{p['output']} logits", "shift-add MAC",
                                            "scale + bias", f"narrow {fmt.get('out', '')}"])
        arrow((76.4, 8), (102.5, 23.6), "h", conn="angle,angleA=0,angleB=90,rad=0",
              at=(90, 8.8))
        arrow((102.5, 38.4), (102.5, 43.6))
    else:
        arrow((76.4, 8), (102.5, 43.6), "h", conn="angle,angleA=0,angleB=90,rad=0",
              at=(90, 8.8))
    box(*out_box, "m_axis", ["AXI4-Stream out", "logits" if p.get("output") else "h",
                             "tuser, tlast carried"], color="#f3f3f3", edge="#666")
    # control
    states = ["IDLE"] + [s for li in range(p["layers"]) for s in
                         (f"L{li}_MAC", f"L{li}_EW", f"L{li}_COPY")]
    if p.get("output"):
        states += ["HEAD_MAC", "HEAD_W"]
    states.append("OUT")
    box(1, 3, 46, 10, "control FSM", [" > ".join(states),
                                       "one input beat in, one output beat out"],
        color="#f7f0f8", edge="#8460a8")
    arrow((24, 13.4), (24, 25.6), "", color="#8460a8", ls="--")
    _save(fig, Path(path))
    return Path(path)


# ================================================================================== the report
def write_report(folder, state: dict) -> list[str]:
    """Write ``report.md``, ``report.html`` and the PNGs into a design folder.

    Parameters
    ----------
    folder : path-like
        The design folder (``rtl_out/NAME`` or the flow's working copy).
    state : dict
        The flow state so far (stage results).

    Returns
    -------
    list of str
        The files written, relative to ``folder``.
    """
    from golden import atomic_write_bytes

    folder = Path(folder)
    name = state.get("name", folder.name)
    m, q = _stage(state, "model"), _stage(state, "quantize")
    g, v, s = _stage(state, "generate"), _stage(state, "verify"), _stage(state, "simulate")
    e = _stage(state, "estimate")
    info = q.get("info", {})
    img = folder / IMG_DIR
    files: list[str] = []
    d = _Doc()

    d.h(1, f"shiftrnn report: {name}")
    desc = state.get("config", {}).get("", {}).get("description")
    if desc:
        d.p(desc)
    d.p(f"Flow configuration `{state.get('config_source')}`; shiftrnn "
        f"{state.get('shiftrnn_version')}, {g.get('generator_version', '')}.")
    links = [f"[{g.get('verilog')}]({g.get('verilog')}) (Verilog, top `{g.get('top')}`)",
             "[manifest.json](manifest.json) (ports, formats, cycle formula)",
             "[model.npz](model.npz) (the quantized model: `shiftrnn info model.npz`)"]
    if v.get("waves"):
        links.append(f"[{v['waves']}]({v['waves']}) (VCD waveform of the cocotb `timing` test: "
                     f"`gtkwave {v['waves']}`)")
    if g.get("baseline"):
        links.append(f"[{g['baseline']['verilog']}]({g['baseline']['verilog']}) (multiplier "
                     "baseline)")
    if e.get("compare"):
        links.append(f"[{e['compare']['md']}]({e['compare']['md']}) (precision comparison)")
    if m.get("source") == "train":
        links.append("[train_log.json](train_log.json) (training log)")
    links.append("[sim_outputs.npz](sim_outputs.npz) (RTL outputs on the data) and "
                 "[flow_state.json](flow_state.json) (every number below)")
    d.bullets(links)

    # ---------------------------------------------------------------- summary table
    d.h(2, "Summary")
    rows = [["model", f"{info.get('cell')} {info.get('method')}, {info.get('input_kind')} input "
             f"{info.get('input_size')}, hidden {info.get('hidden_size')}, output "
             f"{info.get('output_size') or '-'}, {info.get('layers')} layer(s)"]]
    metric = q.get("metric")
    if metric:
        fl = (f"float network {_bpc(m['float_test_bpc'])}, " if m.get("float_test_bpc")
              is not None else "")
        rows.append([metric, f"{fl}golden float {_bpc(q.get('float'))}, golden integer "
                     f"{_bpc(q.get('int'))}, RTL {_bpc(s.get('rtl'))}"])
    mode = "unrolled" if g.get("unrolled") else f"{g.get('lanes')} lane(s)"
    rows.append(["hardware", f"{g.get('datapath')} datapath, {mode}, "
                 f"{g.get('cycles_per_timestep')} cycles/timestep"])
    rows.append(["verification", f"cocotb bench PASS ({v.get('outputs')} outputs), fast path "
                 f"bit-exact on {s.get('timesteps')} timesteps"])
    for dev, t in e.get("throughput", {}).items():
        rows.append([f"fmax ({dev})", f"{t['fmax_mhz']:.1f} MHz, {t['timesteps_per_s']:,.0f} "
                     "timesteps/s"])
    en = e.get("energy", {})
    if en:
        ours = en["shiftrnn"]["per_timestep_pj"]
        rows.append(["energy", f"{ours:.2f} pJ/timestep; " + ", ".join(
            f"{k} {en[k]['per_timestep_pj'] / ours:.1f}x more" for k in ("int8-mult", "float32")
            if k in en)])
    d.table(["", "result"], rows, "ll")

    # ---------------------------------------------------------------------- model
    d.h(2, "Model")
    params = f" {info['method_params']}" if info.get("method_params") else ""
    d.table(["property", "value"], [
        ["cell", f"{info.get('cell')} ({info.get('layers')} layer(s))"],
        ["weights", f"{info.get('method')}{params}, "
         f"{info.get('weights'):,} weights, {info.get('nonzero_weights'):,} nonzero"],
        ["input", f"{info.get('input_kind')}, size {info.get('input_size')}"],
        ["hidden / output", f"{info.get('hidden_size')} / {info.get('output_size') or '-'}"],
        ["nonlinearity", str(info.get("nonlinearity"))],
        ["formats", ", ".join(f"{k} {f}" for k, f in info.get("formats", {}).items())],
        ["scales", f"{info.get('scale_terms')} CSD term(s); biases {info.get('bias_mode')}"],
        ["model hash", f"`{q.get('hash', '')[:16]}...`"],
    ], "ll")
    if m.get("source") == "train":
        d.p(f"Trained by `shiftrnn` (quantization-aware, {m.get('corpus')}); the exported "
            f"model is epoch {m.get('selected_epoch')} (best validation BPC).")
        if _plot_training(m, img / "training.png"):
            files.append(f"{IMG_DIR}/training.png")
            d.img(f"{IMG_DIR}/training.png", "Training and validation bits per character")
    elif m.get("source"):
        d.p(f"Source: {m.get('source')} `{m.get('path')}`.")

    # ------------------------------------------------------------------- accuracy
    d.h(2, "Accuracy")
    d.p(f"Data: {q.get('data')}.")
    if metric:
        acc = []
        if m.get("float_test_bpc") is not None:
            acc.append(("float network (unquantized, same budget)", m["float_test_bpc"],
                        "PyTorch, float32 weights and activations"))
        if m.get("test_bpc") is not None:
            acc.append(("trainer (quantized weights)", m["test_bpc"],
                        "PyTorch evaluation, deterministic quantized weights"))
        acc += [("golden float path", q.get("float"),
                 "quantized weights, float activations (numpy)"),
                ("golden integer path", q.get("int"),
                 "bit-accurate integer spec = what the hardware computes"),
                ("RTL (Verilator)", s.get("rtl"),
                 "the generated Verilog on the fast path, from its own logits")]
        ref = q.get("float")
        d.table(["evaluation", metric, "vs golden float", "what"],
                [[k, _bpc(x), "n/a" if x is None or ref is None else f"{x - ref:+.4f}", w]
                 for k, x, w in acc], "lrrl")
        d.p(f"RTL outputs equal the golden integer path bit for bit: "
            f"**{'yes' if s.get('golden_equal') else 'NO'}** ({s.get('timesteps'):,} "
            "timesteps); RTL and integer-path numbers are therefore identical by construction.")
        if _plot_accuracy([(k, x) for k, x, _ in acc], metric, img / "accuracy.png"):
            files.append(f"{IMG_DIR}/accuracy.png")
            d.img(f"{IMG_DIR}/accuracy.png", f"{metric}: float vs quantized vs integer vs RTL")
    else:
        d.p(f"No labels or next-token targets: the integer path differs from the float path "
            f"by at most {_fmt(q.get('max_abs_err'))} (mean {_fmt(q.get('mean_abs_err'))}); "
            f"the RTL equals the integer path bit for bit: "
            f"**{'yes' if s.get('golden_equal') else 'NO'}**.")

    # ------------------------------------------------------------------- hardware
    d.h(2, "Hardware")
    diag = img / "block_diagram.png"
    block_diagram(diagram_params(info, g), diag)
    files.append(f"{IMG_DIR}/block_diagram.png")
    d.img(f"{IMG_DIR}/block_diagram.png", "Block diagram of the generated datapath")
    ports = g.get("ports", {})
    d.table(["property", "value"], [
        ["top module", f"`{g.get('top')}` in [{g.get('verilog')}]({g.get('verilog')}), "
         f"{g.get('verilog_bytes', 0):,} bytes"],
        ["datapath", f"{g.get('datapath')}, {mode}"],
        ["ports", f"s_axis_tdata {ports.get('s_axis_tdata')} bits, m_axis_tdata "
         f"{ports.get('m_axis_tdata')} bits (AXI4-Stream style)"],
        ["cycles per timestep", f"{g.get('cycles_per_timestep')} (manifest formula), "
         f"{_fmt(v.get('cycles_per_timestep'))} (cocotb), {_fmt(s.get('cycles_per_timestep'))}"
         " (fast path)"],
        ["latency", f"{g.get('latency')} cycles (manifest), {_fmt(v.get('latency'))} (cocotb)"],
        ["cycle formula", f"`{g.get('cycle_formula')}`"],
        ["phases", ", ".join(f"{k} {n}" for k, n in (g.get("phases") or {}).items())],
    ], "ll")
    lint = v.get("lint_warnings")
    d.p(f"Verification: Verilator lint "
        f"{'clean (-Wall, generator waivers)' if not lint else f'{len(lint)} warnings'}; "
        f"cocotb bench tests {', '.join(v.get('tests', []))}: PASS, {v.get('outputs')} outputs "
        f"compared exactly with golden (seed {v.get('seed')}, {v.get('sequences')} random "
        f"sequences up to {v.get('length')} steps, random idle cycles and backpressure). Fast "
        f"path: {s.get('timesteps', 0):,} timesteps, {s.get('cycles', 0):,} cycles, simulated "
        f"at {s.get('sim_cycles_per_s', 0):,.0f} cycles/s.")

    # ------------------------------------------------------------------ resources
    synth = e.get("synth", {})
    if synth:
        d.h(2, "Resources")
        rows = []
        for t, dd in synth.items():
            keys = (("total_cells", "cells"), ("ff", "FF")) if t == "generic" else (
                ("lut", "LUT"), ("ff", "FF"), ("carry", "carry"), ("bram", "BRAM"),
                ("dsp", "DSP"))
            for k, lab in keys:
                a = dd.get("shiftrnn", {}).get(k)
                b = dd.get("mult", {}).get(k) if "mult" in dd else None
                ratio = f"{b / a:.2f}x" if a and b is not None else "n/a"
                rows.append([t, lab, a, "n/a" if b is None else b, ratio])
            mul = dd.get("shiftrnn", {}).get("mul_cells", [])
            rows.append([t, "$mul/$macc cells", len(mul),
                         "n/a" if "mult" not in dd else len(dd["mult"].get("mul_cells", [])),
                         ""])
        d.table(["target", "resource", "shiftrnn", "multiplier baseline", "baseline / ours"],
                rows, "llrrr")
        d.p("Multiplier-free: **" + ("yes" if e.get("multiplier_free") else "NO") + "** "
            "(no `$mul`/`$macc` cell after yosys's coarse pass and no DSP block on any target). "
            "The baseline is the same architecture with `*` on the weights and gate products.")
        if _plot_resources(synth, img / "resources.png"):
            files.append(f"{IMG_DIR}/resources.png")
            d.img(f"{IMG_DIR}/resources.png", "Resources per target, shiftrnn vs multiplier "
                  "baseline")

    # --------------------------------------------------------------------- timing
    pnr = e.get("pnr", {})
    if pnr:
        d.h(2, "Timing: place and route")
        rows = []
        cpt = g.get("cycles_per_timestep") or 1
        for dev, dd in pnr.items():
            for label, r in dd.items():
                util = ", ".join(f"{k} {u['used']}/{u['available']}"
                                 for k, u in r.get("utilisation", {}).items()
                                 if k in ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP",
                                          "TRELLIS_COMB", "TRELLIS_FF", "DP16KD",
                                          "MULT18X18D", "SB_IO"))
                fm = r.get("fmax_mhz") if r.get("fits") else None
                rows.append([dev, "shiftrnn" if label == "shiftrnn" else "multiplier baseline",
                             "yes" if r.get("fits") else "no",
                             "n/a" if fm is None else f"{fm:.1f}",
                             "n/a" if fm is None else f"{fm * 1e6 / cpt:,.0f}",
                             "n/a" if fm is None else f"{cpt / fm * 1e3:,.0f}",
                             util or _trim(r.get("message", ""), 80)])
        d.table(["device", "design", "fits", "fmax MHz", "timesteps/s", "ns/timestep",
                 "utilisation"], rows, "llrrrrl")
        d.p("nextpnr with a fixed seed, the core wrapped in a three-pin I/O shell (the AXI "
            "ports are wider than the package). fmax is nextpnr's estimate of the slowest "
            "clock path.")

    # --------------------------------------------------------------------- energy
    if en:
        d.h(2, "Energy")
        T = s.get("length") or 1
        ours = en["shiftrnn"]["per_timestep_pj"]
        names = {"shiftrnn": "shiftrnn, operation counts",
                 "activity": "shiftrnn, RTL toggles (relative)",
                 "int8-mult": "int8 multiplier datapath", "float32": "float32 datapath"}
        rows = []
        for k in ("shiftrnn", "activity", "int8-mult", "float32"):
            if k not in en:
                continue
            x = en[k]["per_timestep_pj"]
            rows.append([names[k], f"{x:.2f}", f"{x * T:,.1f}", f"{x / ours:.2f}x",
                         ", ".join(f"{c} {val:.2f}" for c, val in en[k]["breakdown"].items()
                                   if val)])
        d.table(["design", "pJ/timestep", f"pJ/sequence ({T} steps)", "vs shiftrnn",
                 "breakdown, pJ"], rows, "lrrrl")
        d.p("Operation counts from the golden model priced with Horowitz (ISSCC 2014, 45 nm): "
            "adds by width, shift-and-add gate products, nonlinearities, weight memory reads "
            "(0 when unrolled). The baselines do the same work with a multiply per weight. The "
            "activity row counts register and port toggles in the RTL simulation, calibrated to "
            "the same table; compare it between designs, not as an absolute number. See "
            "docs/estimates.md.")
        if _plot_energy(en, img / "energy.png"):
            files.append(f"{IMG_DIR}/energy.png")
            d.img(f"{IMG_DIR}/energy.png", "Energy per timestep beside the baselines")

    # ----------------------------------------------------------------- comparison
    cmp = e.get("compare")
    if cmp:
        d.h(2, "Precision comparison")
        where = f"`{cmp.get('target')}`" + (f", place and route on `{cmp['device']}`"
                                           if cmp.get("device") else " (area only)")
        d.p(f"The same network at {cmp.get('lanes')} lane(s) as float32 (energy model only), as "
            f"an int8-multiplier design and with each low-precision method (re-quantized from "
            f"the model's effective weights; `shiftrnn compare`), synthesised for {where}. "
            f"Details: [{cmp['md']}]({cmp['md']}).")
        rows = []
        area = "cells" if cmp.get("target") == "generic" else "lut"
        for r in cmp["rows"]:
            if r.get("energy_pj") is None:
                rows.append([r["method"], "", "", "", "", "", "", r.get("note") or ""])
                continue
            fm = r.get("fmax_mhz")
            rows.append([r["method"], r.get("datapath") or "-",
                         "-" if r.get(area) is None else f"{r[area]:,}",
                         "-" if r.get("dsp") is None else f"{r['dsp']:,}",
                         "-" if fm is None else f"{fm:.1f}",
                         f"{r['energy_pj']:.1f}", _bpc(r.get("bpc")), r.get("note") or ""])
        d.table(["method", "datapath", "cells" if area == "cells" else "LUT", "DSP",
                 "fmax MHz", "pJ/timestep", "BPC", "note"], rows, "llrrrrrl")
        for k, rel in cmp.get("plots", {}).items():
            if (folder / rel).is_file():
                d.img(rel, f"Precision comparison: {k.replace('_', ' ')}")

    # ---------------------------------------------------------------------- stages
    d.h(2, "Flow stages")
    d.table(["stage", "seconds", "finished", "result"],
            [[k, f"{r.get('seconds', 0):.1f}", r.get("finished", ""), r.get("note", "")]
             for k, r in state.get("stages", {}).items()], "lrll")
    if state.get("config_text"):
        d.h(2, "Configuration")
        d.code(state["config_text"], "toml")

    atomic_write_bytes(folder / "report.md", d.markdown().encode())
    atomic_write_bytes(folder / "report.html", d.html(f"shiftrnn report: {name}",
                                                      folder).encode())
    return ["report.md", "report.html"] + files
