"""The flow's error type."""

from __future__ import annotations

from golden.errors import ShiftrnnError

__all__ = ["FlowError"]


class FlowError(ShiftrnnError):
    """A flow cannot run or a stage failed; the message names the problem and the fix."""
