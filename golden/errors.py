"""The one error base of shiftrnn: every library error derives from :class:`ShiftrnnError`.

Library errors carry one line that names the file, field and allowed values, and the fix. The
command line prints that line and exits with status 2; callers from Python catch
``ShiftrnnError`` (or the specific subclass) without depending on the command-line layer.
"""

from __future__ import annotations

__all__ = ["ShiftrnnError"]


class ShiftrnnError(Exception):
    """Base of every error shiftrnn raises on purpose (bad input, missing files, tool failures)."""
