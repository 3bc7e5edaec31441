"""The history checker: everything in a history that no correct store could have produced.

* every call succeeded (CONC-1 for writes, CONC-2 for readers, PORT-3 for a raw exception);
* each session's final log is exactly 1..n, holds every event that was appended and nothing else,
  each id once (CONC-1; IDEM-4 for ids appended by racing callers, IDEM-1 for retried or repeated
  ones), and every caller got back exactly the stored event;
* the new events of one call form one consecutive block per session, in input order (BATCH-5;
  FLUSH-5 for a flush); callers racing on one new id all got the same event;
* each session's log is linearizable (``ordering.py``).

The checker is sound (everything it reports is a real violation) and, for the writes and the
reads whose visible prefix is exact, complete: if it reports nothing, a serial order consistent
with real time exists. It costs O(n log n) in the number of calls, plus the number of events the
reads returned.
"""

from __future__ import annotations

import dataclasses
import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pytest_asm_contract._concurrency.formatting import first_defect, numbers_text, result_text
from pytest_asm_contract._concurrency.ordering import INF, SessionOrder, Unit
from pytest_asm_contract._concurrency.recording import AttemptError, Call, History, Op
from pytest_asm_contract._concurrency.violations import Violation
from pytest_asm_contract._contract.errors import RETRYABLE_CODES
from pytest_asm_contract._contract.model import Event

RETRYABLE = frozenset(code.value for code in RETRYABLE_CODES)
#: At most this many violations of one kind are listed; the rest are counted (a history of a
#: racy store can break a rule dozens of times; three show the pattern).
MAX_LISTED = 3


class _Checker:
    """One pass over a history: the final state, what callers got back, blocks, flushes."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.found: dict[str, list[Violation]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, rule: str, kind: str, message: str, *calls: Call) -> None:
        key = f"{rule}:{kind}"
        self.counts[key] += 1
        if len(self.found[key]) < MAX_LISTED:
            self.found[key].append(Violation(rule, kind, message, tuple(calls)))

    def result(self) -> list[Violation]:
        out: list[Violation] = []
        for key, listed in self.found.items():
            extra = self.counts[key] - len(listed)
            out.extend(listed[:-1])
            out.append(dataclasses.replace(listed[-1], omitted=extra))
        return out

    # -- driving ----------------------------------------------------------------------------------
    def run(self) -> list[Violation]:
        h = self.history
        for text in h.final_errors:
            self.add("CONC-2", "final-read-failed", f"reading the final state failed: {text}")
        self.by_id: dict[str, list[Call]] = defaultdict(list)
        self.fresh_in: dict[str, list[Call]] = defaultdict(list)
        by_id, fresh_in = self.by_id, self.fresh_in
        for call in h.calls:
            if call.error is not None and call.failed:
                self._failed(call)
            for event in call.events:
                calls = by_id[event.id]
                if not calls or calls[-1] is not call:
                    calls.append(call)
            for event_id in call.fresh:
                fresh_in[event_id].append(call)
        self.creators = self._creators()
        self.stored: dict[str, Event] = {}
        self._check_final_logs()
        self._check_first_write_wins()
        self._check_results()
        units = self._units()
        self._check_blocks(units)
        self._check_flush_records(units)
        order = SessionOrder(h, self.creators, self.add)
        for session_id in h.final_events:
            order.check(session_id, units.get(session_id, []))
        return self.result()

    def _creators(self) -> dict[str, tuple[Call, ...]]:
        """For each id, the calls that may have stored it first.

        That is the calls introducing it (several when callers race on it), and any call that
        repeats it but began before every one of those had finished: when a client puts off the
        retry of a failed call, its own later calls may store the id first.
        """
        creators: dict[str, tuple[Call, ...]] = {}
        for event_id, calls in self.by_id.items():
            fresh = self.fresh_in.get(event_id)
            if not fresh:
                creators[event_id] = tuple(calls)
                continue
            # Once one caller got the event back it was stored; a call repeating it later
            # cannot have stored it.
            done = min((c.end for c in fresh if c.ok), default=INF)
            early = [c for c in calls if event_id not in c.fresh and c.start < done]
            creators[event_id] = tuple(sorted([*fresh, *early], key=lambda c: c.index))
        return creators

    def _failed(self, call: Call) -> None:
        if call.error_code is None:
            self.add(
                "PORT-3",
                "raw-exception",
                f"a raw exception escaped the store: {call.error} (failures surface only as "
                "StoreError)",
                call,
            )
        elif call.op.writes:
            self.add("CONC-1", "call-failed", f"a concurrent write failed: {call.error}", call)
        else:
            self.add("CONC-2", "read-failed", f"a concurrent read failed: {call.error}", call)

    def _rule_for_id(self, event_id: str) -> str:
        calls = self.by_id.get(event_id, [])
        if len(self.creators.get(event_id, ())) > 1:
            return "IDEM-4"
        if any(c.attempts > 1 or c.also for c in calls):
            return "IDEM-1"
        if len(calls) > 1:
            return "IDEM-1"
        return "CONC-1"

    # -- the final state ------------------------------------------------------------------------
    def _check_final_logs(self) -> None:
        h = self.history
        where: dict[str, list[Event]] = defaultdict(list)
        for session_id, log in h.final_events.items():
            numbers = [e.sequence_number for e in log]
            if numbers != list(range(1, len(log) + 1)):
                self.add(
                    "CONC-1",
                    "final-numbers",
                    f"session {session_id!r} ends with sequence numbers {numbers_text(numbers)}, "
                    f"not exactly 1..{len(log)}: {first_defect(numbers)}",
                )
            for event in log:
                where[event.id].append(event)
        for event_id, copies in where.items():
            self.stored.setdefault(event_id, copies[0])
            if len(copies) > 1:
                rule = self._rule_for_id(event_id)
                if rule == "IDEM-1" and any(c.op is Op.FLUSH for c in self.by_id[event_id]):
                    rule = "FLUSH-4" if self._retried(event_id) else rule
                self.add(
                    rule,
                    "stored-twice",
                    f"event {event_id!r} is stored {len(copies)} times "
                    f"(as {[(e.session_id, e.sequence_number) for e in copies]}); one id, one "
                    "stored event",
                    *self.by_id.get(event_id, [])[:6],
                )
            if event_id not in self.by_id:
                self.add(
                    "CONC-1",
                    "phantom",
                    f"event {event_id!r} (#{copies[0].sequence_number} of "
                    f"{copies[0].session_id!r}) is stored, but no call appended it",
                )
        for event_id, calls in self.by_id.items():
            if event_id in where:
                continue
            done = [c for c in calls if c.ok]
            if done:
                self.add(
                    "CONC-1",
                    "lost",
                    f"event {event_id!r} was appended successfully but is not stored",
                    *done[:3],
                )

    def _retried(self, event_id: str) -> bool:
        return any(c.retried for c in self.by_id.get(event_id, []))

    def _check_first_write_wins(self) -> None:
        """A stored event holds what one of the calls that may have stored it first sent."""
        for event_id, stored in self.stored.items():
            creators = self.creators.get(event_id, ())
            versions = [e for c in creators for e in c.events if e.id == event_id]
            if not versions or any(
                v.data == stored.data and v.type == stored.type and v.run_id == stored.run_id
                for v in versions
            ):
                continue
            later = [c for c in self.by_id.get(event_id, []) if c not in creators]
            self.add(
                "IDEM-1",
                "last-write-wins",
                f"event {event_id!r} is stored with data {stored.data}, which none of the calls "
                "that could have stored it first sent (a later repeat's copy?); the first write "
                "of an id wins",
                *creators[:2],
                *later[:2],
            )

    def _check_results(self) -> None:
        """Every caller got back exactly the stored event; first write wins."""
        for call in self.history.calls:
            if not call.ok or not call.op.writes:
                continue
            returned: list[Any]
            if call.op is Op.APPEND:
                returned = [call.result]
            elif call.op is Op.BATCH:
                returned = list(call.result) if isinstance(call.result, list) else [call.result]
                if len(returned) != len(call.events):
                    self.add(
                        "BATCH-5",
                        "batch-result",
                        f"append_events of {len(call.events)} events returned {len(returned)}",
                        call,
                    )
                    continue
            else:
                returned = []
            for given, got in zip(call.events, returned, strict=False):
                self._check_returned(call, given, got)
            for other in call.also:
                if isinstance(other, AttemptError):
                    if other.code not in RETRYABLE:
                        self.add(
                            "IDEM-4",
                            "attempt-failed",
                            f"an earlier attempt of this call, still running when it was "
                            f"retried, failed with {other.text}: racing appends of one id must "
                            "all get the stored event back",
                            call,
                        )
                    continue
                if other != call.result:
                    self.add(
                        "IDEM-4",
                        "attempts-disagree",
                        f"an earlier attempt of this call, still running when it was retried, "
                        f"returned {result_text(other)} but the retry returned "
                        f"{result_text(call.result)}: a retried write must be renumbered never",
                        call,
                    )
        for event_id, racers in self.fresh_in.items():
            if len(racers) < 2:
                continue
            answers = {
                repr(c.result)
                for c in racers
                if c.ok and c.op is Op.APPEND and isinstance(c.result, Event)
            }
            answers |= {
                repr(c.result[0])
                for c in racers
                if c.ok and c.op is Op.BATCH and isinstance(c.result, list) and c.result
            }
            if len(answers) > 1:
                self.add(
                    "IDEM-4",
                    "racers-disagree",
                    f"{len(racers)} callers raced on new id {event_id!r} and were told "
                    f"{len(answers)} different events",
                    *racers[:6],
                )

    def _check_returned(self, call: Call, given: Event, got: Any) -> None:
        stored = self.stored.get(given.id)
        if not isinstance(got, Event) or got.id != given.id:
            self.add(
                "CONC-1",
                "wrong-result",
                f"for {given.id!r} the caller got {got!r}",
                call,
            )
            return
        if stored is None or got == stored:
            return
        rule = self._rule_for_id(given.id)
        if rule == "CONC-1" and given.id not in call.fresh:
            rule = "IDEM-1"
        self.add(
            rule,
            "result-differs",
            f"the caller was told {given.id!r} is #{got.sequence_number} of "
            f"{got.session_id!r}, but the store holds #{stored.sequence_number} of "
            f"{stored.session_id!r}"
            + ("" if got.sequence_number != stored.sequence_number else " with other fields")
            + ("" if given.id in call.fresh else " (a repeat must return the first stored event)"),
            call,
        )

    # -- blocks ---------------------------------------------------------------------------------
    def _units(self) -> dict[str, list[Unit]]:
        """Group each session's stored numbers by the calls that created them."""
        units: dict[tuple[tuple[int, ...], str], Unit] = {}
        for session_id, log in self.history.final_events.items():
            for event in log:
                creators = self.creators.get(event.id)
                if not creators or event.sequence_number is None:
                    continue
                if self.stored.get(event.id) is not event:
                    continue  # a second copy: reported already
                key = (tuple(c.index for c in creators), session_id)
                unit = units.get(key)
                if unit is None:
                    unit = units[key] = Unit(tuple(creators), session_id)
                unit.numbers.append(event.sequence_number)
        grouped: dict[str, list[Unit]] = defaultdict(list)
        for unit in units.values():
            grouped[unit.session_id].append(unit)
        return grouped

    def _check_blocks(self, units: Mapping[str, list[Unit]]) -> None:
        for session_id, session_units in units.items():
            numbered = {e.sequence_number: e.id for e in self.history.final_events[session_id]}
            for unit in session_units:
                if unit.is_race:
                    continue
                call = unit.calls[0]
                mine = [
                    e.id
                    for e in _unique(call.events)
                    if e.session_id == session_id
                    and e.id in self.stored
                    and self.stored[e.id].session_id == session_id
                ]
                order = [
                    self.stored[i].sequence_number or 0
                    for i in mine
                    if self.creators.get(i) == unit.calls
                ]
                # Ids another call may have stored first (a repeat racing a put-off retry) may
                # sit inside the block or outside it.
                maybe = {i for i in mine if call in self.creators.get(i, ())}
                if not order:
                    continue
                inside = range(min(order), max(order) + 1)
                foreign = [n for n in inside if n not in order and numbered.get(n) not in maybe]
                if order != sorted(order) or foreign:
                    flush = call.op is Op.FLUSH
                    self.add(
                        "FLUSH-5" if flush else "BATCH-5",
                        "block-interleaved",
                        f"the {len(order)} new events this {'flush' if flush else 'batch'} "
                        f"stored in {session_id!r} got numbers {numbers_text(order)}: not "
                        "one consecutive block in input order, so other writers got in between",
                        call,
                    )

    def _check_flush_records(self, units: Mapping[str, list[Unit]]) -> None:
        """A flush's run is stored as given; the session record is the last flush's."""
        h = self.history
        for call in h.calls:
            if call.op is not Op.FLUSH or not call.ok or call.flushed_run is None:
                continue
            if call.run_id in h.final_runs and h.final_runs[call.run_id] != call.flushed_run:
                self.add(
                    "FLUSH-5",
                    "run-lost",
                    f"after the workload, run {call.run_id!r} is "
                    f"{result_text(h.final_runs[call.run_id])}, not the flushed run",
                    call,
                )
        flush_calls = [c for c in h.calls if c.op is Op.FLUSH]
        for session_id, session_units in units.items():
            flushes = [u for u in session_units if u.flush is not None and u.numbers]
            if not flushes or session_id not in h.final_sessions:
                continue
            last = max(flushes, key=lambda u: max(u.numbers))
            expected = last.calls[0].flushed_session
            final = h.final_sessions[session_id]
            writer = next(
                (
                    c
                    for c in reversed(flush_calls)
                    if c.session_id == session_id and c.flushed_session == final
                ),
                None,
            )
            if (
                writer is not None
                and writer.retried
                and (writer.also or writer.end > last.calls[0].start)
            ):
                continue  # an attempt of that retried flush saved its session after the last one
            if expected is not None and final != expected:
                self.add(
                    "FLUSH-5",
                    "session-record",
                    f"the last flush in {session_id!r}'s log (numbers {numbers_text(last.numbers)})"
                    f" saved session version {result_text(expected)}, but the store ended with "
                    f"{result_text(final)}: a flush's session and events are one atomic step",
                    *([last.calls[0]] + ([writer] if writer else [])),
                )


def _unique(events: Iterable[Event]) -> Iterator[Event]:
    seen: set[str] = set()
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            yield event


def check_history(history: History) -> list[Violation]:
    """Every contract violation the history shows (empty when a serial order explains it)."""
    # The checker allocates many small objects and frees them all at the end: the cyclic
    # garbage collector would only rescan the history's events over and over (half the time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _Checker(history).run()
    finally:
        if enabled:
            gc.enable()


__all__ = ["check_history"]
