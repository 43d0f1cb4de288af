"""Energy per timestep from operation counts (Horowitz 2014 table) and from RTL switching activity.

Sources and rules (derivations in ``docs/estimates.md``):

- Per-operation energies, 45 nm, 0.9 V: M. Horowitz, "Computing's energy problem (and what we
  can do about it)", ISSCC 2014, pp. 10-14 -- :data:`HOROWITZ_45NM_PJ`.
- Integer add of ``n``-bit operands: affine in ``n`` through the two published points,
  ``e_add(n) = 0.03 + (n - 8) * 0.07 / 24`` pJ (8 -> 0.03, 32 -> 0.1), extrapolated linearly.
- Integer multiply ``n x m`` bits: ``0.2 * n * m / 64`` pJ (array multiplier area ~ n*m); it gives
  3.2 pJ for 32x32 against the published 3.1 (+3 %).
- Shifts: wiring in unrolled logic, 0 pJ (counted, not priced).
- Weight memory: a 64-bit read from an 8 KB SRAM costs 10 pJ, so 10/64 pJ per bit read.
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
    "EnergyEstimate",
    "add_energy_pj",
    "mult_energy_pj",
    "energy_from_ops",
    "baseline_energy",
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

#: Baseline kinds accepted by :func:`baseline_energy`.
BASELINES = ("float32", "int8-mult")


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


_REQUIRED = ("add", "shift", "gate_mul", "nonlin", "weight_bits_read", "weights", "mac_width")


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


def _gate_mul_count(ops: Mapping) -> int:
    return sum(int(n) for n in ops["gate_mul"].values())


def energy_from_ops(
    ops: Mapping, label: str = "shiftrnn", *, unrolled: bool = False
) -> EnergyEstimate:
    """Energy per timestep of a multiplier-free design from golden's op counts.

    Parameters
    ----------
    ops : mapping
        Golden's per-timestep op-count dict: ``add`` (width -> count), ``shift``, ``gate_mul``
        (``"<wa>x<wb>"`` -> count), ``nonlin`` (name -> count), ``weight_bits_read``,
        ``weights``, ``mac_width`` (``{"x": bits, "acc": bits}``).
    label : str
        Label of the estimate.
    unrolled : bool
        The design is fully unrolled: weights are constants in the logic, so no weight memory
        is read (``weight_bits_read`` is ignored; golden counts it for the folded design).

    Returns
    -------
    EnergyEstimate
        Breakdown ``add``, ``gate_mul``, ``nonlin``, ``weight_read``, ``shift`` (0 pJ).
    """
    _check_ops(ops)
    acc = int(ops["mac_width"]["acc"])
    adds = {int(w): int(n) for w, n in ops["add"].items()}
    gates = {_gate_widths(k): int(n) for k, n in ops["gate_mul"].items()}
    n_nonlin = sum(int(n) for n in ops["nonlin"].values())
    bits_read = 0 if unrolled else int(ops["weight_bits_read"])
    breakdown = {
        "add": sum(n * add_energy_pj(w) for w, n in adds.items()),
        "gate_mul": sum(n * min(a, b) * add_energy_pj(a + b) for (a, b), n in gates.items()),
        "nonlin": n_nonlin * NONLIN_ADDS * add_energy_pj(acc),
        "weight_read": bits_read * SRAM_PJ_PER_BIT,
        "shift": 0.0,
    }
    counts = {
        "add": sum(adds.values()),
        "gate_mul": sum(gates.values()),
        "gate_mul_adds": sum(n * min(a, b) for (a, b), n in gates.items()),
        "nonlin": n_nonlin,
        "weight_bits_read": bits_read,
        "shift": int(ops["shift"]),
    }
    return EnergyEstimate(label, sum(breakdown.values()), breakdown, counts)


def baseline_energy(ops: Mapping, kind: str) -> EnergyEstimate:
    """Energy per timestep of a conventional multiplier datapath doing the same work.

    Every weight costs one multiply and one accumulate, plus reading it from SRAM; every gate
    product costs one multiply. Nonlinearities are left out of the baselines (the shiftrnn
    estimate includes them, so the comparison is conservative).

    Parameters
    ----------
    ops : mapping
        Golden's op-count dict (see :func:`energy_from_ops`).
    kind : str
        ``"float32"``: fp32 multiply + fp32 add per weight, 32-bit weight reads, fp32 gate
        products; ``"int8-mult"``: int8 multiply + int32 add per weight, 8-bit weight reads,
        int8 gate products.

    Returns
    -------
    EnergyEstimate
        Breakdown ``mac_mult``, ``mac_add``, ``weight_read``, ``gate_mul``.
    """
    _check_ops(ops)
    if kind == "float32":
        mult, add, bits = HOROWITZ_45NM_PJ["fp32_mult"], HOROWITZ_45NM_PJ["fp32_add"], 32
    elif kind == "int8-mult":
        mult, add, bits = HOROWITZ_45NM_PJ["int8_mult"], HOROWITZ_45NM_PJ["int32_add"], 8
    else:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {BASELINES}")
    weights = int(ops["weights"])
    gates = _gate_mul_count(ops)
    breakdown = {
        "mac_mult": weights * mult,
        "mac_add": weights * add,
        "weight_read": weights * bits * SRAM_PJ_PER_BIT,
        "gate_mul": gates * mult,
    }
    counts = {"mult": weights + gates, "add": weights, "weight_bits_read": weights * bits}
    return EnergyEstimate(kind, sum(breakdown.values()), breakdown, counts)


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
