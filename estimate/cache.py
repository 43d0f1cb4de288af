"""On-disk cache of tool results, keyed by a sha256 of everything that determines them.

Location: the ``cache_dir`` argument if given, else the ``estimate`` folder of shiftrnn's one
cache root (:func:`golden.cache_root`: ``$SHIFTRNN_CACHE``, default ``~/.cache/shiftrnn``).
Entries are written with :func:`golden.atomic_write_bytes`, so a crash or a concurrent writer
never leaves a torn entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import golden

__all__ = ["cache_root", "cache_key", "load_entry", "work_dir"]

#: Bump when the yosys/nextpnr scripts or result formats change: it invalidates old entries.
FLOW_VERSION = 1


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return (and create) the estimate cache directory.

    Parameters
    ----------
    cache_dir : path-like, optional
        Explicit directory; overrides the environment.

    Returns
    -------
    Path
        The directory.
    """
    if cache_dir is None:
        return golden.cache_root("estimate")
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_key(**fields) -> str:
    """Return the sha256 hex digest of the fields (plus :data:`FLOW_VERSION`) as sorted JSON.

    Parameters
    ----------
    **fields
        JSON-serialisable values that determine the result (design text, top, target,
        tool versions, options).

    Returns
    -------
    str
        64 hex digits.
    """
    blob = json.dumps({"flow": FLOW_VERSION, **fields}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_entry(path: Path) -> dict | None:
    """Return a cached JSON entry, or None if absent or unreadable.

    Parameters
    ----------
    path : Path
        Entry file.

    Returns
    -------
    dict or None
        The parsed entry.
    """
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def work_dir(root: Path, prefix: str) -> Path:
    """Create a fresh scratch directory for one tool run under ``root/tmp``.

    Parameters
    ----------
    root : Path
        Cache root (scratch lives on the same filesystem, so results move in atomically).
    prefix : str
        Directory-name prefix.

    Returns
    -------
    Path
        The new directory.
    """
    tmp = root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))
