"""Linearizability of one session's log: is there a serial order consistent with real time?

The numbers give the order of the writes, and every read, ``get_latest_sequence``, ``get_run``
and ``get_session`` says which prefix of that order it saw. A history is explained by a serial
order consistent with real time exactly when no call that *finished before another began* has to
come after it in that order: an append that finished before another started has the lower
numbers; a read reflects every write that completed before it began and nothing that had not yet
begun; readers never go backwards; and no read sees the middle of a batch or of a flush (CONC-1,
CONC-2, FLUSH-5, SEQ-5 for a tailing read with a hole). Sorting the calls by end time makes the
check O(n log n).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Mapping, Sequence

from pytest_asm_contract._concurrency.formatting import numbers_text, result_text
from pytest_asm_contract._concurrency.recording import Call, History, Op
from pytest_asm_contract._contract.model import Event

INF = float("inf")
#: A read's newest events are compared field by field with the stored ones; the rest by id.
EDGE = 8

#: How a finding is reported: rule, kind, message, the calls involved.
Report = Callable[..., None]


@dataclasses.dataclass
class Unit:
    """The calls that created one block of numbers in one session (a race group has several)."""

    calls: tuple[Call, ...]
    session_id: str
    numbers: list[int] = dataclasses.field(default_factory=list)

    @property
    def interval(self) -> tuple[float, float]:
        done = [c for c in self.calls if c.ok]
        if not done:  # a failed call may have taken effect at any time after it started
            return min(c.start for c in self.calls), INF
        return min(c.start for c in self.calls), min(c.end for c in done)

    @property
    def is_flush(self) -> bool:
        return any(c.op is Op.FLUSH for c in self.calls)

    @property
    def flush(self) -> Call | None:
        """The flush that alone created this block, if it is one."""
        if len(self.calls) == 1 and self.calls[0].op is Op.FLUSH:
            return self.calls[0]
        return None

    @property
    def is_race(self) -> bool:
        return len(self.calls) > 1


@dataclasses.dataclass
class Point:
    """A call placed in one session's log: it saw (or made) a state between ``lo`` and ``hi``.

    States are encoded as 2*t for "the first t numbers are visible" and a write whose block ends
    at t sits at 2*t - 1, just before the state it creates.
    """

    lo: float
    hi: float
    start: float
    end: float
    calls: tuple[Call, ...]
    what: str  # "write", "read", "probe"


class SessionOrder:
    """Places every call in one session's log and reports what real time contradicts."""

    def __init__(
        self, history: History, creators: Mapping[str, tuple[Call, ...]], add: Report
    ) -> None:
        self.history = history
        self.creators = creators
        self.add = add

    def check(self, session_id: str, units: list[Unit]) -> None:
        h = self.history
        log = h.final_events[session_id]
        top = len(log)
        owner: dict[int, Unit] = {}
        points: list[Point] = []
        for unit in units:
            for number in unit.numbers:
                owner[number] = unit
            start, end = unit.interval
            position = 2 * max(unit.numbers) - 1
            points.append(Point(position, position, start, end, unit.calls, "write"))
        flush_units = sorted(
            (u for u in units if u.flush is not None and u.numbers), key=lambda u: min(u.numbers)
        )
        by_run = {
            c.run_id: u for u in flush_units for c in u.calls if c.op is Op.FLUSH and c.run_id
        }
        for call in h.calls:
            if call.failed or call.op.writes:
                continue
            point = self._observation(call, session_id, top, owner, by_run, flush_units)
            if point is not None:
                points.append(point)
        self._real_time(points, session_id)

    def _observation(
        self,
        call: Call,
        session_id: str,
        top: int,
        owner: Mapping[int, Unit],
        by_run: Mapping[str, Unit],
        flushes: Sequence[Unit],
    ) -> Point | None:
        log = self.history.final_events[session_id]
        if call.op is Op.READ and call.session_id == session_id:
            return self._read(call, log, owner)
        if call.op is Op.LATEST and call.session_id == session_id:
            value = call.result
            if not isinstance(value, int) or not 0 <= value <= top:
                self.add(
                    "CONC-2",
                    "latest-impossible",
                    f"get_latest_sequence said {value!r}; the log only ever reached {top}",
                    call,
                )
                return None
            self._partial(call, value, owner)
            return Point(2 * value, 2 * value, call.start, call.end, (call,), "read")
        if call.op is Op.GET_RUN and call.run_id in by_run:
            unit = by_run[call.run_id or ""]
            flush = next(c for c in unit.calls if c.op is Op.FLUSH)
            if call.absent:
                return Point(
                    -INF, 2 * (min(unit.numbers) - 1), call.start, call.end, (call,), "probe"
                )
            if call.result != flush.flushed_run:
                self.add(
                    "FLUSH-5",
                    "run-differs",
                    f"get_run({call.run_id!r}) returned {result_text(call.result)}, not the "
                    "flushed run",
                    call,
                    flush,
                )
                return None
            return Point(2 * max(unit.numbers), INF, call.start, call.end, (call,), "probe")
        if call.op is Op.GET_SESSION and call.session_id == session_id:
            return self._session_probe(call, session_id, flushes)
        return None

    def _read(self, call: Call, log: Sequence[Event], owner: Mapping[int, Unit]) -> Point | None:
        cursor = call.after or 0
        result = call.result if isinstance(call.result, list) else []
        numbers = [e.sequence_number for e in result]
        expected = list(range(cursor + 1, cursor + 1 + len(result)))
        if numbers != expected:
            missing = sorted(set(expected) - set(numbers))[:2]
            writers = [
                c
                for n in missing
                if n <= len(log)
                for c in self.creators.get(log[n - 1].id, ())[:1]
            ]
            self.add(
                "SEQ-5",
                "read-hole",
                f"get_events(after={call.after}) returned numbers {numbers_text(numbers)}; a "
                f"tailing reader must get exactly {cursor + 1}..{cursor + len(result)} (no holes, "
                "no repeats, in order), or it skips events for good"
                + (f"; the writes of the missing {missing} follow" if writers else ""),
                call,
                *writers,
            )
            return None
        edge = len(result) - EDGE
        for position, event in enumerate(result):
            number = event.sequence_number or 0
            # Ids everywhere; whole events at the newest end, where a write still in progress
            # would show (comparing every event of every whole-log read costs O(n^2)).
            if (
                number > len(log)
                or log[number - 1].id != event.id
                or (position >= edge and log[number - 1] != event)
            ):
                stored = log[number - 1] if number <= len(log) else None
                self.add(
                    "CONC-2",
                    "read-phantom",
                    f"a reader saw {event.id!r} as #{number}, but the final log holds "
                    f"{stored.id if stored else 'nothing'!r} there",
                    call,
                )
                return None
        seen = cursor + len(result)
        limited = call.limit is not None and len(result) >= call.limit
        lo = 2 * seen if result or cursor == 0 else -INF
        hi = INF if limited else 2 * seen
        if not limited and (result or cursor == 0):
            self._partial(call, seen, owner)
        return Point(lo, hi, call.start, call.end, (call,), "read")

    def _partial(self, call: Call, seen: int, owner: Mapping[int, Unit]) -> None:
        """A reader saw ``seen`` numbers: that must be a boundary between blocks."""
        unit = owner.get(seen + 1)
        if unit is None or min(unit.numbers) > seen:
            return
        flush = unit.is_flush
        self.add(
            "FLUSH-5" if flush else "CONC-2",
            "partial-write",
            f"a reader saw the log up to #{seen}, inside the block "
            f"{min(unit.numbers)}..{max(unit.numbers)} one {'flush' if flush else 'batch'} "
            "stored: part of an atomic write was visible",
            call,
            *unit.calls[:3],
        )

    def _session_probe(self, call: Call, session_id: str, flushes: Sequence[Unit]) -> Point | None:
        got = call.result
        if call.absent:
            self.add("CONC-2", "session-vanished", f"{session_id!r} was not found", call)
            return None
        lo, hi = -INF, INF
        initial = self.history.initial_sessions.get(session_id)
        if got == initial:
            if flushes:
                hi = 2 * (min(flushes[0].numbers) - 1)
            return Point(lo, hi, call.start, call.end, (call,), "probe")
        for index, unit in enumerate(flushes):
            flush = next(c for c in unit.calls if c.op is Op.FLUSH)
            if flush.flushed_session == got:
                lo = 2 * max(unit.numbers)
                if index + 1 < len(flushes) and not flush.retried:
                    hi = 2 * (min(flushes[index + 1].numbers) - 1)
                return Point(lo, hi, call.start, call.end, (call,), "probe")
        if any(c.op is Op.FLUSH and c.flushed_session == got for c in self.history.calls):
            return None  # a flush whose events other calls may have stored: no fixed place
        self.add(
            "CONC-2",
            "session-unknown",
            f"get_session({session_id!r}) returned a version no call saved: {result_text(got)}",
            call,
        )
        return None

    def _real_time(self, points: list[Point], session_id: str) -> None:
        """No call that finished before another began may need to come after it in the log."""
        ordered = sorted(points, key=lambda p: p.end)
        ends = [p.end for p in ordered]
        best: list[Point] = []
        for point in ordered:
            best.append(point if not best or point.lo > best[-1].lo else best[-1])
        for later in points:
            count = bisect.bisect_left(ends, later.start)
            if count == 0:
                continue
            earlier = best[count - 1]
            if earlier.lo > later.hi:
                self._order_violation(earlier, later, session_id)

    def _order_violation(self, earlier: Point, later: Point, session_id: str) -> None:
        calls = earlier.calls[:3] + later.calls[:3]
        where = f"in {session_id!r}"
        if earlier.what == "write" and later.what == "write":
            self.add(
                "CONC-1",
                "numbered-against-time",
                f"{where}: a write finished (its block ends at #{(earlier.lo + 1) // 2:.0f}) "
                f"before another began, yet the later write got the lower numbers (its block "
                f"ends at #{(later.hi + 1) // 2:.0f}); no serial order explains that",
                *calls,
            )
        elif earlier.what == "write":
            self.add(
                "FLUSH-5" if later.what == "probe" else "CONC-2",
                "stale-read",
                f"{where}: a write had completed (up to #{(earlier.lo + 1) // 2:.0f}) before "
                f"this read began, but the read saw at most #{later.hi / 2:.0f}",
                *calls,
            )
        elif later.what == "write":
            self.add(
                "FLUSH-5" if earlier.what == "probe" else "CONC-2",
                "read-from-future",
                f"{where}: a read saw the log up to #{earlier.lo / 2:.0f} and finished before "
                f"the write of #{(later.hi + 1) // 2:.0f} had even begun",
                *calls,
            )
        else:
            self.add(
                "FLUSH-5" if "probe" in (earlier.what, later.what) else "CONC-2",
                "went-backwards",
                f"{where}: one read saw at least #{earlier.lo / 2:.0f} and finished before "
                f"another began that saw at most #{later.hi / 2:.0f}: the log went backwards",
                *calls,
            )


__all__ = ["EDGE", "INF", "Point", "SessionOrder", "Unit"]
