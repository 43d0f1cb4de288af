"""Training recipes: named sets of choices that are not single knobs of :class:`TrainConfig`.

A recipe decides how each weight tensor's per-matrix scale is chosen, whether the layer inputs
are batch-normalised, how the learning rate is scaled per tensor and scheduled, and how the
shadow weights start and are clipped. Everything a recipe chooses has a hardware form or is
folded into one at export (see docs/training.md); nothing here imports torch.

``RECIPES`` maps each name to its :class:`Recipe` (``RECIPES[name].description`` is the one-line
summary shown by ``shiftrnn train --help``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_RECIPE", "RECIPES", "Recipe", "get_recipe"]


#: The values of :attr:`Recipe.scales` and :attr:`Recipe.init`.
SCALE_KINDS = ("glorot", "paper", "data")
INITS = ("torch", "paper")


@dataclass(frozen=True)
class Recipe:
    """How a network is trained, beyond the numbers in :class:`TrainConfig`.

    Parameters
    ----------
    name, description : str
    scales : {'glorot', 'paper', 'data'}
        Per-matrix scales: the Glorot bound of each PyTorch tensor (golden's default), the
        authors' per-gate bounds (``sqrt(6/(fan_in+units))`` for input matrices and biases,
        ``sqrt(6/(2 units))`` for recurrent ones, binary ``H = 1``), or derived from the shadow
        weights at every step (:func:`train.quant.data_scale`).
    threshold : float
        ``'data'`` scales: the ternary threshold as a fraction of the tensor's mean ``|w|``
        (``W0 = 2 * threshold * mean|w|``; golden rounds to zero below ``W0 / 2``).
    rows : bool
        ``'data'`` scales (binary, ternary, pow2-ternary; exponential keeps its own range)
        per row of every matrix (golden's ``row_scales``: one CSD constant
        per row, applied after the row's weighted sum) instead of per matrix.
    input_norm : bool
        Batch-normalise every layer's input over batch and time (folded into per-column
        scales and a bias at export: :func:`golden.fold_input_norm`).
    norm_gamma : float
        Initial batch-norm scale.
    lr_scale : bool
        BinaryConnect's per-layer learning-rate scale ``1 / sqrt(1.5 / (fan_in + units))`` for
        the quantized tensors.
    init : {'torch', 'paper'}
        PyTorch's ``U(-1/sqrt(H), 1/sqrt(H))`` (uniform over the clip range for methods with a
        zero level) or Lasagne's ``N(0, 0.1)`` that the authors' GRU starts from.
    clip : bool
        Clip shadow weights to the quantizer's range after every step (``False`` for data
        scales: the scale follows the weights, so a fixed range would shrink them for ever).
    warmup : float
        Fraction of the planned steps with a linear learning-rate warm-up.
    final_lr : float
        The cosine decay ends at ``final_lr * lr``.
    quant_final_lr : float or None
        Where the decay of a quantized network ends instead (``None``: ``final_lr``; float
        networks keep ``final_lr``). Few-level weights move in steps of their levels and, with
        BinaryConnect's learning-rate scale, keep flipping between them late in training;
        annealing to nothing lets the network that is exported settle.
    det_tail : float
        Fraction of the planned steps, at the end, trained with deterministic quantization
        even when ``stochastic`` is set, so that the network that is evaluated and exported
        (always deterministic) is the one that was trained last.
    float_start : float
        Fraction of the planned steps, at the start, trained with unquantized weights (the
        activations keep their formats); quantization starts from the float solution.
    learn_scales : bool
        Train every weight matrix's per-matrix scale by gradient descent, starting from the
        recipe's scale (LSQ: the step size's straight-through gradient, scaled by
        ``1 / sqrt(numel * top level)``; the scale's log2 is the trained parameter). Biases
        share their matrix's scale. Not with per-row scales.
    gate_scales : bool
        With ``learn_scales``: one trained scale per gate block of every recurrent matrix (the
        rows of one gate share it; golden's ``row_scales`` with one value per gate) instead of
        one per matrix. The head keeps one.
    scale_lr : float
        Learning-rate multiplier of the trained scales (``learn_scales``).
    smooth_grad : bool
        The ``hard`` and ``plan`` sigmoid/tanh pass the true function's derivative straight
        through (their own is 0 where they saturate); the forward values are unchanged.
    quant_lr : float
        Learning-rate multiplier of the quantized weight matrices of the few-level methods
        (binary, ternary, pow2-ternary; not of biases, input normalisation, exponential or
        unquantized networks): such weights move in steps of their levels, so they need larger
        updates to cross a threshold.
    """

    name: str
    description: str
    scales: str = "glorot"
    threshold: float = 0.7
    rows: bool = False
    input_norm: bool = False
    norm_gamma: float = 0.1
    lr_scale: bool = False
    init: str = "torch"
    clip: bool = True
    warmup: float = 0.0
    final_lr: float = 0.1
    quant_final_lr: float | None = None
    det_tail: float = 0.0
    float_start: float = 0.0
    learn_scales: bool = False
    gate_scales: bool = False
    scale_lr: float = 1.0
    smooth_grad: bool = False
    quant_lr: float = 1.0

    def __post_init__(self):
        """Refuse, in one line naming the recipe and the field, a value out of its range or a
        combination that would silently do nothing."""
        def bad(message: str):
            raise ValueError(f"recipe {self.name!r}: {message}")

        for name, allowed in (("scales", SCALE_KINDS), ("init", INITS)):
            if getattr(self, name) not in allowed:
                bad(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("warmup", "final_lr", "quant_final_lr", "det_tail", "float_start"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                bad(f"{name} must be in [0, 1] (a fraction), got {v!r}")
        for name in ("threshold", "norm_gamma", "quant_lr"):
            if not getattr(self, name) > 0:
                bad(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.scale_lr < 0:
            bad(f"scale_lr must be >= 0, got {self.scale_lr!r}")
        if self.rows and self.scales != "data":
            bad("rows = true needs scales = 'data' (per-row scales come from the weights)")
        if self.gate_scales and not self.learn_scales:
            bad("gate_scales = true needs learn_scales = true (it trains one scale per gate)")
        if self.learn_scales and self.rows:
            bad("learn_scales trains one scale per matrix or per gate (gate_scales), not per "
                "row (rows = true)")

    def lr_factor(self, frac: float, final_lr: float | None = None) -> float:
        """Learning-rate multiplier at ``frac`` (0..1) of the planned steps, decaying to
        ``final_lr`` (None: the recipe's)."""
        end = self.final_lr if final_lr is None else final_lr
        frac = min(1.0, max(0.0, frac))
        if self.warmup and frac < self.warmup:
            return (frac + 1e-3) / (self.warmup + 1e-3)
        span = 1.0 - self.warmup
        t = (frac - self.warmup) / span if span > 0 else 1.0
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))


def paper_scale(method: str, role: str, n_in: int, units: int, *,
                trained_f: int | None = None) -> dict:
    """The authors' per-matrix scale of one tensor (``{}`` when the method has none).

    ``role`` is ``'input'`` (input matrix and both biases of a layer; the head counts as the
    input matrix of a layer of ``units`` outputs) or ``'recurrent'``. ``trained_f`` (a trained
    scale's start, pow2-ternary's ``f``): pow2-ternary, which has no scale in the authors'
    code (1: its first level ``2**-f`` would leave nearly every ``N(0, 0.1)`` weight at 0),
    starts with its first level at ternary's ``W0``, where a trained ternary scale starts.
    """
    if method == "binary":
        return {"H": 1.0}
    fan = n_in + units if role == "input" else 2 * units
    if method == "ternary":
        return {"W0": math.sqrt(6.0 / fan)}
    if method == "pow2-ternary" and trained_f is not None:
        return {"scale": math.sqrt(6.0 / fan) * 2.0**trained_f}
    return {}


def paper_lr_scale(n_in: int, units: int) -> float:
    """BinaryConnect's ``W_LR_scale = 1 / sqrt(1.5 / (fan_in + units))``."""
    return 1.0 / math.sqrt(1.5 / (n_in + units))


RECIPES: dict[str, Recipe] = {
    r.name: r for r in (
        Recipe("classic", "shiftrnn's original recipe: Glorot per-tensor scales clipped to "
                          "their range, PyTorch initialisation, cosine decay to lr/10"),
        Recipe("paper", "the authors' GRU: input batch norm (gamma 0.1), binary H = 1, per-gate "
                        "Glorot W0, biases with the input W0, BinaryConnect LR scale, N(0, 0.1) "
                        "init", scales="paper", input_norm=True, lr_scale=True, init="paper"),
        Recipe("learned", "'paper' with one scale per gate of every matrix (the head: one) "
                          "trained by gradient (LSQ) from the authors' values at 3x the base "
                          "learning rate, quantized weights annealed to a learning rate of 0, "
                          "and hard sigmoid/tanh with the smooth functions' gradient",
               scales="paper", input_norm=True, lr_scale=True, init="paper",
               learn_scales=True, gate_scales=True, scale_lr=3.0, quant_final_lr=0.0,
               smooth_grad=True),
        Recipe("accurate", "for accuracy: input batch norm, per-row scales from the weights at "
                           "every step (ternary threshold 0.7 mean|w|), 4x learning rate for "
                           "quantized matrices, no range clipping, deterministic last 25 %",
               scales="data", rows=True, input_norm=True, clip=False,
               quant_lr=4.0, det_tail=0.25),
        Recipe("accurate-matrix", "'accurate' with one scale per matrix and no input "
                                  "normalisation (what the hardware generator builds today)",
               scales="data", clip=False, quant_lr=4.0, det_tail=0.25),
    )
}
#: The recipe of a :class:`TrainConfig` that names none (the behaviour of earlier versions).
DEFAULT_RECIPE = "classic"


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {name!r}")
    return RECIPES[name]
