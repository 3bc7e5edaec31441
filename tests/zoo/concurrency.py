"""Broken stores for the CONC rules (many threads on one store)."""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence

from pytest_asm_contract._contract.model import Event
from pytest_asm_contract._contract.validation import as_events, check_id
from reference_stores.memory import InMemorySessionStore
from tests.zoo import HISTORY_RULES


class AppendWithoutLock(InMemorySessionStore):
    """Appends read the session's highest number and write the next one without holding the lock,
    so concurrent appends get the same number. (A pause between the read and the write widens
    the window.)"""

    BREAKS = ("CONC-1",)
    # the race shows in whichever concurrent check it hits first
    ALSO = (*HISTORY_RULES, "SEQ-1")

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        # The writes pass the fault gate as the parent's do; only the lock is missing.
        with self._backend("append_events") as gate:
            written = self._announce_appends(gate, batch)
            stored: list[Event] = []
            for event in batch:
                existing = self._event_ids.get(event.id)
                if existing is None:
                    log = self._events.setdefault(event.session_id, [])
                    number = len(log) + 1
                    time.sleep(0.0005)
                    existing = event.model_copy(update={"sequence_number": number}, deep=True)
                    log.append(existing)
                    self._event_ids[existing.id] = existing
                stored.append(existing)
            if stored:
                with self._lock:
                    self._appended.notify_all()
            if written:
                gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in stored]


class CounterAheadOfEvents(InMemorySessionStore):
    """An append takes its numbers from a per-session counter in one step and writes the events in
    a second one (two transactions), so readers see the counter ahead of the stored events and
    holes where a slower append has not written yet. (A pause between the steps widens the
    window.)"""

    BREAKS = ("CONC-2",)
    # the counter moves before the events exist: readers and retries see the difference
    ALSO = (*HISTORY_RULES, "FLUSH-1", "FLUSH-4", "SEQ-2")

    def __init__(self) -> None:
        super().__init__()
        self._counters: dict[str, int] = {}

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        planned: dict[str, Event] = {}
        new: list[Event] = []
        # Both steps' writes pass the fault gate before either changes anything, as the parent's
        # do: the bug is the gap between the steps, not a write the kit cannot fail.
        with self._backend("append_events") as gate:
            with self._lock:
                written = self._announce_appends(gate, batch)
                for event in batch:
                    if event.id in planned:
                        continue
                    existing = self._event_ids.get(event.id)
                    if existing is None:
                        number = self._counters.get(event.session_id, 0) + 1
                        self._counters[event.session_id] = number
                        existing = event.model_copy(update={"sequence_number": number}, deep=True)
                        new.append(existing)
                    planned[event.id] = existing
            if new:
                time.sleep(0.001)
            with self._lock:
                for event in new:
                    log = self._events.setdefault(event.session_id, [])
                    bisect.insort(log, event, key=lambda e: e.sequence_number or 0)
                    self._event_ids[event.id] = event
                if new:
                    self._appended.notify_all()
            if written:
                gate.after_commit("append_events")
        return [planned[event.id].model_copy(deep=True) for event in batch]

    def get_latest_sequence(self, session_id: str) -> int:
        check_id(session_id, "session_id")
        with self._lock:
            # The counter, which an append moves before its events exist (flush numbers events
            # by the log, so the log's length counts too).
            stored = len(self._events.get(session_id, ()))
            return max(self._counters.get(session_id, 0), stored)

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            super().delete_session(session_id)
            self._counters.pop(session_id, None)
