"""Broken stores that only recorded histories expose: each passes every single-threaded check.

Their bugs need calls that overlap in time, or a retry after an ambiguous failure, to show; the
history checker (``pytest_asm_contract._concurrency.checking``) finds each of them, and
``tests/kit/test_histories.py`` asserts which check does. Short pauses in some of them widen the
window the bug needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_asm_contract._contract.model import Event, EventType, ExecutionResult
from pytest_asm_contract._contract.validation import (
    EventQuery,
    as_event,
    as_events,
    as_execution_result,
    check_id,
)
from reference_stores.memory import InMemorySessionStore
from tests.zoo import HISTORY_RULES


class BatchNumberedFromStaleCount(InMemorySessionStore):
    """append_events reads each session's highest number, builds the batch's events from it, and
    only then takes the lock to store them; a batch and an append that overlap get the same
    numbers. Alone, every call numbers correctly."""

    BREAKS = ("CONC-1",)
    # the race shows in whichever concurrent check it hits first
    ALSO = (*HISTORY_RULES, "SEQ-1")

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        # The writes pass the fault gate as the parent's do; the stale count is what races.
        with self._backend("append_events") as gate:
            with self._lock:
                written = self._announce_appends(gate, batch)
                next_number = {e.session_id: len(self._events.get(e.session_id, [])) for e in batch}
            time.sleep(0.0002)  # building the rows takes a moment; other writers get in
            stored: list[Event] = []
            with self._lock:
                planned: dict[str, Event] = {}
                for event in batch:
                    existing = self._event_ids.get(event.id) or planned.get(event.id)
                    if existing is None:
                        next_number[event.session_id] += 1
                        existing = event.with_sequence(next_number[event.session_id])
                        self._events.setdefault(event.session_id, []).append(existing)
                        self._event_ids[event.id] = existing
                        planned[event.id] = existing
                    stored.append(existing)
                if stored:
                    self._appended.notify_all()
            if written:
                gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in stored]


class QuietAppendHandedOff(InMemorySessionStore):
    """append_event, while other writes are in progress, leaves its event on a pile for the last
    of them to store (a group commit) and returns at once, before it is stored: a read that
    starts after it returned can miss it, and an append that starts later can get a lower
    number. Called while nothing else writes, it stores at once."""

    BREAKS = ("CONC-2",)
    # the race shows in whichever concurrent check it hits first
    ALSO = (*HISTORY_RULES, "PORT-2")

    def __init__(self) -> None:
        super().__init__()
        self._pile: list[Event] = []
        self._writing = 0
        self._pile_lock = threading.Lock()

    def _enter(self) -> None:
        with self._pile_lock:
            self._writing += 1

    def _leave(self) -> None:
        with self._pile_lock:
            self._writing -= 1
            pile = self._pile if self._writing == 0 else []
            if pile:
                self._pile = []
        if pile:
            with self._lock:
                for event in pile:
                    self._store_event(event)
                self._appended.notify_all()

    def append_event(self, event: Event) -> None:
        event = as_event(event)
        with self._pile_lock:
            if self._writing > 0:
                self._pile.append(event)
                return  # the bug: "stored", but only the last writer out will store it
            self._writing += 1
        try:
            super().append_events([event])
        finally:
            self._leave()

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        self._enter()
        try:
            return super().append_events(events)
        finally:
            self._leave()

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        self._enter()
        try:
            super().flush(result)
        finally:
            self._leave()


class FlushEventsInTwoSteps(InMemorySessionStore):
    """flush stores the session, the run and the first half of its events, releases the lock,
    and stores the rest in a second step (two transactions): a reader can see half a flush, and
    other writers' events land between the halves."""

    BREAKS = ("FLUSH-5",)
    # a flush in two steps is seen in part by readers
    ALSO = (*HISTORY_RULES,)

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        half = (len(checked.events) + 1) // 2
        # Every write passes the fault gate before the first step, as the parent's do: the bug
        # is the lock released between the halves, not a write the kit cannot fail.
        with self._backend("flush") as gate:
            with self._lock:
                for what in ("session", "run", "events"):
                    gate.before_write(what)
                self._sessions[checked.session.id] = checked.session.model_copy(deep=True)
                self._runs[checked.run.id] = checked.run.model_copy(deep=True)
                for event in checked.events[:half]:
                    self._store_event(event)
                self._appended.notify_all()
            time.sleep(0.0005)  # the second transaction
            with self._lock:
                for event in checked.events[half:]:
                    self._store_event(event)
                self._appended.notify_all()
            gate.after_commit("flush")


class DedupeAgainstRecentTail(InMemorySessionStore):
    """A repeated id is looked for among the session's last 8 events only (the tail a retry
    "normally" lands on), not in a global index: a retry that arrives after other writers have
    appended more stores a second copy under a new number."""

    BREAKS = ("IDEM-1",)
    # the race shows in whichever concurrent check it hits first
    ALSO = (*HISTORY_RULES, "FLUSH-3", "FLUSH-4")
    WINDOW = 8

    def _store_event(self, event: Event) -> Event:
        log = self._events.setdefault(event.session_id, [])
        for stored in log[-self.WINDOW :]:
            if stored.id == event.id:
                return stored
        stored = event.model_copy(update={"sequence_number": len(log) + 1}, deep=True)
        log.append(stored)
        self._event_ids.setdefault(stored.id, stored)
        return stored

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
            for run_id in [r.id for r in self._runs.values() if r.session_id == session_id]:
                del self._runs[run_id]
            for event in self._events.pop(session_id, []):
                self._event_ids.pop(event.id, None)


class PublishedOutOfOrder(InMemorySessionStore):
    """Numbers come from a per-session counter under one lock and the events are published into
    the session's log under another, a moment later: a reader can see n before n - 1, and a
    reader tailing with after=cursor then skips n - 1 for good."""

    BREAKS = ("SEQ-5",)
    # the race shows in whichever concurrent check it hits first
    ALSO = (*HISTORY_RULES,)
    capabilities = frozenset[str]()  # its reads do not long-poll

    def __init__(self) -> None:
        super().__init__()
        self._counter_lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._published: dict[str, dict[int, Event]] = {}

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        # The writes pass the fault gate as the parent's do; the late publishing is what races.
        with self._backend("append_events") as gate:
            with self._lock:
                written = self._announce_appends(gate, batch)
            taken = self._number_and_publish(batch)
            if written:
                gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in taken]

    def _number_and_publish(self, batch: Sequence[Event]) -> list[Event]:
        """Number the new events under the counter's lock, then publish them under the log's."""
        taken: list[Event] = []
        new: list[Event] = []
        with self._counter_lock:
            known: dict[str, Event] = {}
            for event in batch:
                existing = self._event_ids.get(event.id) or known.get(event.id)
                if existing is None:
                    number = self._counters.get(event.session_id, 0) + 1
                    self._counters[event.session_id] = number
                    existing = event.with_sequence(number)
                    known[event.id] = existing
                    self._event_ids[event.id] = existing
                    new.append(existing)
                taken.append(existing)
        time.sleep(0)  # publishing happens after the counter's lock is released
        with self._lock:
            for event in new:
                self._published.setdefault(event.session_id, {})[event.sequence_number or 0] = event
                self._events.setdefault(event.session_id, []).append(event)
            self._appended.notify_all()
        return taken

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        with self._backend("flush") as gate:
            with self._lock:
                for what in ("session", "run", "events"):
                    gate.before_write(what)
                self._sessions[checked.session.id] = checked.session.model_copy(deep=True)
                self._runs[checked.run.id] = checked.run.model_copy(deep=True)
            self._number_and_publish(checked.events)
            gate.after_commit("flush")

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,
        since: Any = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> list[Event]:
        check_id(session_id, "session_id")
        query = EventQuery.of(
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,
        )
        with self._lock:
            published = self._published.get(session_id, {})
            log = [published[n] for n in sorted(published)]
        return [event.model_copy(deep=True) for event in query.apply(log)]

    def get_latest_sequence(self, session_id: str) -> int:
        check_id(session_id, "session_id")
        with self._lock:
            return len(self._published.get(session_id, {}))

    def delete_session(self, session_id: str) -> None:
        with self._counter_lock, self._lock:
            super().delete_session(session_id)
            self._counters.pop(session_id, None)
            self._published.pop(session_id, None)
