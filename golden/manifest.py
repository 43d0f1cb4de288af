"""The design manifest: the one typed contract between the generator and everything that reads it.

``hw`` writes ``rtl_out/<design>/manifest.json`` through :class:`Manifest`; ``sim``, ``estimate``
and the ``shiftrnn`` front door read it through :meth:`Manifest.read`. The module lives in golden
because it must not import Amaranth (sim never imports hw) and because the port layout is a fact
of the model: :func:`input_fields` and :func:`output_fields` derive it from a :class:`Model`, and
:class:`Port` owns the one packing of element integers into ``tdata`` words.

Packing: element ``j`` of a vector lives at bits ``[lsb, lsb + width)`` (element 0 in the least
significant bits), two's complement for signed formats; a token input is an unsigned index.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import ShiftrnnError
from .files import atomic_write_bytes
from .fixed import Fixed
from .model import Model

__all__ = [
    "MANIFEST_FILE", "MANIFEST_VERSION", "DesignConfig", "Field", "Manifest", "ManifestError",
    "Memory", "Port", "axis_ports", "input_fields", "output_fields",
]

MANIFEST_FILE = "manifest.json"
#: Version 1 (shiftrnn-hw 0.1.0) had untyped ``ports``; readers refuse it with a fix.
MANIFEST_VERSION = 2


class ManifestError(ShiftrnnError, ValueError):
    """A design folder's manifest is missing, malformed or inconsistent (the message names it)."""


# ----------------------------------------------------------------------------------- ports
@dataclass(frozen=True)
class Field:
    """One element of a data port: bits ``[lsb, lsb + width)`` in format ``fmt``."""

    name: str
    lsb: int
    width: int
    fmt: Fixed

    @property
    def signed(self) -> bool:
        return self.fmt.signed

    def to_dict(self) -> dict:
        return {"name": self.name, "lsb": self.lsb, "width": self.width,
                "format": self.fmt.to_dict()}

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Field:
        f = cls(str(d["name"]), int(d["lsb"]), int(d["width"]),
                Fixed.from_dict(d["format"], where=f"{where}.format"))
        if f.width != f.fmt.bits:
            raise ManifestError(f"{where}: width {f.width} differs from its format's "
                                f"{f.fmt.bits} bits")
        return f


@dataclass(frozen=True)
class Port:
    """One top-level port: name, direction, width, meaning, and for ``tdata`` its fields.

    Attributes
    ----------
    name : str
        Verilog port name (``clk``, ``rst``, ``s_axis_tdata``, ...).
    direction : {'in', 'out'}
    width : int
        Bits.
    meaning : str
        One line for people.
    kind : str or None
        Data ports only: ``'token'`` (an unsigned index), ``'vector'`` (input elements), ``'h'``
        (the last layer's hidden state) or ``'logits'`` (the dense head's outputs).
    fields : tuple of Field
        Data ports only: elements in vector order (element 0 first).
    """

    name: str
    direction: str
    width: int
    meaning: str
    kind: str | None = None
    fields: tuple[Field, ...] = ()

    @property
    def words(self) -> int:
        """32-bit words per beat (Verilator's word size for wide ports)."""
        return (self.width + 31) // 32

    @property
    def size(self) -> int:
        """Elements per beat."""
        return len(self.fields)

    def to_dict(self) -> dict:
        d = {"name": self.name, "direction": self.direction, "width": self.width,
             "meaning": self.meaning}
        if self.fields:
            d["kind"] = self.kind
            d["fields"] = [f.to_dict() for f in self.fields]
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Port:
        fields = tuple(Field.from_dict(f, f"{where}.fields[{i}]")
                       for i, f in enumerate(d.get("fields", ())))
        p = cls(str(d["name"]), str(d["direction"]), int(d["width"]), str(d.get("meaning", "")),
                d.get("kind"), fields)
        if p.direction not in ("in", "out"):
            raise ManifestError(f"{where}.direction: must be 'in' or 'out', got {p.direction!r}")
        for f in fields:
            if f.width < 1 or f.width > 62 or f.lsb < 0 or f.lsb + f.width > p.width:
                raise ManifestError(f"{where}: field {f.name} bits [{f.lsb}, {f.lsb + f.width}) "
                                    f"do not fit a {p.width}-bit port (or wider than 62 bits)")
        return p

    # -------------------------------------------------------------------------- packing
    def pack_words(self, values) -> np.ndarray:
        """Pack element integers into little-endian 32-bit words.

        Parameters
        ----------
        values : array_like of int
            Shape ``(beats, size)``, or ``(beats,)`` for a one-field (token) port.

        Returns
        -------
        ndarray of uint32, shape ``(beats, words)``

        Raises
        ------
        ValueError
            A value does not fit its field.
        """
        v = np.asarray(values, dtype=np.int64)
        if v.ndim == 1:
            v = v[:, None]
        if v.shape[1] != self.size:
            raise ValueError(f"{self.name}: expected {self.size} elements per beat, "
                             f"got {v.shape[1]}")
        out = np.zeros((v.shape[0], self.words), np.uint32)
        step = 1 << 16
        for s in range(0, v.shape[0], step):
            chunk = v[s:s + step]
            bits = np.zeros((chunk.shape[0], self.words * 32), np.uint8)
            for j, f in enumerate(self.fields):
                col = chunk[:, j]
                self._check_range(col, f)
                sh = np.arange(f.width, dtype=np.int64)
                bits[:, f.lsb:f.lsb + f.width] = ((col[:, None] >> sh) & 1).astype(np.uint8)
            packed = np.packbits(bits, axis=1, bitorder="little")
            out[s:s + step] = packed.view("<u4").reshape(chunk.shape[0], self.words)
        return out

    def _check_range(self, col: np.ndarray, f: Field) -> None:
        lo, hi = ((-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed
                  else (0, (1 << f.width) - 1))
        if col.size and (col.min() < lo or col.max() > hi):
            raise ValueError(f"{self.name}: value out of range for field {f.name} ({f.width} "
                             f"bits, {'signed' if f.signed else 'unsigned'}): "
                             f"[{col.min()}, {col.max()}]")

    def unpack_words(self, words) -> np.ndarray:
        """Inverse of :meth:`pack_words`: ``(beats, words)`` uint32 to ``(beats, size)`` int64."""
        w = np.ascontiguousarray(np.asarray(words, dtype="<u4")).reshape(-1, self.words)
        out = np.empty((w.shape[0], self.size), np.int64)
        step = 1 << 16
        for s in range(0, w.shape[0], step):
            bits = np.unpackbits(w[s:s + step].view(np.uint8), axis=1, bitorder="little")
            for j, f in enumerate(self.fields):
                weights = np.int64(1) << np.arange(f.width, dtype=np.int64)
                v = bits[:, f.lsb:f.lsb + f.width].astype(np.int64) @ weights
                if f.signed:
                    v = np.where(v >= (1 << (f.width - 1)), v - (1 << f.width), v)
                out[s:s + step, j] = v
        return out

    def pack_int(self, values) -> int:
        """One beat as a Python integer (for cocotb and Amaranth's simulator)."""
        words = self.pack_words(np.asarray(values, dtype=np.int64).reshape(1, -1))[0]
        return int.from_bytes(words.astype("<u4").tobytes(), "little")

    def unpack_int(self, value: int) -> np.ndarray:
        """One beat from a Python integer (for cocotb and Amaranth's simulator)."""
        raw = int(value).to_bytes(self.words * 4, "little")
        return self.unpack_words(np.frombuffer(raw, dtype="<u4").reshape(1, -1))[0]


def input_fields(model: Model) -> tuple[str, tuple[Field, ...]]:
    """``(kind, fields)`` of ``s_axis_tdata``: a token index or ``input_size`` Fixed elements.

    A token field is ``ceil(log2(input_size))`` bits wide (at least 1).
    """
    if model.input_kind == "token":
        w = model.token_bits
        return "token", (Field("token", 0, w, Fixed(w, 0, signed=False)),)
    f = model.formats["x"]
    return "vector", tuple(Field(f"x[{j}]", j * f.bits, f.bits, f)
                           for j in range(model.input_size))


def output_fields(model: Model) -> tuple[str, tuple[Field, ...]]:
    """``(kind, fields)`` of ``m_axis_tdata``: logits when there is a head, else the last hidden."""
    if model.head is not None:
        f, n, name = model.formats["out"], model.output_size, "logits"
    else:
        f, n, name = model.formats["h"], model.hidden_size, "h"
    return name, tuple(Field(f"{name}[{j}]", j * f.bits, f.bits, f) for j in range(n))


def _data_width(fields: tuple[Field, ...]) -> int:
    return max(f.lsb + f.width for f in fields)


def axis_ports(model: Model) -> tuple[Port, ...]:
    """Every port of a generated top, in declaration order, with the data ports' fields."""
    in_kind, in_fields = input_fields(model)
    out_kind, out_fields = output_fields(model)
    out_meaning = ("logits of the dense head" if out_kind == "logits"
                   else "hidden state of the last layer")
    return (
        Port("clk", "in", 1, "clock; every handshake and register update on its rising edge"),
        Port("rst", "in", 1, "synchronous reset, active high"),
        Port("s_axis_tdata", "in", _data_width(in_fields),
             "one timestep's input: a token index" if in_kind == "token"
             else "one timestep's input vector", in_kind, in_fields),
        Port("s_axis_tvalid", "in", 1, "input beat valid"),
        Port("s_axis_tready", "out", 1, "the design accepts an input beat"),
        Port("s_axis_tuser", "in", 1, "first step of a sequence: state reset before this step"),
        Port("s_axis_tlast", "in", 1, "last step of a sequence (carried to m_axis_tlast)"),
        Port("m_axis_tdata", "out", _data_width(out_fields), out_meaning, out_kind, out_fields),
        Port("m_axis_tvalid", "out", 1, "output beat valid"),
        Port("m_axis_tready", "in", 1, "the sink accepts an output beat"),
        Port("m_axis_tuser", "out", 1, "the input beat's tuser, carried along"),
        Port("m_axis_tlast", "out", 1, "the input beat's tlast, carried along"),
    )


# ------------------------------------------------------------------------------ manifest
@dataclass(frozen=True)
class Memory:
    """One weight memory the generator built (what the energy model prices).

    Attributes
    ----------
    name : str
        Memory name in the design (``rom_hh0``, ...).
    matrix : str
        The model tensor it holds: ``layer{l}.w_ih``, ``layer{l}.w_hh`` or ``head.w``.
    depth : int
        Words.
    width : int
        Bits per word.
    reads_per_timestep : int
        Word reads in one timestep.
    """

    name: str
    matrix: str
    depth: int
    width: int
    reads_per_timestep: int

    @property
    def bits(self) -> int:
        return self.depth * self.width


@dataclass(frozen=True)
class DesignConfig:
    """What the design was generated from: the model's shape and the generator's options."""

    cell: str
    method: str
    input_kind: str
    input_size: int
    hidden_size: int
    output_size: int | None
    layers: int
    lanes: int
    unrolled: bool
    datapath: str
    nonlinearity: str
    #: Folded weight ROMs hold only the nonzero weights in at least one phase (``False``: every
    #: weight, with ``--no-skip`` or when no phase's zeros save a step; ``cycle_formula`` names
    #: the phases of each kind).
    skip_zeros: bool = True


_INT_FIELDS = ("cycles_per_timestep", "latency")
#: Fields a reader may do without, and what they mean when absent.
_OPTIONAL = {"lint_waiver": "", "model_file": "model.npz", "generator_version": "",
             "model_hash": "", "cycle_formula": "", "verilog_standard": "Verilog-2005",
             "generation_seconds": 0.0, "verilog_bytes": 0, "version": MANIFEST_VERSION}


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` of a design folder.

    Attributes
    ----------
    design, top : str
        Design (folder) name and Verilog top module name.
    verilog, lint_waiver, model_file : str
        File names inside the folder (``lint_waiver`` may be empty: no waiver).
    generator_version, model_hash : str
        Who wrote it, and the golden model's hash (must match ``model_file``).
    config : DesignConfig
    formats : dict of str to Fixed
        The model's activation formats.
    ports : tuple of Port
        Every top-level port (:func:`axis_ports`).
    cycles_per_timestep, latency : int
        Exact cycles between input handshakes with no stalls, and from an input handshake to its
        output's valid (docs/hardware.md); simulation checks both.
    cycle_phases : dict of str to int
        Cycles per phase (they add up to ``cycles_per_timestep``).
    cycle_formula : str
        How the count follows from the model and options.
    memories : tuple of Memory
        Weight memories built (empty for unrolled designs: weights are wiring).
    verilog_standard : str
        Language of the Verilog file.
    generation_seconds : float
    verilog_bytes : int
    version : int
        :data:`MANIFEST_VERSION`.
    """

    design: str
    top: str
    verilog: str
    lint_waiver: str
    model_file: str
    generator_version: str
    model_hash: str
    config: DesignConfig
    formats: dict
    ports: tuple[Port, ...]
    cycles_per_timestep: int
    latency: int
    cycle_phases: dict
    cycle_formula: str
    memories: tuple[Memory, ...] = ()
    verilog_standard: str = "Verilog-2005"
    generation_seconds: float = 0.0
    verilog_bytes: int = 0
    version: int = field(default=MANIFEST_VERSION)

    # ---------------------------------------------------------------------------- access
    def port(self, name: str) -> Port:
        """The port called ``name`` (KeyError if there is none)."""
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(f"{self.design}: no port {name!r}")

    @property
    def s_data(self) -> Port:
        """``s_axis_tdata``."""
        return self.port("s_axis_tdata")

    @property
    def m_data(self) -> Port:
        """``m_axis_tdata``."""
        return self.port("m_axis_tdata")

    @property
    def weight_memory_bits(self) -> int:
        """Bits of every weight memory together."""
        return sum(m.bits for m in self.memories)

    # ------------------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        d = asdict(self)
        d["formats"] = {k: v.to_dict() for k, v in self.formats.items()}
        d["ports"] = [p.to_dict() for p in self.ports]
        return d

    def write(self, folder) -> Path:
        """Write ``folder/manifest.json`` atomically; returns its path."""
        path = Path(folder) / MANIFEST_FILE
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return path

    @classmethod
    def from_dict(cls, d: dict, where: str = MANIFEST_FILE) -> Manifest:
        """Check and convert parsed JSON.

        Raises
        ------
        ManifestError
            Naming ``where`` and the broken field.
        """
        if not isinstance(d, dict):
            raise ManifestError(f"{where}: expected a JSON object")
        if d.get("version") != MANIFEST_VERSION:
            raise ManifestError(
                f"{where}: field 'version': {d.get('version', 1)!r}, this shiftrnn reads "
                f"{MANIFEST_VERSION} (written by {d.get('generator_version', 'an older shiftrnn')}"
                "); regenerate the design with `shiftrnn generate ... --force`")
        key = "?"
        try:
            for key in ("design", "top", "verilog", "config", "ports", *_INT_FIELDS):
                if key not in d:
                    raise KeyError(key)
            parsed = {}
            for key in _INT_FIELDS:
                parsed[key] = int(d[key])
            key = "config"
            parsed["config"] = DesignConfig(**d["config"])
            key = "formats"
            parsed["formats"] = {k: Fixed.from_dict(v, where=f"{where}: formats.{k}")
                                 for k, v in d.get("formats", {}).items()}
            key = "ports"
            parsed["ports"] = tuple(Port.from_dict(p, f"{where}: ports[{i}]")
                                    for i, p in enumerate(d["ports"]))
            key = "memories"
            parsed["memories"] = tuple(Memory(**m) for m in d.get("memories", ()))
            key = "cycle_phases"
            parsed["cycle_phases"] = {str(k): int(v)
                                      for k, v in d.get("cycle_phases", {}).items()}
        except ManifestError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"{where}: field {key!r}: {type(e).__name__}: {e}") from None
        texts = {k: d.get(k, default) for k, default in _OPTIONAL.items()}
        man = cls(design=str(d["design"]), top=str(d["top"]), verilog=str(d["verilog"]),
                  **texts, **parsed)
        man._check(where)
        return man

    def _check(self, where: str) -> None:
        names = [p.name for p in self.ports]
        for need in ("s_axis_tdata", "m_axis_tdata"):
            if need not in names:
                raise ManifestError(f"{where}: field 'ports': no {need}")
        if not self.s_data.fields or not self.m_data.fields:
            raise ManifestError(f"{where}: field 'ports': s_axis_tdata and m_axis_tdata need "
                                "fields")
        if self.cycles_per_timestep < 1 or self.latency < 1:
            raise ManifestError(f"{where}: cycles_per_timestep and latency must be >= 1")

    @classmethod
    def read(cls, folder) -> Manifest:
        """Read ``folder/manifest.json``.

        Raises
        ------
        ManifestError
            No such folder or file, not JSON, or a field is missing or malformed.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise ManifestError(f"{folder}: no such design folder (make one with `shiftrnn "
                                f"generate MODEL --lanes N --out {folder}`)")
        path = folder / MANIFEST_FILE
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise ManifestError(f"{path}: missing (not a design folder written by shiftrnn "
                                "generate)") from None
        except ValueError as e:
            raise ManifestError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(d, str(path))
