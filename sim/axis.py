"""cocotb components for the shiftrnn AXI4-Stream-style ports (cocotb 2.x idioms only).

Shaped after cocotbext-axi (which does not run on cocotb 2.1 with warnings as errors; see
docs/decisions.md): a source and a sink whose idle cycles and backpressure come from *pause
generators* (an iterable of bools, ``True`` = pause, one value per cycle in which a pause
matters), a passive monitor and a scoreboard. Beats are whole timesteps (one ``tdata`` word
each), not byte frames.

* :class:`AxisSource` drives ``s_axis_*`` from a queue of :class:`Beat`. AXI rule: once valid is
  high it stays high with stable data until the beat is taken; a pause only delays the next beat.
* :class:`AxisSink` drives ``m_axis_tready`` (low while paused).
* :class:`AxisMonitor` records every transfer with its cycle and the first cycle its data was
  valid, and the AXI rule on the design's side: while ``tvalid`` is high and ``tready`` low,
  ``tvalid``, ``tdata``, ``tuser`` and ``tlast`` hold.
* :class:`PortChecker` reports any port that is X or Z after reset deasserts (Icarus shows
  4-state values; Verilator is 2-state and never does).
* :class:`Scoreboard` pairs every accepted input beat with the output it must produce and compares
  all of them with golden at the end, exactly (``np.array_equal``).

Every component samples in the read-only phase after a rising edge (the settled values of that
cycle) and drives right after a rising edge. A transfer "in cycle ``c``" is one whose valid and
ready are both high during cycle ``c``; it moves on the rising edge that ends the cycle. Cycle
numbers come from simulation time (``time // period``), a base shared by all parts. While the
design computes the components sleep on the handshake signal they wait for (``tready`` rising,
``tvalid`` rising), so a timestep of a thousand cycles costs a few Python wake-ups.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cocotb
import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, ReadOnly, RisingEdge

from golden.manifest import Port

__all__ = ["AxisMonitor", "AxisSink", "AxisSource", "Beat", "PortChecker", "Scoreboard",
           "Transfer", "random_pauses"]


def random_pauses(rng: np.random.Generator, prob: float, max_run: int) -> Iterator[bool]:
    """A pause generator: each cycle a pause of 1..``max_run`` cycles starts with ``prob``."""
    while True:
        if prob > 0 and rng.random() < prob:
            yield from [True] * int(rng.integers(1, max_run + 1))
        yield False


def _value(sig) -> int | None:
    """A signal's integer value, or None while any bit is X or Z."""
    v = sig.value
    return int(v) if v.is_resolvable else None


@dataclass
class Beat:
    """One input beat: packed data, tuser/tlast, a tag for the scoreboard."""

    data: int
    user: bool = False
    last: bool = False
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
    """Shared plumbing: clock, reset handle, period, cycle numbers, a pause generator."""

    def __init__(self, clk, period_steps: int, rst=None):
        self.clk = clk
        self.rst = rst
        self.period_steps = int(period_steps)
        self._edge = RisingEdge(clk)
        self._ro = ReadOnly()
        #: Pause by hand (the bench sets it around a reset); ORed with the generator.
        self.pause = False
        self._pauses: Iterator[bool] | None = None

    def set_pause_generator(self, generator: Iterable[bool] | None) -> None:
        """Pause in the cycles where ``generator`` yields True (None: never)."""
        self._pauses = None if generator is None else iter(generator)

    def _paused(self) -> bool:
        """This cycle's pause (advances the generator once per call, i.e. once per cycle)."""
        gen = next(self._pauses, False) if self._pauses is not None else False
        return self.pause or bool(gen)

    def cycle(self) -> int:
        return int(get_sim_time()) // self.period_steps

    def in_reset(self) -> bool:
        return self.rst is not None and _value(self.rst) != 0


class AxisSource(_Clocked):
    """Drive ``<prefix>_tdata/tvalid/tuser/tlast`` from a queue of :class:`Beat`.

    Parameters
    ----------
    dut, prefix : the DUT handle and port prefix (``"s_axis"``).
    clk, period_steps, rst : clock handle, clock period in simulator steps, reset handle.
    on_accept : callable(beat, cycle), optional
        Called for every beat the DUT takes, with the cycle of the handshake.
    """

    def __init__(self, dut, prefix: str, clk, period_steps: int, *, rst=None,
                 on_accept: Callable[[Beat, int], None] | None = None):
        super().__init__(clk, period_steps, rst)
        self.data = getattr(dut, f"{prefix}_tdata")
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready = getattr(dut, f"{prefix}_tready")
        self.user = getattr(dut, f"{prefix}_tuser")
        self.last = getattr(dut, f"{prefix}_tlast")
        self.on_accept = on_accept
        self.queue: deque[Beat] = deque()
        self.accepted = 0
        self._current: Beat | None = None
        self._taken = False
        self._empty = Event()
        self._empty.set()
        self._queued = Event()
        for sig in (self.valid, self.data, self.user, self.last):
            sig.value = 0

    def send(self, beat: Beat) -> None:
        """Queue a beat (returns at once)."""
        self.queue.append(beat)
        self._empty.clear()
        self._queued.set()

    async def wait_sent(self) -> None:
        """Wait until every queued beat has been taken (or dropped by :meth:`flush`)."""
        await self._empty.wait()

    def _complete(self) -> None:
        beat, self._current, self._taken = self._current, None, False
        self.accepted += 1
        if self.on_accept is not None:
            self.on_accept(beat, self.cycle() - 1)

    def flush(self) -> int:
        """Drop every beat not yet taken and drive valid low now; return how many were dropped.

        A beat the DUT took at the edge just passed still counts as accepted.
        """
        if self._taken and self._current is not None:
            self._complete()
        n = len(self.queue) + (self._current is not None)
        self.queue.clear()
        self._current = None
        self.valid.value = 0
        self._empty.set()
        return n

    async def run(self) -> None:
        """The driver loop; start it with ``cocotb.start_soon(source.run())``.

        It sleeps while nothing is queued and while a beat waits for ``tready`` (until it
        rises), so a long timestep costs no Python per cycle.
        """
        while True:
            await self._edge
            if self._taken and self._current is not None:
                self._complete()
            if self._current is None:
                if not self.queue:
                    self.valid.value = 0
                    self._empty.set()
                    self._queued.clear()
                    await self._queued.wait()
                    continue
                if self._paused():
                    self.valid.value = 0
                    continue
                self._current = self.queue.popleft()
                self.data.value = self._current.data
                self.user.value = int(self._current.user)
                self.last.value = int(self._current.last)
                self.valid.value = 1
            await self._ro
            ready = _value(self.ready)
            if ready == 0 and not self.in_reset():
                await RisingEdge(self.ready)
                await self._ro
                ready = _value(self.ready)
            self._taken = (self._current is not None and ready == 1 and not self.in_reset())


class AxisSink(_Clocked):
    """Drive ``<prefix>_tready``: high unless paused (by hand or by the pause generator).

    The pause generator advances once per cycle in which an output is offered (``tvalid``
    high); while none is, the sink sleeps until ``tvalid`` rises.
    """

    def __init__(self, dut, prefix: str, clk, period_steps: int, *, rst=None):
        super().__init__(clk, period_steps, rst)
        self.ready = getattr(dut, f"{prefix}_tready")
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready.value = 0

    async def run(self) -> None:
        driven = -1
        await self._edge
        while True:
            want = 0 if self._paused() else 1
            if want != driven:
                self.ready.value = want
                driven = want
            await self._ro
            if _value(self.valid) == 0:
                await RisingEdge(self.valid)  # right after the edge that raises it
            else:
                await self._edge


class AxisMonitor(_Clocked):
    """Record every transfer on ``<prefix>_*`` (passive) and check the AXI hold rule.

    Parameters
    ----------
    callback : callable(Transfer), optional
        Called for each transfer, in order.

    Attributes
    ----------
    transfers : list of Transfer
    violations : list of str
        AXI rule breaks seen (``tvalid`` dropped or ``tdata/tuser/tlast`` changed while stalled,
        X/Z data in a transfer), first few only.
    """

    def __init__(self, dut, prefix: str, clk, period_steps: int, *, rst=None,
                 callback: Callable[[Transfer], None] | None = None):
        super().__init__(clk, period_steps, rst)
        self.prefix = prefix
        self.sigs = [getattr(dut, f"{prefix}_{n}") for n in ("tdata", "tuser", "tlast")]
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready = getattr(dut, f"{prefix}_tready")
        self.callback = callback
        self.transfers: list[Transfer] = []
        self.violations: list[str] = []

    def _violation(self, text: str) -> None:
        if len(self.violations) < 5:
            self.violations.append(f"cycle {self.cycle()}: {self.prefix}: {text}")

    def _values(self) -> tuple:
        return tuple(_value(s) for s in self.sigs)

    async def run(self) -> None:
        """Sample every cycle while an output is offered; sleep until ``tvalid`` rises."""
        valid_since: int | None = None
        held: tuple | None = None  # the beat on the bus while it is stalled
        await self._edge
        while True:
            await self._ro
            valid = _value(self.valid)
            if self.in_reset() or valid != 1:
                if held is not None and not self.in_reset():
                    self._violation("tvalid dropped before the beat was taken")
                valid_since = held = None
                if valid == 0:
                    await RisingEdge(self.valid)  # right after the edge that raises it
                else:
                    await self._edge
                continue
            now = self.cycle()
            valid_since = now if valid_since is None else valid_since
            if _value(self.ready) != 1:
                values = self._values()
                if held is not None and values != held:
                    self._violation(f"tdata/tuser/tlast changed while stalled: {held} -> "
                                    f"{values}")
                held = values
            else:
                self._transfer(self._values(), held, now, valid_since)
                valid_since = held = None
            await self._edge

    def _transfer(self, values: tuple, held: tuple | None, now: int, valid_since: int) -> None:
        if held is not None and values != held:
            self._violation(f"tdata/tuser/tlast changed while stalled: {held} -> {values}")
        if None in values:
            self._violation("X/Z in tdata/tuser/tlast of a transfer")
            return
        t = Transfer(values[0], bool(values[1]), bool(values[2]), now, valid_since)
        self.transfers.append(t)
        if self.callback is not None:
            self.callback(t)


class PortChecker(_Clocked):
    """Report ports that are X or Z in any cycle after reset first deasserts.

    Event-driven: every port is checked when started (after reset), after every later reset
    (:meth:`check_all`) and whenever it changes outside reset, in the read-only phase (its
    settled value).

    Attributes
    ----------
    problems : list of str
        ``"<port> is X/Z (value) in cycle N, after reset deasserted"``, first few only.
    """

    def __init__(self, dut, names: Iterable[str], clk, period_steps: int, *, rst):
        super().__init__(clk, period_steps, rst)
        self.ports = {n: getattr(dut, n) for n in names}
        self.problems: list[str] = []
        self._seen: set[str] = set()

    def _check(self, name: str, sig) -> None:
        if name not in self._seen and not self.in_reset() and not sig.value.is_resolvable:
            self._seen.add(name)
            if len(self.problems) < 8:
                self.problems.append(f"{name} is X/Z ({sig.value}) in cycle {self.cycle()}, "
                                     "after reset deasserted")

    async def _watch(self, name: str, sig) -> None:
        while name not in self._seen:
            await sig.value_change
            await self._ro
            self._check(name, sig)

    def check_all(self) -> None:
        """Check every port now (call it in the read-only phase, e.g. after a reset)."""
        for name, sig in self.ports.items():
            self._check(name, sig)

    async def run(self) -> None:
        """Start it once reset has been released (``cocotb.start_soon(checker.run())``)."""
        await self._ro
        self.check_all()
        for name, sig in self.ports.items():
            cocotb.start_soon(self._watch(name, sig))


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

    Attributes
    ----------
    max_pending : int
        Most input beats ever accepted whose outputs had not been taken yet.
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
    max_pending: int = 0

    def __post_init__(self):
        self.drained = Event()
        self.drained.set()

    def expect(self, beat: Beat, cycle: int) -> None:
        """Register an accepted input beat (use as the source's ``on_accept``)."""
        self.pending.append(_Expect(beat.tag, beat.user, beat.last, cycle))
        self.max_pending = max(self.max_pending, len(self.pending))
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

    def _mismatches(self, got: np.ndarray, want: np.ndarray, out: dict) -> list[str]:
        """Count, indices and first values of the outputs that differ from golden."""
        diff = got != want
        rows = np.flatnonzero(diff.any(axis=1))
        out["mismatched_outputs"] = int(rows.size)
        out["mismatched_elements"] = int(diff.sum())
        first = [{"tag": list(self.tags[i]) if isinstance(self.tags[i], tuple) else self.tags[i],
                  "elements": np.flatnonzero(diff[i]).tolist(),
                  "got": got[i].tolist(), "want": want[i].tolist()} for i in rows[:5]]
        out["first_mismatches"] = first
        lines = [f"{rows.size} of {len(got)} outputs differ from golden ({int(diff.sum())} "
                 f"elements); first at (sequence, step) {[f['tag'] for f in first]}:"]
        lines += [f"  {tuple(f['tag'])} elements {f['elements'][:8]}: got {f['got'][:8]} want "
                  f"{f['want'][:8]}" for f in first]
        return lines

    def result(self) -> dict:
        """Compare all outputs; return a summary (``passed``, ``message`` and the details)."""
        n, width = len(self.got), self.port.size
        got = np.array(self.got, dtype=np.int64).reshape(n, width)
        want = np.array(self.want, dtype=np.int64).reshape(n, width)
        ok_data = np.array_equal(got, want)
        flag_bad = [i for i, (g, w) in enumerate(self.flags) if g != w]
        out = {"outputs": n, "dropped_by_reset": self.dropped, "missing": len(self.pending),
               "unexpected": self.unexpected, "data_equal": bool(ok_data),
               "flag_mismatches": len(flag_bad), "max_pending": self.max_pending}
        lines = [] if ok_data else self._mismatches(got, want, out)
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
