"""Reusable cocotb components for the shiftrnn AXI4-Stream-style ports.

* :class:`AxisSource` drives ``s_axis_*`` with random idle cycles (valid gaps) and obeys AXI:
  once valid is high it stays high with stable data until the beat is taken.
* :class:`AxisSink` drives ``m_axis_tready`` with random backpressure.
* :class:`AxisMonitor` watches one stream passively and records every transfer with its cycle
  number and the first cycle its data was valid.
* :class:`Scoreboard` pairs every accepted input beat with the output it must produce and compares
  all of them with golden at the end, exactly (``np.array_equal``).

Every component samples in the read-only phase after a rising edge (the settled values of that
cycle), so a transfer "in cycle ``c``" is one whose valid and ready are both high during cycle
``c``; it moves on the rising edge that ends the cycle. Values are driven right after a rising
edge. Cycle numbers come from simulation time (``time // period``), a base shared by all parts.
Randomness comes from a ``numpy.random.Generator`` handed in by the bench (seeded there).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, ReadOnly, RisingEdge

from golden.manifest import Port

__all__ = ["AxisMonitor", "AxisSink", "AxisSource", "Beat", "Scoreboard", "Transfer"]


@dataclass
class Beat:
    """One input beat: packed data, tuser/tlast, optional idle cycles before it, a tag."""

    data: int
    user: bool = False
    last: bool = False
    gap: int | None = None
    tag: Any = None


@dataclass
class Transfer:
    """One observed transfer on a stream."""

    data: int
    user: bool
    last: bool
    cycle: int
    valid_cycle: int


class _Clocked:
    """Shared plumbing: clock, reset handle, period, cycle numbers."""

    def __init__(self, clk, period_steps: int, rst=None):
        self.clk = clk
        self.rst = rst
        self.period_steps = int(period_steps)
        self._edge = RisingEdge(clk)
        self._ro = ReadOnly()

    def cycle(self) -> int:
        return int(get_sim_time()) // self.period_steps

    def in_reset(self) -> bool:
        return self.rst is not None and int(self.rst.value) == 1


class AxisSource(_Clocked):
    """Drive ``<prefix>_tdata/tvalid/tuser/tlast`` from a queue of :class:`Beat`.

    Parameters
    ----------
    dut, prefix : the DUT handle and port prefix (``"s_axis"``).
    clk, period_steps, rst : clock handle, clock period in simulator steps, reset handle.
    rng : numpy.random.Generator
        Draws idle gaps for beats whose ``gap`` is ``None``.
    idle_prob : float
        Probability that a beat is preceded by 1..``max_idle`` idle cycles.
    on_accept : callable(beat, cycle), optional
        Called for every beat the DUT takes.
    """

    def __init__(self, dut, prefix: str, clk, period_steps: int, *, rst=None,
                 rng: np.random.Generator, idle_prob: float = 0.0, max_idle: int = 3,
                 on_accept: Callable[[Beat, int], None] | None = None):
        super().__init__(clk, period_steps, rst)
        self.data = getattr(dut, f"{prefix}_tdata")
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready = getattr(dut, f"{prefix}_tready")
        self.user = getattr(dut, f"{prefix}_tuser")
        self.last = getattr(dut, f"{prefix}_tlast")
        self.rng = rng
        self.idle_prob = float(idle_prob)
        self.max_idle = int(max_idle)
        self.on_accept = on_accept
        self.queue: deque[Beat] = deque()
        self.accepted = 0
        self.paused = False
        self._current: Beat | None = None
        self._idle_left: int | None = None
        self._empty = Event()
        self._empty.set()
        self.valid.value = 0
        self.user.value = 0
        self.last.value = 0

    def send(self, beat: Beat) -> None:
        """Queue a beat (returns at once)."""
        self.queue.append(beat)
        self._empty.clear()

    async def wait_sent(self) -> None:
        """Wait until every queued beat has been taken (or dropped by :meth:`flush`)."""
        await self._empty.wait()

    def flush(self) -> int:
        """Drop every beat not yet taken, the one on the bus included; return how many."""
        n = len(self.queue) + (self._current is not None)
        self.queue.clear()
        self._current = None
        self._idle_left = None
        self._empty.set()
        return n

    def _draw_gap(self, beat: Beat) -> int:
        if beat.gap is not None:
            return int(beat.gap)
        if self.idle_prob > 0 and self.rng.random() < self.idle_prob:
            return int(self.rng.integers(1, self.max_idle + 1))
        return 0

    async def run(self) -> None:
        """The driver loop; start it with ``cocotb.start_soon(source.run())``."""
        taken = False
        driven_valid = 0
        while True:
            await self._edge
            if taken and self._current is not None:
                beat, self._current = self._current, None
                self.accepted += 1
                if self.on_accept is not None:
                    self.on_accept(beat, self.cycle() - 1)
            if self._current is None and self.queue and not self.paused:
                if self._idle_left is None:
                    self._idle_left = self._draw_gap(self.queue[0])
                if self._idle_left > 0:
                    self._idle_left -= 1
                else:
                    self._idle_left = None
                    self._current = self.queue.popleft()
                    self.data.value = self._current.data
                    self.user.value = int(self._current.user)
                    self.last.value = int(self._current.last)
            want = int(self._current is not None)
            if want != driven_valid:
                self.valid.value = want
                driven_valid = want
            if self._current is None and not self.queue:
                self._empty.set()
            await self._ro
            taken = (self._current is not None and int(self.ready.value) == 1
                     and not self.in_reset())


class AxisSink(_Clocked):
    """Drive ``<prefix>_tready`` with random backpressure.

    Parameters
    ----------
    backpressure : float
        Probability that ready is low in a cycle; low periods last 1..``max_stall`` cycles.
    """

    def __init__(self, dut, prefix: str, clk, period_steps: int, *, rst=None,
                 rng: np.random.Generator, backpressure: float = 0.0, max_stall: int = 4):
        super().__init__(clk, period_steps, rst)
        self.ready = getattr(dut, f"{prefix}_tready")
        self.rng = rng
        self.backpressure = float(backpressure)
        self.max_stall = int(max_stall)
        self.paused = False
        self.ready.value = 0

    async def run(self) -> None:
        stall = 0
        driven = -1
        while True:
            await self._edge
            if self.paused:
                want = 0
            elif stall > 0:
                stall -= 1
                want = 0
            elif self.backpressure > 0 and self.rng.random() < self.backpressure:
                stall = int(self.rng.integers(0, self.max_stall))
                want = 0
            else:
                want = 1
            if want != driven:
                self.ready.value = want
                driven = want


class AxisMonitor(_Clocked):
    """Record every transfer on ``<prefix>_*`` (passive).

    Parameters
    ----------
    callback : callable(Transfer), optional
        Called for each transfer, in order.
    """

    def __init__(self, dut, prefix: str, clk, period_steps: int, *, rst=None,
                 callback: Callable[[Transfer], None] | None = None):
        super().__init__(clk, period_steps, rst)
        self.data = getattr(dut, f"{prefix}_tdata")
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready = getattr(dut, f"{prefix}_tready")
        self.user = getattr(dut, f"{prefix}_tuser")
        self.last = getattr(dut, f"{prefix}_tlast")
        self.callback = callback
        self.transfers: list[Transfer] = []

    async def run(self) -> None:
        valid_since: int | None = None
        while True:
            await self._edge
            await self._ro
            if self.in_reset():
                valid_since = None
                continue
            if int(self.valid.value) != 1:
                valid_since = None
                continue
            now = self.cycle()
            if valid_since is None:
                valid_since = now
            if int(self.ready.value) == 1:
                t = Transfer(int(self.data.value), bool(int(self.user.value)),
                             bool(int(self.last.value)), now, valid_since)
                valid_since = None
                self.transfers.append(t)
                if self.callback is not None:
                    self.callback(t)


@dataclass
class _Expect:
    tag: Any
    user: bool
    last: bool
    in_cycle: int


@dataclass
class Scoreboard:
    """Pair input beats with outputs in order and compare everything with golden at the end.

    Parameters
    ----------
    port : golden.manifest.Port
        ``m_axis_tdata`` layout (to unpack observed words).
    golden : callable(tag) -> ndarray
        The expected output elements of the input beat with this tag.
    """

    port: Port
    golden: Callable[[Any], np.ndarray]
    pending: deque = field(default_factory=deque)
    got: list = field(default_factory=list)
    want: list = field(default_factory=list)
    tags: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    latencies: list = field(default_factory=list)
    unexpected: int = 0
    dropped: int = 0

    def __post_init__(self):
        self.drained = Event()
        self.drained.set()

    def expect(self, beat: Beat, cycle: int) -> None:
        """Register an accepted input beat (use as the source's ``on_accept``)."""
        self.pending.append(_Expect(beat.tag, beat.user, beat.last, cycle))
        self.drained.clear()

    def observe(self, t: Transfer) -> None:
        """Register an output transfer (use as the output monitor's ``callback``)."""
        if not self.pending:
            self.unexpected += 1
            return
        e = self.pending.popleft()
        self.got.append(self.port.unpack_int(t.data))
        self.want.append(np.asarray(self.golden(e.tag), dtype=np.int64))
        self.tags.append(e.tag)
        self.flags.append(((t.user, t.last), (e.user, e.last)))
        self.latencies.append((e.in_cycle, t.valid_cycle, t.cycle))
        if not self.pending:
            self.drained.set()

    def drop_pending(self) -> int:
        """Forget beats whose outputs a reset destroyed; return how many."""
        n = len(self.pending)
        self.dropped += n
        self.pending.clear()
        self.drained.set()
        return n

    def result(self) -> dict:
        """Compare all outputs; return a summary (``passed`` and the mismatch details)."""
        n = len(self.got)
        width = self.port.size
        got = np.array(self.got, dtype=np.int64).reshape(n, width)
        want = np.array(self.want, dtype=np.int64).reshape(n, width)
        ok_data = np.array_equal(got, want)
        flag_bad = [i for i, (g, w) in enumerate(self.flags) if g != w]
        out = {
            "outputs": n,
            "dropped_by_reset": self.dropped,
            "missing": len(self.pending),
            "unexpected": self.unexpected,
            "data_equal": bool(ok_data),
            "flag_mismatches": len(flag_bad),
        }
        lines = []
        if not ok_data:
            diff = got != want
            rows = np.flatnonzero(diff.any(axis=1))
            out["mismatched_outputs"] = int(rows.size)
            out["mismatched_elements"] = int(diff.sum())
            first = []
            for i in rows[:5]:
                first.append({"tag": list(self.tags[i]) if isinstance(self.tags[i], tuple)
                              else self.tags[i],
                              "elements": np.flatnonzero(diff[i]).tolist(),
                              "got": got[i].tolist(), "want": want[i].tolist()})
            out["first_mismatches"] = first
            lines.append(f"{rows.size} of {n} outputs differ from golden ({int(diff.sum())} "
                         f"elements); first at (sequence, step) "
                         f"{[f['tag'] for f in first]}:")
            for f in first:
                lines.append(f"  {tuple(f['tag'])} elements {f['elements'][:8]}: got "
                             f"{f['got'][:8]} want {f['want'][:8]}")
        if flag_bad:
            i = flag_bad[0]
            lines.append(f"{len(flag_bad)} outputs carry wrong tuser/tlast; first at "
                         f"{self.tags[i]}: got {self.flags[i][0]} want {self.flags[i][1]}")
        if self.pending:
            lines.append(f"{len(self.pending)} input beats never produced an output")
        if self.unexpected:
            lines.append(f"{self.unexpected} outputs appeared with no input beat to match")
        out["passed"] = not lines
        out["message"] = "\n".join(lines)
        return out
