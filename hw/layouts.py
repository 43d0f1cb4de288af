"""Stream payload layouts and tdata packing, shared by the hardware, its tests and the manifest."""

from __future__ import annotations

from amaranth.lib import data

from golden import Fixed, Model

__all__ = ["beat_layout", "input_fields", "output_fields", "pack", "unpack"]


def input_fields(model: Model) -> tuple[str, list[dict]]:
    """(kind, fields) of ``s_axis_tdata``: a token index or ``input_size`` Fixed elements."""
    if model.input_kind == "token":
        w = max(1, (model.input_size - 1).bit_length())
        fmt = Fixed(w, 0, signed=False) if w >= 1 else Fixed(1, 0, signed=False)
        return "token", [{"name": "token", "lsb": 0, "width": w, "format": fmt.to_dict()}]
    f = model.formats["x"]
    return "vector", [
        {"name": f"x[{j}]", "lsb": j * f.bits, "width": f.bits, "format": f.to_dict()}
        for j in range(model.input_size)
    ]


def output_fields(model: Model) -> tuple[str, list[dict]]:
    """(kind, fields) of ``m_axis_tdata``: logits when there is a head, else the last hidden."""
    if model.head is not None:
        f, n, name = model.formats["out"], model.output_size, "logits"
    else:
        f, n, name = model.formats["h"], model.hidden_size, "h"
    return name, [
        {"name": f"{name}[{j}]", "lsb": j * f.bits, "width": f.bits, "format": f.to_dict()}
        for j in range(n)
    ]


def fields_width(fields: list[dict]) -> int:
    return max(fd["lsb"] + fd["width"] for fd in fields)


def beat_layout(width: int) -> data.StructLayout:
    """One stream beat: ``data`` plus ``first`` (AXI tuser: state reset) and ``last`` (tlast)."""
    return data.StructLayout({"data": width, "first": 1, "last": 1})


def pack(values, fields: list[dict]) -> list[int]:
    """Pack integer rows (n_beats, n_fields) into tdata words (Python ints)."""
    out = []
    for row in values:
        word = 0
        for v, fd in zip(row, fields, strict=True):
            word |= (int(v) & ((1 << fd["width"]) - 1)) << fd["lsb"]
        out.append(word)
    return out


def unpack(words, fields: list[dict]) -> list[list[int]]:
    """Unpack tdata words into integer rows, sign-extending signed fields."""
    rows = []
    for word in words:
        row = []
        for fd in fields:
            v = (int(word) >> fd["lsb"]) & ((1 << fd["width"]) - 1)
            if fd["format"]["signed"] and v >> (fd["width"] - 1):
                v -= 1 << fd["width"]
            row.append(v)
        rows.append(row)
    return rows
