"""The one way a benchmark writes its section of docs/benchmarks.md.

Run as scripts (``python bench/NAME.py``), the benchmarks find this module next to them.
"""

from __future__ import annotations

import re
from pathlib import Path

import golden

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"

__all__ = ["DOC", "write_section"]


def write_section(title: str, body: str, path: Path = DOC) -> None:
    """Replace (or append) the ``## title`` section with ``body``, leaving every other section
    alone; written atomically.

    Parameters
    ----------
    title : str
        The section's heading, without ``## ``.
    body : str
        The section's text, without its heading.
    path : Path
        The document (docs/benchmarks.md).
    """
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: section + "\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + section
    golden.atomic_write_bytes(path, new.rstrip("\n").encode() + b"\n")
