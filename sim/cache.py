"""Content-addressed build cache for Verilated models.

A build lives in ``<cache root>/<kind>-<key[:16]>/`` where the key hashes the Verilog text, the
top name, the toolchain versions and the build options. A build is complete when its
``build.json`` stamp exists; concurrent builders (pytest-xdist workers) serialise on a lock file
beside the folder, so the same design is built once and reused by every later run.

The root is the ``sim`` folder of shiftrnn's one cache root (:func:`golden.cache_root`:
``$SHIFTRNN_CACHE/sim``, else ``$XDG_CACHE_HOME/shiftrnn/sim``, else ``~/.cache/shiftrnn/sim``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import golden

__all__ = ["cache_root", "build_key", "cached_build"]

STAMP = "build.json"


def cache_root() -> Path:
    return golden.cache_root("sim")


def build_key(*parts) -> str:
    """sha256 over the JSON of ``parts`` (strings, numbers, lists, dicts)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_build(kind: str, key: str, build: Callable[[Path], None], *,
                 info: dict | None = None) -> tuple[Path, bool]:
    """Return the build folder for ``key``, building it with ``build(folder)`` if needed.

    Parameters
    ----------
    kind : str
        Folder prefix (``"cocotb"``, ``"fast"``).
    key : str
        Content hash of everything the build depends on.
    build : callable(Path)
        Builds into the (empty) folder; raises on failure (the folder is then removed).
    info : dict, optional
        Written into the stamp for people reading the cache.

    Returns
    -------
    (Path, bool)
        The folder and whether it was built now (False: reused from the cache).
    """
    root = cache_root()
    folder = root / f"{kind}-{key[:16]}"
    stamp = folder / STAMP
    if stamp.is_file():
        return folder, False
    with _locked(root / f".{kind}-{key[:16]}.lock"):
        if stamp.is_file():
            return folder, False
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        t0 = time.perf_counter()
        try:
            build(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        data = {"key": key, "kind": kind, "seconds": round(time.perf_counter() - t0, 2),
                **(info or {})}
        stamp.write_text(json.dumps(data, indent=1, default=str))
    return folder, True
