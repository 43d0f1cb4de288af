"""A generated design as the simulators see it: Verilog, manifest, golden model, port packing.

A design folder (``rtl_out/<design>/``) holds ``<design>.v``, ``manifest.json`` and ``model.npz``.
:class:`Design` reads and checks all three and knows how to pack one timestep's input into an
``s_axis_tdata`` word and unpack an ``m_axis_tdata`` word into integers, following the manifest's
``ports`` layout (element ``j`` at bits ``[lsb, lsb + width)``, two's complement for signed
formats, a token input as an unsigned index).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

import golden

__all__ = ["Design", "DesignError", "Field", "PortLayout"]


class DesignError(ValueError):
    """A design folder is incomplete or inconsistent; the message names the file and field."""


@dataclass(frozen=True)
class Field:
    """One element of a port: bits ``[lsb, lsb + width)`` in ``fmt``."""

    name: str
    lsb: int
    width: int
    signed: bool


@dataclass(frozen=True)
class PortLayout:
    """Bit layout of one ``tdata`` port, as the manifest gives it.

    Attributes
    ----------
    width : int
        Port width in bits.
    kind : str
        ``'token'`` (an unsigned index) or a vector kind (``'vector'``; hw names output vectors
        ``'h'`` or ``'logits'``).
    fields : tuple of Field
        Elements in vector order (element 0 first).
    """

    width: int
    kind: str
    fields: tuple[Field, ...]

    @classmethod
    def from_manifest(cls, d: dict, where: str) -> PortLayout:
        try:
            width = int(d["width"])
            kind = str(d.get("kind", "vector"))
            fields = []
            for i, f in enumerate(d["fields"]):
                fmt = f.get("format", {})
                fields.append(Field(str(f.get("name", f"e{i}")), int(f["lsb"]), int(f["width"]),
                                    bool(fmt.get("signed", True)) and kind != "token"))
        except (KeyError, TypeError, ValueError) as e:
            raise DesignError(f"{where}: expected {{width, kind, fields: [{{name, lsb, width, "
                              f"format}}]}} ({type(e).__name__}: {e})") from None
        if width < 1 or not fields:
            raise DesignError(f"{where}: width must be >= 1 and fields non-empty")
        for f in fields:
            if f.width < 1 or f.width > 62 or f.lsb < 0 or f.lsb + f.width > width:
                raise DesignError(f"{where}: field {f.name} bits [{f.lsb}, {f.lsb + f.width}) do "
                                  f"not fit a {width}-bit port (or wider than 62 bits)")
        return cls(width, kind, tuple(fields))

    @property
    def words(self) -> int:
        """32-bit words per beat (Verilator's word size for wide ports)."""
        return (self.width + 31) // 32

    @property
    def size(self) -> int:
        return len(self.fields)

    # ----------------------------------------------------------------- packing
    def pack_words(self, values: np.ndarray) -> np.ndarray:
        """Pack element integers into little-endian 32-bit words.

        Parameters
        ----------
        values : ndarray
            Shape ``(beats, size)`` (or ``(beats,)`` for a token port), any integer dtype.

        Returns
        -------
        ndarray of uint32, shape ``(beats, words)``.
        """
        v = np.asarray(values, dtype=np.int64)
        if v.ndim == 1:
            v = v[:, None]
        if v.shape[1] != self.size:
            raise ValueError(f"expected {self.size} elements per beat, got {v.shape[1]}")
        nbits = self.words * 32
        out = np.zeros((v.shape[0], self.words), np.uint32)
        step = 1 << 16
        for s in range(0, v.shape[0], step):
            chunk = v[s:s + step]
            bits = np.zeros((chunk.shape[0], nbits), np.uint8)
            for j, f in enumerate(self.fields):
                col = chunk[:, j]
                self._check_range(col, f)
                sh = np.arange(f.width, dtype=np.int64)
                bits[:, f.lsb:f.lsb + f.width] = ((col[:, None] >> sh) & 1).astype(np.uint8)
            packed = np.packbits(bits, axis=1, bitorder="little")
            out[s:s + step] = packed.view("<u4").reshape(chunk.shape[0], self.words)
        return out

    @staticmethod
    def _check_range(col: np.ndarray, f: Field) -> None:
        lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else (
            0, (1 << f.width) - 1)
        if col.size and (col.min() < lo or col.max() > hi):
            raise ValueError(f"value out of range for field {f.name} ({f.width} bits, "
                             f"{'signed' if f.signed else 'unsigned'}): "
                             f"[{col.min()}, {col.max()}]")

    def unpack_words(self, words: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`pack_words`: ``(beats, words)`` uint32 to ``(beats, size)`` int64."""
        w = np.ascontiguousarray(np.asarray(words, dtype="<u4")).reshape(-1, self.words)
        out = np.empty((w.shape[0], self.size), np.int64)
        step = 1 << 16
        for s in range(0, w.shape[0], step):
            chunk = w[s:s + step]
            bits = np.unpackbits(chunk.view(np.uint8), axis=1, bitorder="little")
            for j, f in enumerate(self.fields):
                weights = np.int64(1) << np.arange(f.width, dtype=np.int64)
                v = bits[:, f.lsb:f.lsb + f.width].astype(np.int64) @ weights
                if f.signed:
                    v = np.where(v >= (1 << (f.width - 1)), v - (1 << f.width), v)
                out[s:s + step, j] = v
        return out

    def pack_int(self, values) -> int:
        """One beat as a Python integer (for cocotb)."""
        words = self.pack_words(np.asarray(values, dtype=np.int64).reshape(1, -1))[0]
        return int.from_bytes(words.astype("<u4").tobytes(), "little")

    def unpack_int(self, value: int) -> np.ndarray:
        """One beat from a Python integer (for cocotb)."""
        raw = int(value).to_bytes(self.words * 4, "little")
        return self.unpack_words(np.frombuffer(raw, dtype="<u4").reshape(1, -1))[0]


class Design:
    """One design folder, checked.

    Parameters
    ----------
    path : path-like
        ``rtl_out/<design>/`` with ``<design>.v``, ``manifest.json`` and ``model.npz``.

    Raises
    ------
    DesignError
        A file is missing or the manifest does not match the model.
    """

    def __init__(self, path):
        self.path = Path(path).resolve()
        if not self.path.is_dir():
            raise DesignError(f"{path}: no such design folder (run `shiftrnn generate` first)")
        mpath = self.path / "manifest.json"
        try:
            self.manifest = json.loads(mpath.read_text())
        except FileNotFoundError:
            raise DesignError(f"{mpath}: missing (not a generated design folder)") from None
        except json.JSONDecodeError as e:
            raise DesignError(f"{mpath}: not valid JSON ({e})") from None
        m = self.manifest
        for key in ("design", "top", "ports", "cycles_per_timestep", "latency"):
            if key not in m:
                raise DesignError(f"{mpath}: field '{key}': missing")
        self.name = str(m["design"])
        self.top = str(m["top"])
        self.cycles_per_timestep = int(m["cycles_per_timestep"])
        self.latency = int(m["latency"])
        ports = m["ports"]
        for p in ("s_axis_tdata", "m_axis_tdata"):
            if p not in ports:
                raise DesignError(f"{mpath}: field 'ports.{p}': missing")
        self.s_port = PortLayout.from_manifest(ports["s_axis_tdata"],
                                               f"{mpath}: ports.s_axis_tdata")
        self.m_port = PortLayout.from_manifest(ports["m_axis_tdata"],
                                               f"{mpath}: ports.m_axis_tdata")
        self.verilog = self._find_verilog()
        waiver = m.get("lint_waiver")
        #: Verilator waiver file the generator wrote beside the Verilog (None if none).
        self.lint_waiver = (self.path / waiver) if waiver and (self.path / waiver).is_file() \
            else None
        self.model = golden.load(self.path / "model.npz")
        self._check_model(mpath)

    def _find_verilog(self) -> Path:
        v = self.path / f"{self.name}.v"
        if v.is_file():
            return v
        cands = sorted(self.path.glob("*.v"))
        if len(cands) == 1:
            return cands[0]
        raise DesignError(f"{self.path}: expected {self.name}.v (found {[c.name for c in cands]})")

    def _check_model(self, mpath: Path) -> None:
        model = self.model
        want = self.manifest.get("model_hash")
        if want and want != model.hash():
            raise DesignError(f"{mpath}: field 'model_hash' does not match model.npz "
                              "(the Verilog and the model come from different runs)")
        if self.s_port.kind not in ("token", "vector"):
            raise DesignError(f"{mpath}: ports.s_axis_tdata.kind must be 'token' or 'vector', "
                              f"got {self.s_port.kind!r}")
        if (self.s_port.kind == "token") != (model.input_kind == "token"):
            raise DesignError(f"{mpath}: ports.s_axis_tdata.kind {self.s_port.kind!r} but the "
                              f"model's input is {model.input_kind!r}")
        if model.input_kind == "token":
            if self.s_port.size != 1:
                raise DesignError(f"{mpath}: token input needs one s_axis_tdata field")
        elif self.s_port.size != model.input_size:
            raise DesignError(f"{mpath}: s_axis_tdata has {self.s_port.size} fields, the model "
                              f"has input_size {model.input_size}")
        n_out = model.output_size or model.hidden_size
        if self.m_port.size != n_out:
            raise DesignError(f"{mpath}: m_axis_tdata has {self.m_port.size} fields, the model "
                              f"outputs {n_out}")
        if self.cycles_per_timestep < 1 or self.latency < 1:
            raise DesignError(f"{mpath}: cycles_per_timestep and latency must be >= 1")

    # ------------------------------------------------------------------ facts
    @cached_property
    def verilog_hash(self) -> str:
        """sha256 of the Verilog text and the top name (the build-cache key's core)."""
        h = hashlib.sha256(self.verilog.read_bytes())
        h.update(b"\0top=" + self.top.encode())
        return h.hexdigest()

    @property
    def is_language_model(self) -> bool:
        """Token input with a dense head: logits over the input alphabet (BPC applies)."""
        return self.model.input_kind == "token" and self.model.head is not None

    def random_inputs(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """One random input sequence: tokens ``(length,)`` or Fixed ints ``(length, input)``.

        Vector inputs mix full-range values (to hit saturation) with small ones.
        """
        m = self.model
        if m.input_kind == "token":
            return rng.integers(0, m.input_size, size=length, dtype=np.int64)
        fx = m.formats["x"]
        full = rng.integers(fx.min_int, fx.max_int + 1, size=(length, m.input_size))
        small = rng.integers(-(fx.one or 1), (fx.one or 1) + 1, size=(length, m.input_size))
        pick = rng.random((length, 1)) < 0.5
        return np.clip(np.where(pick, full, small), fx.min_int, fx.max_int).astype(np.int64)

    def golden_outputs(self, seqs: list[np.ndarray]) -> list[np.ndarray]:
        """Expected ``m_axis_tdata`` elements of each sequence, each run from zero state.

        Sequences are padded to one batch (the model is causal, so a prefix's outputs do not
        depend on the padding) and run through ``model.run_int`` once.
        """
        if not seqs:
            return []
        T = max(len(s) for s in seqs)
        first = np.asarray(seqs[0])
        batch = np.zeros((len(seqs), T) + first.shape[1:], np.int64)
        for i, s in enumerate(seqs):
            batch[i, :len(s)] = s
        out = self.model.run_int(batch).output_int
        return [out[i, :len(s)] for i, s in enumerate(seqs)]

    def summary(self) -> str:
        c = self.manifest.get("config", {})
        keys = ("cell", "method", "lanes", "unrolled", "datapath")
        cfg = ", ".join(f"{k}={c[k]}" for k in keys if k in c)
        return (f"{self.name} (top {self.top}; {cfg}; {self.cycles_per_timestep} cycles/timestep, "
                f"latency {self.latency})")
