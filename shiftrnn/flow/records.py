"""Typed records to JSON and back: what stages return is what ``flow_state.json`` stores.

Every stage returns a frozen dataclass; :func:`to_jsonable` turns it (and anything nested in it)
into JSON values, :func:`from_jsonable` rebuilds it from its type annotations, so that
``to_jsonable(from_jsonable(T, to_jsonable(r))) == to_jsonable(r)`` (a stage's inputs hash the
same whether its upstream results were computed in this run or read back). A missing or
malformed field raises :class:`RecordError` rather than falling back to a default, so a damaged
state file makes the flow run the stage again instead of reporting a made-up number.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import numpy as np

__all__ = ["RecordError", "from_jsonable", "to_jsonable"]


class RecordError(ValueError):
    """Recorded JSON does not match the record type (a damaged or older state file)."""


def to_jsonable(obj):
    """Dataclasses, tuples, numpy scalars and paths to plain JSON values (dict keys as str)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def from_jsonable(tp, data, where: str = "record"):
    """Rebuild a value of annotated type ``tp`` from :func:`to_jsonable` output.

    Supported annotations: dataclasses, ``X | None``, ``tuple[X, ...]``, ``dict[str, X]``,
    ``list``/``dict`` (taken as they are), ``int``, ``float``, ``bool``, ``str``, ``object``.

    Raises
    ------
    RecordError
        A field is missing or has the wrong type.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return from_jsonable(inner[0], data, where)
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, data, where)
    if origin is tuple:
        _need(isinstance(data, list | tuple), where, "a list", data)
        return tuple(from_jsonable(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
    if origin is dict:
        _need(isinstance(data, dict), where, "an object", data)
        return {k: from_jsonable(args[1], v, f"{where}.{k}") for k, v in data.items()}
    return _scalar(tp, data, where)


def _dataclass(tp, data, where: str):
    _need(isinstance(data, dict), where, f"an object ({tp.__name__})", data)
    hints = typing.get_type_hints(tp)
    kw = {}
    for f in dataclasses.fields(tp):
        if f.name not in data:
            raise RecordError(f"{where}: field {f.name!r} is missing")
        kw[f.name] = from_jsonable(hints[f.name], data[f.name], f"{where}.{f.name}")
    return tp(**kw)


def _scalar(tp, data, where: str):
    if tp is object or tp is typing.Any:
        return data
    if tp is float:
        _need(isinstance(data, int | float) and not isinstance(data, bool), where, "a number",
              data)
        return data  # as recorded: an int stays an int, so a record hashes the same again
    if tp is int:
        _need(isinstance(data, int) and not isinstance(data, bool), where, "an integer", data)
        return data
    if tp in (bool, str, list, dict):
        _need(isinstance(data, tp), where, tp.__name__, data)
        return data
    raise RecordError(f"{where}: unsupported annotation {tp!r}")


def _need(ok: bool, where: str, what: str, data) -> None:
    if not ok:
        raise RecordError(f"{where}: expected {what}, got {type(data).__name__}")
