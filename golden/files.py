"""Files and folders written by shiftrnn: one atomic write, ordinary permissions, one cache root.

* :func:`atomic_write_bytes` is the only way shiftrnn writes a file it keeps: a temporary file in
  the same folder, then a rename, so a crash or a concurrent writer never leaves a torn file.
* :func:`fresh_folder` makes a temporary folder (for a design or a run that is renamed into
  place when complete) with ordinary permissions, not :func:`tempfile.mkdtemp`'s 0700.
* :func:`cache_root` is the one cache location, ``$SHIFTRNN_CACHE`` (default
  ``$XDG_CACHE_HOME/shiftrnn``, else ``~/.cache/shiftrnn``); each user of the cache (the tool
  results of ``estimate``, the Verilator builds of ``sim``) has a sub-folder of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["CACHE_ENV", "atomic_write_bytes", "cache_root", "fresh_folder"]

#: The environment variable that moves every shiftrnn cache.
CACHE_ENV = "SHIFTRNN_CACHE"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The file gets ordinary permissions (``0666`` less the umask), like ``open(path, "wb")``.

    Parameters
    ----------
    path : path-like
        Destination (its folder is created if needed).
    data : bytes
        The whole content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fresh_folder(parent, prefix: str) -> Path:
    """A new, empty folder under ``parent`` with ordinary permissions (``0777`` less the umask).

    Parameters
    ----------
    parent : path-like
        Where (created if needed); put it on the file system of the final location so that the
        folder can be renamed into place.
    prefix : str
        Start of the folder's name (a random suffix follows).

    Returns
    -------
    Path
    """
    Path(parent).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(folder, 0o777 & ~_umask())  # mkdtemp makes 0700
    return folder


def cache_root(kind: str) -> Path:
    """The cache folder of one kind of result (created if needed).

    Parameters
    ----------
    kind : str
        Sub-folder: ``"estimate"`` (yosys/nextpnr results), ``"sim"`` (Verilator builds).

    Returns
    -------
    Path
        ``$SHIFTRNN_CACHE/KIND``, else ``$XDG_CACHE_HOME/shiftrnn/KIND``, else
        ``~/.cache/shiftrnn/KIND``.
    """
    if os.environ.get(CACHE_ENV):
        base = Path(os.environ[CACHE_ENV])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shiftrnn"
    root = base / kind
    root.mkdir(parents=True, exist_ok=True)
    return root
