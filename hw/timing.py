"""Exact cycle counts of a generated design, computed from the model's weights.

A timestep runs as *phases*: one per layer, then the dense head. Each phase is a weighted-sum
engine (folded: weight entries streamed from a ROM; unrolled: constant adder trees) feeding an
elementwise pipeline. The phase *plan* says which rows each lane computes in which group and how
many ROM steps each group takes; the hardware builds its ROMs from the same plan, so the cycle
count below is the one the simulation measures (tests check it to the cycle).

Folded phase (``N`` = sum over groups of the group's steps)::

    duration = N + MAC_DEPTH + stages - 1

* a group's steps are the largest number of entries of one lane slot: with zero skipping, the
  nonzero ``(column, code)`` entries of its row (``W_ih`` then ``W_hh`` for vector input; a token
  input adds none, its column comes from a table), at least 1; dense (``skip=False``): every
  column;
* ``MAC_DEPTH`` covers the registered start and the pipeline issue -> ROM -> word -> index ->
  select -> term -> accumulate;
* ``stages`` is the depth of the elementwise pipeline (:func:`cell_stages`, :data:`HEAD_STAGES`);
  groups overlap in it, only the last group of a phase drains.

Unrolled phase: ``duration = tree_registers + stages``, the adder trees registered every
:data:`TREE_LEVELS` levels (``tree_registers = max(1, ceil(depth / TREE_LEVELS))``, ``depth`` the
levels of the largest row's tree).

Timestep: ``cycles_per_timestep = 1 + sum(durations)`` (the input handshake cycle, in which the
first phase starts; the last phase's final write makes the output valid and the input ready in
the next cycle); ``latency`` is the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from golden import Model, csd_digits

__all__ = [
    "HEAD_STAGES", "MAC_DEPTH", "TREE_LEVELS", "PhasePlan", "Timing", "cell_stages",
    "head_lanes", "plan_phases", "stream_matrices", "timing", "tree_depth", "tree_registers",
    "unrolled_registers",
]

#: Folded engine: cycles from its start to its first step (1), then from the last issued step
#: to the cycle the sums are valid (6).
MAC_DEPTH = 7
#: Adder levels between registers in unrolled trees.
TREE_LEVELS = 2


def _levels(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


def cell_stages(model: Model) -> tuple[str, ...]:
    """Elementwise pipeline stages of the model's cell, one cycle each (``write`` registers the
    results for the state). A gate product ``a * g`` (``0 <= g <= 1.0``) adds the shifted
    copies of ``a`` for the bits of ``g`` up to 1.0, one adder level per stage; an addition and
    the saturation after it take a stage each (``gates``, ``gates_sat``)."""
    gf = model.formats["gate"].frac
    pp = gf + 1  # partial products of one gate product: bits 0 .. gf of the gate value
    head = ("scale", "bias", "sum", "pre")
    # o * tanh(c) (no shift: its top term starts at bit gf) with its narrowing's rounding half
    out_pp = pp + half_is_term(gf, lstm_out_half(model.formats))

    def tree(name, terms):
        return tuple(f"{name}{i}" for i in range(max(1, _levels(terms))))

    if model.cell == "rnn":
        return head + ("act", "act_sat", "write")
    if model.cell == "gru":
        return (head + ("gates", "gates_sat") + tree("rhn", pp + 1)
                + ("npre", "n", "n_sat", "upd_d") + tree("upd", pp + 1) + ("h", "write"))
    return (head + ("gates", "gates_sat") + tree("prod", 2 * pp) + ("c", "tanh_c", "tanh_c_sat")
            + tree("out", out_pp) + ("h", "write"))


def lstm_out_half(formats: dict) -> int:
    """The rounding half of the LSTM's ``o * tanh(c)`` (at ``gate.frac + act.frac``) in its
    narrowing to ``formats['h']``; 0 when the narrowing drops no bits."""
    dropped = formats["gate"].frac + formats["act"].frac - formats["h"].frac
    return 1 << (dropped - 1) if dropped > 0 else 0


def half_is_term(low: int, half: int) -> bool:
    """Whether a gate product's rounding ``half`` is a term of its own
    (:func:`hw.cell.partial_products`): it is OR-ed into the zero bits below the top term's
    lowest bit ``low`` when it lies there, else it is one more term to add."""
    return half >= 1 << low


#: Head pipeline: the scale; the bias (with the narrowing's rounding half); the saturation to
#: the output format; the write.
HEAD_STAGES = ("scale", "bias", "out", "write")


@dataclass(frozen=True)
class PhasePlan:
    """Who computes what in one phase, and how many cycles each group takes.

    Attributes
    ----------
    name : str
        ``layer0``, ``layer1``, ... or ``head``.
    groups : tuple of tuple
        ``groups[g][lane]``: the hidden unit (layer) or output row (head) the lane computes in
        group ``g``; ``None`` for an idle lane of a partial last group.
    gates : int
        Rows per lane (the cell's gates for a layer, 1 for the head). Lane ``e`` owns slots
        ``e * gates + q``; slot ``(e, q)`` of a layer computes row ``q * hidden + unit``.
    hidden : int
        Row stride of the gates (the hidden size; unused by the head).
    steps : tuple of int
        ROM steps of each group (folded); ``(1,)`` unrolled.
    skip : bool
        Entries are the nonzero weights only (else every column, zeros included).
    """

    name: str
    groups: tuple
    gates: int
    hidden: int
    steps: tuple
    skip: bool

    @property
    def lanes(self) -> int:
        return len(self.groups[0])

    @property
    def slots(self) -> int:
        return self.lanes * self.gates

    def row(self, g: int, slot: int) -> int | None:
        """Matrix row computed by ``slot`` in group ``g`` (None: idle)."""
        unit = self.groups[g][slot // self.gates]
        return None if unit is None else (slot % self.gates) * self.hidden + unit

    @property
    def units(self) -> list:
        """Every unit (or output row) with its ``(group, lane)``, in group order."""
        return [(k, g, e) for g, grp in enumerate(self.groups) for e, k in enumerate(grp)
                if k is not None]


@dataclass(frozen=True)
class Timing:
    """Exact cycle counts of one timestep (no stalls), per phase and in total."""

    cycles_per_timestep: int
    latency: int
    phases: dict
    formula: str
    plans: tuple = ()


def head_lanes(model: Model, lanes: int) -> int:
    """Output rows computed in parallel by the folded head: as many as the layer's slots."""
    return min(model.output_size, lanes * model.gates)


def _row_entries(mats: list[np.ndarray], row: int, skip: bool) -> int:
    return sum(int(np.count_nonzero(m[row])) if skip else m.shape[1] for m in mats)


def _assign(costs: list[int], lanes: int) -> tuple:
    """Units in groups of ``lanes``, costliest first, so that each group's lanes cost alike.

    Sorting and cutting into consecutive groups minimises the sum of the groups' maxima. Equal
    costs keep their order (dense designs compute unit ``g * lanes + e`` in group ``g``).
    """
    order = sorted(range(len(costs)), key=lambda k: -costs[k])
    order += [None] * (-len(order) % lanes)
    return tuple(tuple(order[i:i + lanes]) for i in range(0, len(order), lanes))


def _plan(name, mats, n_units, gates, hidden, lanes, skip) -> PhasePlan:
    """A folded phase's plan. With ``skip``, a phase whose zeros save no step (exponential
    weights have none) keeps the dense codes: same cycles, and its ROM entries need no column
    index."""
    plans = []
    for sparse in (False, True) if skip else (False,):
        costs = [max(_row_entries(mats, q * hidden + k, sparse) for q in range(gates))
                 for k in range(n_units)]
        groups = _assign(costs, lanes)
        steps = tuple(max([1] + [costs[k] for k in grp if k is not None]) for grp in groups)
        plans.append(PhasePlan(name, groups, gates, hidden, steps, sparse))
    return min(plans, key=lambda p: (sum(p.steps), p.skip))


def stream_matrices(model: Model, phase: int) -> list[np.ndarray]:
    """Code matrices whose entries a phase streams: ``[W_ih, W_hh]`` (no ``W_ih`` for a token
    layer: its column is a table lookup), or ``[W_head]``."""
    if phase == len(model.layers):
        return [model.head.w.codes]
    lay = model.layers[phase]
    if phase == 0 and model.input_kind == "token":
        return [lay.w_hh.codes]
    return [lay.input_matrix().codes, lay.w_hh.codes]


def plan_phases(model: Model, *, lanes: int | None, unrolled: bool,
                skip: bool = True) -> tuple[PhasePlan, ...]:
    """The plan of every phase (layers, then the head if any)."""
    H, G = model.hidden_size, model.gates
    plans = []
    n = len(model.layers) + (model.head is not None)
    for p in range(n):
        is_head = p == len(model.layers)
        name = "head" if is_head else f"layer{p}"
        units, gates = (model.output_size, 1) if is_head else (H, G)
        if unrolled:
            groups = (tuple(range(units)),)
            plans.append(PhasePlan(name, groups, gates, H, (1,), True))
            continue
        e = head_lanes(model, lanes) if is_head else lanes
        plans.append(_plan(name, stream_matrices(model, p), units, gates, H, e, skip))
    return tuple(plans)


def tree_depth(codes: np.ndarray, *, use_mul: bool = False) -> int:
    """Adder levels of the deepest row tree of a code matrix (unrolled engines).

    A row's terms are its codes' CSD digits ``±(v << k)`` (one product ``±(v * |code|)`` each in
    the multiplier baseline); positive and negative terms are summed in two balanced trees and
    subtracted: ``max(levels(pos), levels(neg)) + 1`` levels when there are negative terms.
    """
    depth = 0
    for row in np.asarray(codes).tolist():
        pos = neg = 0
        for code in row:
            if use_mul:
                pos, neg = pos + (code > 0), neg + (code < 0)
            else:
                for s, _ in csd_digits(code):
                    pos, neg = pos + (s > 0), neg + (s < 0)
        depth = max(depth, max(_levels(pos), _levels(neg)) + 1 if neg else _levels(pos))
    return depth


def tree_registers(depth: int) -> int:
    """Registers along an unrolled tree of ``depth`` adder levels (the last is the sum's)."""
    return max(1, math.ceil(depth / TREE_LEVELS))


def unrolled_registers(model: Model, phase: int, *, use_mul: bool = False) -> int:
    """Tree registers of an unrolled phase (its deepest matrix; a token lookup counts one)."""
    return max(tree_registers(tree_depth(m, use_mul=use_mul))
               for m in stream_matrices(model, phase))


def timing(model: Model, *, lanes: int | None, unrolled: bool, skip: bool = True,
           datapath: str = "shiftadd") -> Timing:
    """Cycle counts of the generated design; the simulation must measure exactly these.

    ``skip`` (folded designs): stream only nonzero weights in every phase where that saves
    steps (each :class:`PhasePlan` says whether it skips). ``datapath`` matters to unrolled
    designs only (the multiplier baseline's trees have one term per nonzero weight).
    """
    plans = plan_phases(model, lanes=lanes, unrolled=unrolled, skip=skip)
    phases = {"accept": 1}
    for p, plan in enumerate(plans):
        stages = len(HEAD_STAGES if plan.name == "head" else cell_stages(model))
        if unrolled:
            phases[plan.name] = unrolled_registers(model, p, use_mul=datapath == "mult") + stages
        else:
            phases[plan.name] = sum(plan.steps) + MAC_DEPTH + stages - 1
    total = sum(phases.values())
    if unrolled:
        formula = ("1 + sum over phases of (tree registers + pipeline stages); tree registers = "
                   f"max(1, ceil(levels / {TREE_LEVELS}))")
    else:
        sparse = [p.name for p in plans if p.skip]
        dense = [p.name for p in plans if not p.skip]
        kinds = ([f"nonzero weights ({', '.join(sparse)})"] if sparse else []) + (
            [f"columns ({', '.join(dense)})"] if dense else [])
        formula = (f"1 + sum over phases of (sum over groups of max entries per lane slot + "
                   f"{MAC_DEPTH - 1} + pipeline stages); entries = " + ", ".join(kinds))
    return Timing(total, total, phases, formula, plans)
