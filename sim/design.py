"""A generated design as the simulators see it: Verilog, manifest, golden model, port packing.

A design folder (``rtl_out/<design>/``) holds ``<design>.v``, ``manifest.json`` and ``model.npz``.
:class:`Design` reads and checks all three and knows how to pack one timestep's input into an
``s_axis_tdata`` word and unpack an ``m_axis_tdata`` word into integers, following the manifest's
``ports`` layout (element ``j`` at bits ``[lsb, lsb + width)``, two's complement for signed
formats, a token input as an unsigned index).
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np

import golden
from golden.evaluation import is_language_model
from golden.manifest import Manifest, ManifestError

__all__ = ["Design", "DesignError"]


class DesignError(ManifestError):
    """A design folder is incomplete or inconsistent; the message names the file and field."""


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
        try:
            #: The folder's :class:`golden.manifest.Manifest`.
            self.manifest = Manifest.read(self.path)
        except DesignError:
            raise
        except ManifestError as e:
            raise DesignError(str(e)) from None
        m = self.manifest
        self.name, self.top = m.design, m.top
        self.cycles_per_timestep, self.latency = m.cycles_per_timestep, m.latency
        #: ``s_axis_tdata`` and ``m_axis_tdata`` (:class:`golden.manifest.Port`: fields, packing).
        self.s_port, self.m_port = m.s_data, m.m_data
        self.verilog = self._find_verilog()
        waiver = m.lint_waiver
        #: Verilator waiver file the generator wrote beside the Verilog (None if none).
        self.lint_waiver = (self.path / waiver) if waiver and (self.path / waiver).is_file() \
            else None
        self.model = golden.load(self.path / m.model_file)
        self._check_model(self.path / "manifest.json")

    def _find_verilog(self) -> Path:
        v = self.path / self.manifest.verilog
        if v.is_file():
            return v
        cands = sorted(self.path.glob("*.v"))
        if len(cands) == 1:
            return cands[0]
        raise DesignError(f"{self.path}: expected {self.name}.v (found {[c.name for c in cands]})")

    def _check_model(self, mpath: Path) -> None:
        model = self.model
        want = self.manifest.model_hash
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
        """Token input with a head over the same alphabet: BPC applies
        (:func:`golden.evaluation.is_language_model`)."""
        return is_language_model(self.model)

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
        c = self.manifest.config
        cfg = ", ".join(f"{k}={getattr(c, k)}"
                        for k in ("cell", "method", "lanes", "unrolled", "datapath"))
        return (f"{self.name} (top {self.top}; {cfg}; {self.cycles_per_timestep} cycles/timestep, "
                f"latency {self.latency})")
