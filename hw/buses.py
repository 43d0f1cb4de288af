"""Signatures of the buses between the core's components (connected with ``wiring.connect``).

* :func:`vector_signature`: a register bank's contents (the state, the input vector, logits),
  driven by its owner, read by any number of components.
* :func:`read_signature`: an engine's read ports into a bank (index out, value back).
* :func:`group_signature`: one group's values with their tag (valid for one cycle, group index):
  weighted sums from an engine to an elementwise pipeline, new state from a pipeline to its bank.
"""

from __future__ import annotations

from amaranth.hdl import ShapeCastable
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["group_signature", "read_signature", "vector_signature"]


def vector_signature(n: int, shape: ShapeCastable) -> wiring.Signature:
    """``v``: ``n`` values of ``shape``."""
    return wiring.Signature({"v": Out(shape).array(n)})


def group_signature(groups: int, fields: dict) -> wiring.Signature:
    """``valid``, ``group``, ``last`` (valid, for the phase's last group) and, per field
    ``name: (shape, count)``, ``count`` values."""
    members = {"valid": Out(1), "group": Out(range(max(2, groups))), "last": Out(1)}
    members.update({name: Out(shape).array(n) for name, (shape, n) in fields.items()})
    return wiring.Signature(members)


def read_signature(ports: int, index_bits: int, shape: ShapeCastable) -> wiring.Signature:
    """A reader's side of shared read ports: ``index`` out (0 when idle), ``value`` back."""
    return wiring.Signature({"index": Out(index_bits).array(ports),
                             "value": In(shape).array(ports)})
