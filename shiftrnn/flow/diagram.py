"""The block diagram of a generated datapath (a PNG, matplotlib off-screen)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DiagramParams", "block_diagram", "figure", "save_figure"]


def figure(w: float, h: float):
    """A matplotlib figure without pyplot state."""
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def save_figure(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})


@dataclass(frozen=True)
class DiagramParams:
    """What the diagram shows.

    Attributes
    ----------
    cell, method, input_kind, datapath, nonlinearity : str
    hidden, input_size, layers, lanes : int
    output : int or None
        Outputs of the dense head (None: no head).
    unrolled : bool
    formats : dict of str to str
        Format name -> ``Fixed`` text.
    cycles : int or None
        Cycles per timestep (in the title).
    """

    cell: str
    method: str
    hidden: int
    input_kind: str
    input_size: int
    output: int | None
    layers: int
    lanes: int
    unrolled: bool
    datapath: str
    nonlinearity: str
    formats: dict
    cycles: int | None


class _Canvas:
    def __init__(self, ax):
        self.ax = ax

    def box(self, x, y, w, h, title, lines=(), color="#e8f1f8", edge="#2a7ab0", stack=0):
        from matplotlib.patches import FancyBboxPatch

        ax = self.ax
        for k in range(stack, 0, -1):
            ax.add_patch(FancyBboxPatch((x + k * 0.8, y - k * 0.8), w, h,
                                        boxstyle="round,pad=0.3", fc=color, ec=edge, lw=0.8))
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.3", fc=color, ec=edge,
                                    lw=1.3))
        ax.text(x + w / 2, y + h - 1.2, title, ha="center", va="top", fontsize=8.5,
                weight="bold")
        for i, ln in enumerate(lines):
            ax.text(x + w / 2, y + h - 4.0 - i * 2.4, ln, ha="center", va="top", fontsize=7.2)

    def arrow(self, a, b, text="", color="#333", rad=0.0, ls="-", conn=None, at=None):
        from matplotlib.patches import FancyArrowPatch

        style = conn or f"arc3,rad={rad}"
        self.ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=11, color=color,
                                          lw=1.2, ls=ls, connectionstyle=style))
        if text:
            tx, ty = at or ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 1.0)
            self.ax.text(tx, ty, text, ha="center", fontsize=6.8, color="#444")


def _inputs_and_weights(c: _Canvas, p: DiagramParams) -> None:
    tok, fmt, mult = p.input_kind == "token", p.formats, p.datapath == "mult"
    c.box(1, 26, 13, 14, "s_axis", ["AXI4-Stream in", "tdata, tvalid/tready", "tuser = first",
                                    "tlast = last"], color="#f3f3f3", edge="#666")
    c.box(18, 26, 13, 14, "input reg", [f"token 0..{p.input_size - 1}" if tok else
                                        f"x[{p.input_size}] {fmt.get('x', '')}",
                                        "one-hot = column" if tok else "Fixed vector",
                                        "select (no adds)" if tok else ""])
    c.arrow((14.6, 33), (17.6, 33))
    if p.unrolled:
        c.box(35, 45, 30, 8, "weights as wiring", ["constant multiplies" if mult else
                                                   "constant shift-add trees; zero weights "
                                                   "vanish"], color="#fdf3e3", edge="#d08a2c")
    else:
        c.box(35, 45, 30, 8, "weight-code ROMs (BRAM)", ["W_ih, W_hh, head: a CSD word "
                                                         "(sign, shift) per weight"],
              color="#fdf3e3", edge="#d08a2c")


def _mac_and_cell(c: _Canvas, p: DiagramParams) -> None:
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[p.cell]
    gate_names = {"rnn": "h", "gru": "r z n", "lstm": "i f g o"}[p.cell]
    H, E, unrolled, mult = p.hidden, p.lanes, p.unrolled, p.datapath == "mult"
    term = "v * code (DSP)" if mult else ("+v, -v or skip" if p.method in ("binary", "ternary")
                                          else "+/-(v << k) per CSD digit")
    n_acc = 2 * gates * (H if unrolled else E)
    c.box(35, 22, 30, 17, f"MAC: {'all ' + str(H) + ' units' if unrolled else f'{E} lane(s)'}",
          [f"gates {gate_names}: W_ih x and W_hh h", f"term = {term}",
           f"{n_acc} accumulators (exact widths)",
           "one cycle per matrix" if unrolled else "one column per cycle"],
          stack=min(2, (H if unrolled else E) - 1))
    c.arrow((31.6, 33), (34.6, 31), "x")
    c.arrow((50, 44.6), (50, 39.6), "" if unrolled else "codes", at=(53.5, 41.5))
    nl = (p.nonlinearity or "hard").split()[0]
    prod = "gate products: a * b" if mult else "gate products: shift-and-add"
    c.box(70, 22, 22, 17, "cell update" + ("" if unrolled else f" x{E}"),
          ["scale C (multiply)" if mult else "scale C (CSD shift-add)",
           "+ biases, narrow to pre", f"sigmoid / tanh ({nl})",
           prod, {"rnn": "h' = tanh(.)", "gru": "h' = n + z (h - n)",
                  "lstm": "c' = f c + i g; h' = o tanh(c')"}[p.cell]],
          stack=0 if unrolled else min(2, E - 1))
    c.arrow((65.6, 30), (69.6, 30), "sums")


def _state_output_control(c: _Canvas, p: DiagramParams) -> None:
    fmt, H = p.formats, p.hidden
    state = f"h[{H}] {fmt.get('h', '')}" + (f", c[{H}] {fmt.get('c', '')}"
                                             if p.cell == "lstm" else "")
    c.box(52, 3, 24, 10, "state registers", [state, "reset on tuser"], color="#eef7ee",
          edge="#5aa05a")
    c.arrow((81, 21.4), (70, 13.4), "h' (copied after the last group)", rad=-0.2, at=(84, 16))
    c.arrow((52, 8), (44, 21.4), "h (feedback)", rad=-0.25, color="#5aa05a", at=(42, 14))
    if p.output:
        c.box(96, 24, 13, 14, "dense head", [f"{p.output} logits", "shift-add MAC",
                                             "scale + bias", f"narrow {fmt.get('out', '')}"])
        c.arrow((76.4, 8), (102.5, 23.6), "h", conn="angle,angleA=0,angleB=90,rad=0",
                at=(90, 8.8))
        c.arrow((102.5, 38.4), (102.5, 43.6))
    else:
        c.arrow((76.4, 8), (102.5, 43.6), "h", conn="angle,angleA=0,angleB=90,rad=0",
                at=(90, 8.8))
    c.box(96, 44, 13, 12, "m_axis", ["AXI4-Stream out", "logits" if p.output else "h",
                                     "tuser, tlast carried"], color="#f3f3f3", edge="#666")
    states = ["IDLE"] + [s for li in range(p.layers) for s in
                         (f"L{li}_MAC", f"L{li}_EW", f"L{li}_COPY")]
    if p.output:
        states += ["HEAD_MAC", "HEAD_W"]
    states.append("OUT")
    c.box(1, 3, 46, 10, "control FSM", [" > ".join(states),
                                         "one input beat in, one output beat out"],
          color="#f7f0f8", edge="#8460a8")
    c.arrow((24, 13.4), (24, 25.6), "", color="#8460a8", ls="--")


def block_diagram(p: DiagramParams, path) -> Path:
    """Draw the datapath of a generated design into the PNG ``path``; returns the path."""
    fig = figure(11.0, 6.0)
    ax = fig.add_subplot()
    ax.set_xlim(0, 110)
    ax.set_ylim(0, 60)
    ax.axis("off")
    mult = p.datapath == "mult"
    title = (f"{p.cell.upper()}, {p.layers} layer(s), {p.method} weights, hidden {p.hidden}, "
             f"{'unrolled' if p.unrolled else f'{p.lanes} lane(s) (folded)'}, "
             f"{'multiplier baseline' if mult else 'multiplier-free shift-add'} datapath")
    if p.cycles:
        title += f": {p.cycles} cycles/timestep"
    ax.text(55, 59.5, title, ha="center", va="top", fontsize=10, weight="bold")
    canvas = _Canvas(ax)
    _inputs_and_weights(canvas, p)
    _mac_and_cell(canvas, p)
    _state_output_control(canvas, p)
    save_figure(fig, Path(path))
    return Path(path)
