"""The stream beat layout shared by the hardware and its tests.

The ``tdata`` bit layout (fields, formats, packing) is a fact of the model and is owned by
:mod:`golden.manifest` (:func:`~golden.manifest.input_fields`, :class:`~golden.manifest.Port`).
"""

from __future__ import annotations

from amaranth.lib import data

__all__ = ["beat_layout"]


def beat_layout(width: int) -> data.StructLayout:
    """One stream beat: ``data`` plus ``first`` (AXI tuser: state reset) and ``last`` (tlast)."""
    return data.StructLayout({"data": width, "first": 1, "last": 1})
