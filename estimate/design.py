"""The estimate of one generated design: area, multiplier audit, fit and fmax, energy.

:func:`estimate_design` is what ``shiftrnn estimate`` reports; the flow's estimate stage and
``shiftrnn compare`` build their figures from the same pieces: :func:`synth_figures` (yosys
resources), :func:`pnr_figures` (nextpnr, I/O wrapped), :func:`hardware_estimate` (both, the
multiplier audit and the time per timestep) and :func:`design_energy` (the energy per timestep of
a design and of its float32 and int8-multiplier baselines, from golden's op counts and the
weight memories the design's manifest lists).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import golden
from golden.manifest import Manifest

from .energy import EnergyEstimate, datapath_energy
from .pnr import DEVICES, place_and_route
from .synth import TARGETS, MulCell, synthesize

__all__ = [
    "DEFAULT_DEVICES", "ENERGY_SOURCE", "ESTIMATE_SCHEMA", "Audit", "DesignEstimate",
    "HardwareEstimate", "PnrFigures", "SynthFigures", "design_energy", "estimate_design",
    "hardware_estimate", "pnr_figures", "read_design", "resolve_device", "synth_figures",
]

#: Place-and-route device used for each target when none is given (None: area only).
DEFAULT_DEVICES = {"generic": None, "xilinx7": None, "ice40": "up5k", "ecp5": "ecp5-25k"}
#: ``schema`` field of ``estimate_<target>.json``.
ESTIMATE_SCHEMA = "shiftrnn-estimate/1"
#: Where the energy numbers come from.
ENERGY_SOURCE = ("operation counts x Horowitz ISSCC 2014 45 nm table, width-scaled "
                 "(docs/estimates.md section 4)")


def resolve_device(target: str, device: str | None = None) -> str | None:
    """Check a synthesis target and pick its place-and-route device.

    Parameters
    ----------
    target : str
        One of :data:`estimate.TARGETS`.
    device : str, optional
        A device of the target's family (default :data:`DEFAULT_DEVICES`).

    Returns
    -------
    str or None
        The device, or None for the area-only targets (``generic``, ``xilinx7``).

    Raises
    ------
    ValueError
        Unknown target, or a device that does not belong to it.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if device is None:
        return DEFAULT_DEVICES[target]
    parts = [k for k, v in DEVICES.items() if v.family == target]
    if not parts:
        raise ValueError(f"device {device!r} given, but target {target} has no place and route "
                         f"here (area only); use --target ice40 or ecp5")
    if device not in parts:
        raise ValueError(f"unknown {target} device {device!r}; choose one of {', '.join(parts)}")
    return device


def read_design(design_dir) -> tuple[Path, Manifest]:
    """Check a generated design folder and return it with its manifest.

    Raises
    ------
    golden.manifest.ManifestError
        No such folder, or the manifest is missing or malformed.
    FileNotFoundError
        The Verilog or model file is missing.
    """
    d = Path(design_dir)
    man = Manifest.read(d)
    for name in (man.verilog, man.model_file):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name} not found (regenerate the design folder)")
    return d, man


# ---------------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class SynthFigures:
    """Resources of one design on one target (yosys), with the multiplier-like cells."""

    target: str
    lut: int
    ff: int
    carry: int
    dsp: int
    bram: int
    cells_total: int
    cells: dict[str, int]
    mul_cells: tuple[MulCell, ...]
    yosys_version: str
    seconds: float
    from_cache: bool


@dataclass(frozen=True)
class PnrFigures:
    """Place and route of one design on one device (nextpnr, I/O wrapped)."""

    device: str
    fits: bool
    fmax_mhz: float | None
    message: str
    utilisation: dict[str, dict[str, int]]
    wrap_io: bool
    nextpnr_version: str
    seconds: float
    from_cache: bool


@dataclass(frozen=True)
class Audit:
    """The multiplier audit: a shift-add design must have no ``$mul``/``$macc`` cell and no
    DSP."""

    mul_cells: int
    dsp: int
    multiplier_free: bool
    required: bool
    passed: bool


@dataclass(frozen=True)
class HardwareEstimate:
    """Synthesis, audit and (for ice40/ecp5) place and route of one design."""

    target: str
    synth: SynthFigures
    audit: Audit
    pnr: PnrFigures | None
    cycles_per_timestep: int
    time_per_timestep_s: float | None
    timesteps_per_s: float | None


def synth_figures(verilog, top: str, target: str, *, cache_dir=None, progress: bool = False,
                  timeout: float | None = None) -> SynthFigures:
    """yosys resources of a Verilog file (cached by content)."""
    r = synthesize(verilog, top, target, cache_dir=cache_dir, progress=progress,
                   timeout=timeout)
    return SynthFigures(target, r.lut, r.ff, r.carry, r.dsp, r.bram, r.total_cells,
                        dict(r.cells), tuple(r.mul_cells), r.yosys_version, r.seconds,
                        r.from_cache)


def pnr_figures(verilog, top: str, device: str, *, cache_dir=None, progress: bool = False,
                timeout: float = 600.0) -> PnrFigures:
    """nextpnr fit and fmax of a Verilog file, I/O wrapped (cached by content)."""
    p = place_and_route(verilog, top, device, wrap_io=True, cache_dir=cache_dir,
                        progress=progress, timeout=timeout)
    return PnrFigures(device, p.fits, p.fmax_mhz, p.message, p.utilisation, True,
                      p.nextpnr_version, p.seconds, p.from_cache)


def hardware_estimate(verilog, top: str, target: str, device: str | None, cycles: int,
                      datapath: str, *, cache_dir=None, progress: bool = False
                      ) -> HardwareEstimate:
    """Synthesis, multiplier audit and (for a device) place and route of one Verilog file."""
    syn = synth_figures(verilog, top, target, cache_dir=cache_dir, progress=progress)
    free = not syn.mul_cells and syn.dsp == 0
    audit = Audit(len(syn.mul_cells), syn.dsp, free, datapath == "shiftadd",
                  free or datapath != "shiftadd")
    pnr = time = None
    if device is not None:
        pnr = pnr_figures(verilog, top, device, cache_dir=cache_dir, progress=progress)
        if pnr.fits and pnr.fmax_mhz:
            time = cycles / (pnr.fmax_mhz * 1e6)
    return HardwareEstimate(target, syn, audit, pnr, int(cycles), time,
                            None if time is None else 1.0 / time)


# ----------------------------------------------------------------------------------- energy
def design_energy(model: golden.Model, manifest: Manifest, *,
                  label: str = "shiftrnn") -> dict[str, EnergyEstimate]:
    """Energy per timestep of a generated design and of its baselines, priced one way.

    Parameters
    ----------
    model : golden.Model
        The design's model (op counts).
    manifest : golden.manifest.Manifest
        The design's manifest: its datapath, and the weight memories it reads.
    label : str
        Label of the design's estimate.

    Returns
    -------
    dict
        ``design``, ``int8-mult`` and ``float32``, all by :func:`estimate.energy.datapath_energy`:
        a ``shiftadd`` design with the weight memories its manifest lists; the baselines (and a
        ``mult`` design, which is the int8-multiplier baseline built) as dense multiplier
        datapaths that read every weight once per timestep.
    """
    ops = model.op_counts()
    base = {k: datapath_energy(ops, k) for k in ("int8-mult", "float32")}
    if manifest.config.datapath == "shiftadd":
        own = datapath_energy(ops, "shiftadd", memories=manifest.memories, label=label)
    else:
        own = dataclasses.replace(base["int8-mult"], label=label)
    return {"design": own, **base}


# ------------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class DesignEstimate:
    """What :func:`estimate_design` measured (``estimate_<target>.json``: :meth:`to_dict`)."""

    design: str
    design_dir: str
    top: str
    model_hash: str
    config: dict
    target: str
    device: str | None
    hardware: HardwareEstimate
    energy: dict[str, EnergyEstimate]
    length: int
    note: str | None

    def ratio(self, baseline: str) -> float:
        """How many times more energy per timestep ``baseline`` takes than the design."""
        return self.energy[baseline].per_timestep_pj / self.energy["design"].per_timestep_pj

    def to_dict(self) -> dict:
        """The JSON report (schema :data:`ESTIMATE_SCHEMA`)."""
        hw = dataclasses.asdict(self.hardware)
        hw["synth"]["mul_cells"] = [dataclasses.asdict(c) for c in self.hardware.synth.mul_cells]
        energy = {"source": ENERGY_SOURCE, "length": self.length,
                  **{k: _energy_dict(e, self.length) for k, e in self.energy.items()},
                  "ratio_int8_mult": self.ratio("int8-mult"),
                  "ratio_float32": self.ratio("float32")}
        if self.note:
            energy["note"] = self.note
        return {"schema": ESTIMATE_SCHEMA, "design": self.design, "design_dir": self.design_dir,
                "top": self.top, "model_hash": self.model_hash, "config": self.config,
                "target": self.target, "device": self.device, "hardware": hw, "energy": energy}


def _energy_dict(e: EnergyEstimate, length: int) -> dict:
    return {"label": e.label, "per_timestep_pj": e.per_timestep_pj,
            "per_sequence_pj": e.per_sequence_pj(length), "breakdown": e.breakdown,
            "counts": e.counts}


def estimate_design(design_dir, target: str = "ice40", device: str | None = None, *,
                    length: int = 256, cache_dir=None, progress: bool = False
                    ) -> DesignEstimate:
    """Area, fit/fmax and energy of a generated design folder.

    Parameters
    ----------
    design_dir : path-like
        ``rtl_out/NAME`` (manifest, Verilog and ``model.npz``).
    target : str
        Synthesis target: ``generic``, ``xilinx7``, ``ice40`` or ``ecp5``.
    device : str, optional
        Place-and-route device of the target's family (default :data:`DEFAULT_DEVICES`;
        ``generic`` and ``xilinx7`` are area only).
    length : int
        Sequence length for the energy per sequence.
    cache_dir : path-like, optional
        Estimate cache (default: see :func:`estimate.cache.cache_root`).
    progress : bool
        Show a status line while yosys/nextpnr run.

    Returns
    -------
    DesignEstimate
    """
    device = resolve_device(target, device)
    if int(length) < 1:
        raise ValueError(f"length must be a positive number of timesteps, got {length}")
    d, man = read_design(design_dir)
    model = golden.load(d / man.model_file)
    datapath = man.config.datapath
    hwr = hardware_estimate(d / man.verilog, man.top, target, device, man.cycles_per_timestep,
                            datapath, cache_dir=cache_dir, progress=progress)
    energy = design_energy(model, man, label=model.method)
    note = ("a mult-datapath design is priced as the int8-multiplier baseline"
            if datapath != "shiftadd" else None)
    return DesignEstimate(man.design, str(d), man.top, model.hash(),
                          dataclasses.asdict(man.config), target, device, hwr, energy,
                          int(length), note)
