"""Energy per timestep from operation counts (Horowitz 2014 table) and from RTL switching activity.

Sources and rules (derivations in ``docs/estimates.md``):

- Per-operation energies, 45 nm, 0.9 V: M. Horowitz, "Computing's energy problem (and what we
  can do about it)", ISSCC 2014, pp. 10-14 -- :data:`HOROWITZ_45NM_PJ`.
- Integer add of ``n``-bit operands: affine in ``n`` through the two published points,
  ``e_add(n) = 0.03 + (n - 8) * 0.07 / 24`` pJ (8 -> 0.03, 32 -> 0.1), extrapolated linearly.
- Integer multiply ``n x m`` bits: ``0.2 * n * m / 64`` pJ (array multiplier area ~ n*m); it gives
  3.2 pJ for 32x32 against the published 3.1 (+3 %).
- Shifts: wiring in unrolled logic, 0 pJ (counted, not priced).
- Weight memory: a 64-bit read from an 8 KB SRAM costs 10 pJ, so 10/64 pJ per bit read; the
  bits read are those of the weight memories the generator built (the design's manifest).
- A shift-add gate product ``wa x wb``: one add of the product width ``wa + wb`` per bit of the
  multiplier operand, which is taken to be the narrower one (``min(wa, wb)`` adds).
- A nonlinearity (hard/piecewise sigmoid or tanh, or a small ROM): :data:`NONLIN_ADDS` adds
  of the accumulator width (offset add and two saturation compares).
- Switching activity: :data:`PJ_PER_TOGGLE` per RTL bit toggle, a calibration to the same table
  (see :func:`activity_energy`); the result is *relative*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "HOROWITZ_45NM_PJ",
    "SRAM_PJ_PER_BIT",
    "NONLIN_ADDS",
    "PJ_PER_TOGGLE",
    "BASELINES",
    "DATAPATHS",
    "EnergyEstimate",
    "add_energy_pj",
    "mult_energy_pj",
    "datapath_energy",
    "weight_memory_bits",
    "activity_energy",
]

#: Energy per operation in pJ, 45 nm, 0.9 V, from Horowitz (ISSCC 2014).
HOROWITZ_45NM_PJ = {
    "int8_add": 0.03,
    "int32_add": 0.1,
    "int8_mult": 0.2,
    "int32_mult": 3.1,
    "fp32_add": 0.9,
    "fp32_mult": 3.7,
    "sram_64b_read_8kb": 10.0,
}

#: Energy per bit read from an 8 KB SRAM (10 pJ per 64-bit word), pJ.
SRAM_PJ_PER_BIT = HOROWITZ_45NM_PJ["sram_64b_read_8kb"] / 64

#: Add-equivalents of one nonlinearity evaluation (offset add + two saturation compares).
NONLIN_ADDS = 3

#: Expected RTL bit toggles of one 8-bit add with uniformly random operands: the two 8-bit
#: operand registers (16 bits x 1/2) and the 9-bit sum (9 x 1/2).
TOGGLES_PER_INT8_ADD = 12.5

#: Energy per RTL bit toggle, pJ: Horowitz's int8 add spread over its expected toggles
#: (0.03 / 12.5 = 0.0024 pJ). Puts activity energy on the scale of the op-count model; relative.
PJ_PER_TOGGLE = HOROWITZ_45NM_PJ["int8_add"] / TOGGLES_PER_INT8_ADD

#: The baselines beside every design: multiplier datapaths doing the same work.
BASELINES = ("float32", "int8-mult")
#: Datapath kinds :func:`datapath_energy` prices.
DATAPATHS = ("shiftadd", *BASELINES)


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy of one timestep (one sequence element of one sequence).

    Attributes
    ----------
    label : str
        What was estimated (``"shiftrnn"``, ``"float32"``, ...).
    per_timestep_pj : float
        Total energy per timestep, pJ.
    breakdown : dict of str to float
        pJ per timestep by category; sums to ``per_timestep_pj``.
    counts : dict of str to float
        Operation (or toggle) counts per timestep by category, including unpriced ones.
    relative : bool
        True when only ratios between estimates are meaningful (activity energy).
    """

    label: str
    per_timestep_pj: float
    breakdown: dict[str, float]
    counts: dict[str, float] = field(default_factory=dict)
    relative: bool = False

    def per_sequence_pj(self, steps: int) -> float:
        """Energy of a sequence of ``steps`` timesteps, pJ.

        Parameters
        ----------
        steps : int
            Sequence length.

        Returns
        -------
        float
            ``steps * per_timestep_pj``.
        """
        return steps * self.per_timestep_pj


def add_energy_pj(bits: float) -> float:
    """Energy of one integer add (or subtract, compare) of ``bits``-bit operands, pJ.

    Affine through Horowitz's 8-bit (0.03 pJ) and 32-bit (0.1 pJ) adds.

    Parameters
    ----------
    bits : float
        Operand width.

    Returns
    -------
    float
        ``0.03 + (bits - 8) * 0.07 / 24``.
    """
    lo, hi = HOROWITZ_45NM_PJ["int8_add"], HOROWITZ_45NM_PJ["int32_add"]
    return lo + (bits - 8) * (hi - lo) / (32 - 8)


def mult_energy_pj(bits_a: float, bits_b: float) -> float:
    """Energy of one integer multiply of ``bits_a x bits_b`` bits, pJ.

    Quadratic scaling from Horowitz's 8x8 multiply (0.2 pJ).

    Parameters
    ----------
    bits_a, bits_b : float
        Operand widths.

    Returns
    -------
    float
        ``0.2 * bits_a * bits_b / 64``.
    """
    return HOROWITZ_45NM_PJ["int8_mult"] * bits_a * bits_b / 64


_REQUIRED = ("add", "shift", "gate_mul", "nonlin", "weights", "mac_width")


def _check_ops(ops: Mapping) -> None:
    missing = [k for k in _REQUIRED if k not in ops]
    if missing:
        raise ValueError(f"op-count dict lacks {missing}; expected keys {list(_REQUIRED)}")
    if "acc" not in ops["mac_width"]:
        raise ValueError("ops['mac_width'] needs an 'acc' width")


def _gate_widths(key: str) -> tuple[int, int]:
    try:
        wa, wb = (int(w) for w in str(key).lower().split("x"))
    except ValueError:
        raise ValueError(f"gate_mul key {key!r} is not '<wa>x<wb>'") from None
    return wa, wb


def weight_memory_bits(memories) -> tuple[int, int]:
    """Bits stored in, and bits read per timestep from, a design's weight memories.

    Parameters
    ----------
    memories : iterable of golden.manifest.Memory
        The manifest's ``memories`` (empty for an unrolled design: weights are wiring).

    Returns
    -------
    (int, int)
        ``sum(depth x width)`` and ``sum(width x reads_per_timestep)``.
    """
    memories = tuple(memories)
    return (sum(m.depth * m.width for m in memories),
            sum(m.width * m.reads_per_timestep for m in memories))


#: Per weight of a multiplier datapath: (multiply pJ, accumulate pJ, weight bits).
_MULTIPLIER = {"float32": (HOROWITZ_45NM_PJ["fp32_mult"], HOROWITZ_45NM_PJ["fp32_add"], 32),
               "int8-mult": (HOROWITZ_45NM_PJ["int8_mult"], HOROWITZ_45NM_PJ["int32_add"], 8)}


def _shiftadd(ops: Mapping) -> tuple[dict, dict]:
    acc = int(ops["mac_width"]["acc"])
    adds = {int(w): int(n) for w, n in ops["add"].items()}
    gates = {_gate_widths(k): int(n) for k, n in ops["gate_mul"].items()}
    n_nonlin = sum(int(n) for n in ops["nonlin"].values())
    breakdown = {
        "add": sum(n * add_energy_pj(w) for w, n in adds.items()),
        "gate_mul": sum(n * min(a, b) * add_energy_pj(a + b) for (a, b), n in gates.items()),
        "nonlin": n_nonlin * NONLIN_ADDS * add_energy_pj(acc),
        "weight_read": 0.0,  # priced by datapath_energy
    }
    counts = {"add": sum(adds.values()), "gate_mul": sum(gates.values()),
              "gate_mul_adds": sum(n * min(a, b) for (a, b), n in gates.items()),
              "nonlin": n_nonlin, "shift": int(ops["shift"])}
    return breakdown, counts


def _multiplier(ops: Mapping, kind: str) -> tuple[dict, dict]:
    mult, add, _ = _MULTIPLIER[kind]
    weights = int(ops["weights"])
    gates = sum(int(n) for n in ops["gate_mul"].values())
    breakdown = {"mac_mult": weights * mult, "mac_add": weights * add,
                 "weight_read": 0.0,  # priced by datapath_energy
                 "gate_mul": gates * mult}
    return breakdown, {"mult": weights + gates, "add": weights}


def datapath_energy(ops: Mapping, kind: str, *, memories=None,
                    label: str | None = None) -> EnergyEstimate:
    """Energy per timestep of a datapath doing the work of golden's op counts.

    The one pricing function: a shiftrnn design, the int8-multiplier baseline and the float32
    baseline differ only in what an operation costs, and a design that exists reads the weight
    memories its manifest lists.

    Parameters
    ----------
    ops : mapping
        Golden's per-timestep op-count dict: ``add`` (width -> count), ``shift``, ``gate_mul``
        (``"<wa>x<wb>"`` -> count), ``nonlin`` (name -> count), ``weights``, ``mac_width``
        (``{"x": bits, "acc": bits}``).
    kind : {'shiftadd', 'int8-mult', 'float32'}
        ``shiftadd``: adds by width, shift-and-add gate products, nonlinearities.
        ``int8-mult``: an int8 multiply and an int32 accumulate per weight, an int8 multiply per
        gate product. ``float32``: fp32 multiply and add per weight, fp32 gate products.
    memories : iterable of golden.manifest.Memory, optional
        The weight memories of a generated design (its manifest's ``memories``; empty when
        unrolled): weight reads cost ``width x reads_per_timestep`` bits. Required for
        ``shiftadd``; without them a multiplier datapath reads every weight once per timestep
        at 8 (int8) or 32 (float32) bits.
    label : str, optional
        Label of the estimate (default: ``kind``).

    Returns
    -------
    EnergyEstimate
        Breakdown ``add``, ``gate_mul``, ``nonlin``, ``weight_read`` (shiftadd) or
        ``mac_mult``, ``mac_add``, ``weight_read``, ``gate_mul`` (multiplier datapaths);
        counts include ``weight_bits_read`` (per timestep) and ``weight_memory_bits`` (stored).
    """
    _check_ops(ops)
    if kind == "shiftadd":
        if memories is None:
            raise ValueError("a shiftadd datapath reads the weight memories of its design: pass "
                             "the manifest's memories (empty when unrolled)")
        breakdown, counts = _shiftadd(ops)
    elif kind in _MULTIPLIER:
        breakdown, counts = _multiplier(ops, kind)
    else:
        raise ValueError(f"unknown datapath {kind!r}; choose one of {DATAPATHS}")
    if memories is not None:
        stored, read = weight_memory_bits(memories)
    else:
        stored = read = int(ops["weights"]) * _MULTIPLIER[kind][2]
    breakdown["weight_read"] = read * SRAM_PJ_PER_BIT
    counts.update(weight_bits_read=read, weight_memory_bits=stored)
    return EnergyEstimate(label or kind, sum(breakdown.values()), breakdown, counts)


def activity_energy(
    toggles: Mapping[str, int],
    cycles: int,
    pj_per_toggle: float = PJ_PER_TOGGLE,
    *,
    timesteps: int = 1,
    label: str = "activity (relative)",
) -> EnergyEstimate:
    """Relative dynamic energy from switching activity counted in RTL simulation.

    Parameters
    ----------
    toggles : mapping of str to int
        Bit toggles per signal group over the simulation.
    cycles : int
        Clock cycles simulated.
    pj_per_toggle : float
        Energy per bit toggle (default :data:`PJ_PER_TOGGLE`, calibrated so that an 8-bit add
        costs Horowitz's 0.03 pJ; RTL signals are a fraction of the gate-level nets, so only
        ratios between designs are meaningful).
    timesteps : int
        Timesteps the simulation covered (results are per timestep).
    label : str
        Label of the estimate.

    Returns
    -------
    EnergyEstimate
        ``relative=True``; breakdown by signal group; counts per timestep, with ``cycles``.
    """
    if cycles <= 0 or timesteps <= 0:
        raise ValueError("cycles and timesteps must be positive")
    if any(int(n) < 0 for n in toggles.values()):
        raise ValueError("toggle counts must be non-negative")
    breakdown = {g: int(n) * pj_per_toggle / timesteps for g, n in toggles.items()}
    counts = {g: int(n) / timesteps for g, n in toggles.items()}
    counts["cycles"] = cycles / timesteps
    return EnergyEstimate(label, sum(breakdown.values()), breakdown, counts, relative=True)
