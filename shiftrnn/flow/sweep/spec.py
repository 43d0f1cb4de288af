"""The sweep file: a base flow configuration and the values of its keys, expanded to points.

.. code-block:: toml

    base = "gru.toml"              # the flow configuration every point starts from
    name = "gru-sweep"             # optional (default: the file's name)
    description = "..."            # optional

    [grid]                         # every combination: 3 x 2 = 6 points
    "model.method" = ["binary", "ternary", "exponential"]
    "hardware.lanes" = [1, 4]

    [[points]]                     # and points of their own
    "model.method" = "pow2-ternary"
    "model.method_params" = { i = 0, f = 3 }

A key is ``SECTION.KEY`` of the flow configuration (``model.method``; unquoted dotted keys are the
same). Each value is checked by the configuration's own rules (:func:`..config.check_value`:
one line naming the file, the key and the allowed values); each point's configuration is then
built by :func:`..config.parse_config` from the base file's text with the point's values, so a
combination the flow refuses (``lanes`` with ``unrolled``, a model file with a ``method``) is that
point's error, recorded in the results, not the sweep's. Paths in the sweep file are relative to
it; the base file's own paths stay relative to the base file.

Every point keeps the base's design ``name``: the Verilog of two points with the same model and
hardware is the same file, so Verilator and yosys builds are shared through their caches.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..config import (
    SCHEMA,
    FlowConfig,
    check_name,
    check_value,
    close_hint,
    load_config,
    misplaced_hint,
    parse_config,
)
from ..errors import FlowError

__all__ = ["Sweep", "SweepPoint", "load_sweep", "parse_sweep"]

_TOP = ("base", "name", "description", "grid", "points")
#: Keys of the top level of a flow configuration that a sweep may set (``name`` is the base's).
_TOP_KEYS = ("description",)
_MAX_NAME = 80


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep.

    Attributes
    ----------
    id : str
        sha256 (16 hex digits) of the point's values: stable across runs and files.
    name : str
        Folder name from the values, e.g. ``method-binary_lanes-4`` (``base``: no values).
    values : dict
        ``SECTION.KEY`` -> the value as the sweep file gives it, in the file's order.
    config : FlowConfig or None
        The point's flow configuration (None when the flow refuses the combination).
    error : str or None
        Why the configuration was refused (one line).
    """

    id: str
    name: str
    values: dict
    config: FlowConfig | None
    error: str | None


@dataclass(frozen=True)
class Sweep:
    """A checked sweep file.

    Attributes
    ----------
    name, description, source, text : str
        The sweep's name (outputs go to ``rtl_out/NAME``), its line, its file and its text.
    base : FlowConfig
        The base configuration.
    keys : tuple of str
        Every swept ``SECTION.KEY``, in the file's order.
    points : tuple of SweepPoint
        The grid's combinations, then the ``[[points]]``.
    """

    name: str
    description: str
    source: str
    text: str
    base: FlowConfig
    keys: tuple[str, ...]
    points: tuple[SweepPoint, ...]


# ==================================================================================== keys
def _split(where: str, dotted: str) -> tuple[str, str]:
    """``SECTION.KEY`` -> (section, key) of the flow schema; one line naming the fix if not."""
    section, _, key = dotted.partition(".") if "." in dotted else ("", "", dotted)
    if section in SCHEMA and key in SCHEMA[section] and (section or key in _TOP_KEYS):
        return section, key
    known = [f"{s}.{k}" if s else k for s, opts in SCHEMA.items() for k in opts
             if s or k in _TOP_KEYS]
    hint = misplaced_hint(section, key) or close_hint(dotted, known)
    raise FlowError(f"{where}: unknown key {dotted!r}{hint}; a sweep key is "
                    "SECTION.KEY of the flow configuration, e.g. \"hardware.lanes\" or "
                    "\"model.method\"")


def _flatten(where: str, table: dict) -> dict:
    """``{"model.method": v}`` and ``{"model": {"method": v}}`` (unquoted dotted keys) alike."""
    flat = {}
    for k, v in table.items():
        if "." not in k and k in SCHEMA and k and isinstance(v, dict):
            flat.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            flat[k] = v
    for k in flat:
        _split(where, k)
    return flat


def _checked(where: str, dotted: str, value, sweep_dir: Path):
    """A sweep value checked by the flow's rules, as it goes into the point's configuration."""
    section, key = _split(where, dotted)
    opt = SCHEMA[section][key]
    checked = check_value(where, opt, value, sweep_dir)
    return checked if opt.kind == "path" else value


# ================================================================================== points
def _slug(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return ".".join(f"{k}{_slug(v)}" for k, v in sorted(value.items())) or "none"
    if isinstance(value, list | tuple):
        return ".".join(_slug(v) for v in value) or "none"
    text = str(value)
    if "/" in text or text.endswith((".npz", ".pt", ".txt", ".npy")):
        text = Path(text).stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "x"


def _point_id(values: dict) -> str:
    return hashlib.sha256(json.dumps(sorted(values.items()), default=str).encode()
                          ).hexdigest()[:16]


def _point_name(values: dict, keys: tuple[str, ...]) -> str:
    """``method-binary_lanes-4``: each key by its last part unless two keys share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    short = {k: k.rsplit(".", 1)[-1] if last.count(k.rsplit(".", 1)[-1]) == 1 else k
             for k in keys}
    name = "_".join(f"{short[k]}-{_slug(v)}" for k, v in values.items()) or "base"
    if len(name) > _MAX_NAME:
        name = f"{name[:_MAX_NAME - 17]}-{_point_id(values)}"
    return name


def _grid(where: str, grid: dict, sweep_dir: Path) -> list[dict]:
    for k, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            raise FlowError(f"{where}: {k!r} must be a non-empty list of values, e.g. "
                            f"{k!r} = [1, 2], got {vals!r}")
        section, key = _split(where, k)
        for i, v in enumerate(vals):
            hint = ""
            if SCHEMA[section][key].kind == "list" and not isinstance(v, list):
                hint = f" (each value of {k!r} is a list itself: [[\"ice40\"], [\"ecp5\"]])"
            try:
                _checked(f"{where} value {i + 1} of [{section}] {key}", k, v, sweep_dir)
            except FlowError as e:
                raise FlowError(f"{e}{hint}") from None
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _explicit(source: str, points, sweep_dir: Path) -> list[dict]:
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise FlowError(f"{source}: points must be an array of tables: [[points]] then "
                        "\"SECTION.KEY\" = value lines")
    out = []
    for j, p in enumerate(points):
        where = f"{source}: [[points]] {j + 1}"
        flat = _flatten(where, p)
        for k, v in flat.items():
            section, key = _split(where, k)
            _checked(f"{where}: [{section}] {key}", k, v, sweep_dir)
        out.append(flat)
    return out


def _point_config(sweep: str, base: FlowConfig, base_data: dict, values: dict,
                  sweep_dir: Path, name: str) -> FlowConfig:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base_data.items()}
    for dotted, v in values.items():
        section, key = _split(sweep, dotted)
        v = _checked(sweep, dotted, v, sweep_dir)
        if section:
            data.setdefault(section, {})[key] = v
        else:
            data[key] = v
    if "description" not in values:
        data["description"] = f"{base.description} [{sweep} point {name}]".lstrip()
    lines = [f"{k} = {json.dumps(v, default=str)}" for k, v in values.items()]
    text = f"{base.text.rstrip()}\n\n# sweep point {name} ({sweep}):\n" + "".join(
        f"#   {ln}\n" for ln in lines)
    base_dir = Path(base.source).resolve().parent
    return parse_config(data, source=f"{sweep} point {name}", base_dir=base_dir,
                        default_name=base.name, text=text)


def _points(source: str, base: FlowConfig, base_data: dict, values_list: list[dict],
            sweep_dir: Path) -> tuple[SweepPoint, ...]:
    keys = tuple(dict.fromkeys(k for v in values_list for k in v))
    seen: dict[str, int] = {}
    points = []
    for i, values in enumerate(values_list):
        pid = _point_id(values)
        if pid in seen:
            raise FlowError(f"{source}: point {i + 1} ({_point_name(values, keys)}) repeats "
                            f"point {seen[pid] + 1}; remove one of them")
        seen[pid] = i
        points.append((pid, _point_name(values, keys), values))
    names = [n for _, n, _ in points]
    out = []
    for pid, name, values in points:
        if names.count(name) > 1:
            name = f"{name[:_MAX_NAME - 17]}-{pid}"
        try:
            cfg, error = _point_config(source, base, base_data, values, sweep_dir, name), None
        except FlowError as e:
            cfg, error = None, str(e)
        out.append(SweepPoint(pid, name, values, cfg, error))
    return tuple(out)


def parse_sweep(data: dict, *, source: str, sweep_dir: Path, default_name: str,
                text: str = "") -> Sweep:
    """Check a parsed sweep document and expand it to points.

    Raises
    ------
    FlowError
        One line naming the file, the key and the allowed values: an unknown key, a value the
        flow configuration refuses, no points, a repeated point, a base file that is missing
        or fails its own checks.
    """
    unknown = [k for k in data if k not in _TOP]
    if unknown:
        raise FlowError(f"{source}: unknown key {unknown[0]!r}{close_hint(unknown[0], _TOP)}; a "
                        f"sweep file has {', '.join(_TOP)}")
    base_rel = data.get("base")
    if not isinstance(base_rel, str) or not base_rel:
        raise FlowError(f"{source}: base: the flow configuration the points start from is "
                        "missing; add base = \"FILE.toml\" (relative to the sweep file)")
    base_path = (sweep_dir / base_rel).resolve()
    if not base_path.is_file():
        raise FlowError(f"{source}: base: {base_path}: no such file; fix the path (relative "
                        "to the sweep file)")
    base = load_config(base_path)
    name = data.get("name", default_name)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise FlowError(f"{source}: name and description must be strings")
    check_name(name, f"{source}: name")
    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise FlowError(f"{source}: grid must be a table: [grid] then \"SECTION.KEY\" = [...]")
    values = _grid(f"{source}: [grid]", _flatten(f"{source}: [grid]", grid), sweep_dir) \
        if grid else []
    values += _explicit(source, data.get("points", []), sweep_dir)
    if not values:
        raise FlowError(f"{source}: no points; add a [grid] of \"SECTION.KEY\" = [values] or "
                        "[[points]] tables")
    base_data = tomllib.loads(base.text)
    points = _points(source, base, base_data, values, sweep_dir)
    keys = tuple(dict.fromkeys(k for p in points for k in p.values))
    return Sweep(name, description, source, text, base, keys, points)


def load_sweep(path) -> Sweep:
    """Read and check a sweep file (TOML); see the module docstring for the format.

    Raises
    ------
    FlowError
        The file is missing, not TOML, or fails :func:`parse_sweep`.
    """
    path = Path(path)
    if not path.is_file():
        raise FlowError(f"{path}: no such sweep file; see examples/sweeps/gru.toml for the "
                        "format")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise FlowError(f"{path}: not a valid TOML text file ({e}); see "
                        "examples/sweeps/gru.toml") from None
    return parse_sweep(data, source=str(path), sweep_dir=path.resolve().parent,
                       default_name=path.stem, text=text)
