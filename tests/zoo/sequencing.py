"""Broken stores for the SEQ rules: wrong first number, gaps, repeats, shared counters, holes."""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence

from pytest_asm_contract._contract.model import Event
from pytest_asm_contract._contract.validation import as_event, as_events
from reference_stores.memory import InMemorySessionStore
from tests.zoo import HISTORY_RULES


class _CountingStore(InMemorySessionStore):
    """The in-memory store numbering events from a per-session counter instead of the log length,
    as a database store does with a counter row. Correct on its own; mutants break one step."""

    def __init__(self) -> None:
        super().__init__()
        self._counters: dict[str, int] = {}

    def _take_number(self, session_id: str) -> int:
        number = self._counters.get(session_id, 0) + 1
        self._counters[session_id] = number
        return number

    def _store_event(self, event: Event) -> Event:
        existing = self._event_ids.get(event.id)
        if existing is not None:
            return existing
        return self._insert(event, self._take_number(event.session_id))

    def _insert(self, event: Event, number: int) -> Event:
        """Put ``event`` into its session's log at its number's place and index its id."""
        stored = event.model_copy(update={"sequence_number": number}, deep=True)
        with self._lock:
            log = self._events.setdefault(stored.session_id, [])
            bisect.insort(log, stored, key=lambda e: e.sequence_number or 0)
            self._event_ids[stored.id] = stored
            self._appended.notify_all()
        return stored

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            super().delete_session(session_id)
            self._counters.pop(session_id, None)


class SequenceStartsAtZero(InMemorySessionStore):
    """Numbers start at 0: the new number is the count of stored events, not the count + 1."""

    BREAKS = ("SEQ-1",)
    # every check that reads a sequence number sees it one too low
    ALSO = (
        "BATCH-1",
        "BATCH-2",
        "BATCH-3",
        "BATCH-4",
        "BATCH-5",
        "BATCH-6",
        "CONC-1",
        "CONC-2",
        "DATA-1",
        "DATA-2",
        "DATA-3",
        "EVT-1",
        "EVT-2",
        "EVT-3",
        "EVT-4",
        "FLUSH-1",
        "FLUSH-2",
        "FLUSH-3",
        "FLUSH-4",
        "FLUSH-5",
        "IDEM-1",
        "IDEM-3",
        "IDEM-4",
        "POLL-1",
        "SEQ-3",
        "SEQ-4",
        "SEQ-5",
        "SES-4",
    )

    def _store_event(self, event: Event) -> Event:
        existing = self._event_ids.get(event.id)
        if existing is not None:
            return existing
        log = self._events.setdefault(event.session_id, [])
        stored = event.model_copy(update={"sequence_number": len(log)}, deep=True)
        log.append(stored)
        self._event_ids[stored.id] = stored
        return stored


class GapAfterFailedWrite(_CountingStore):
    """append_event_with_sequence (and so append_event) takes the session's next number before it
    validates the event, so a rejected event leaves a gap in the numbering."""

    BREAKS = ("SEQ-1",)

    def append_event_with_sequence(self, event: Event) -> Event:
        with self._lock:
            session_id = getattr(event, "session_id", None)
            number = self._take_number(session_id) if isinstance(session_id, str) else 0
            checked = as_event(event)  # a rejection leaves `number` taken
            existing = self._event_ids.get(checked.id)
            if existing is not None:
                self._counters[checked.session_id] = number - 1  # a duplicate gives it back
                return existing.model_copy(deep=True)
            return self._insert(checked, number).model_copy(deep=True)


class CallerSequenceKept(InMemorySessionStore):
    """A sequence_number supplied by the caller is stored as given instead of being replaced."""

    BREAKS = ("SEQ-3",)
    # kept caller numbers collide with assigned ones under concurrency
    ALSO = (*HISTORY_RULES,)

    def _store_event(self, event: Event) -> Event:
        existing = self._event_ids.get(event.id)
        if existing is not None:
            return existing
        log = self._events.setdefault(event.session_id, [])
        number = event.sequence_number or len(log) + 1
        stored = event.model_copy(update={"sequence_number": number}, deep=True)
        log.append(stored)
        self._event_ids[stored.id] = stored
        return stored


class OneCounterForAllSessions(_CountingStore):
    """One global counter numbers the events of every session (a single database sequence), so a
    session's numbers skip the ones other sessions took."""

    BREAKS = ("SEQ-4", "SES-4")
    # numbers shared across sessions break every per-session numbering check
    ALSO = (*HISTORY_RULES, "BATCH-4", "BATCH-6", "FLUSH-3", "SEQ-1", "SES-4")

    def _take_number(self, session_id: str) -> int:
        return super()._take_number("")


class LatestSequenceIsNext(InMemorySessionStore):
    """get_latest_sequence returns the next number to assign instead of the last assigned one."""

    BREAKS = ("SEQ-2",)
    # every check that reads get_latest_sequence sees one too many
    ALSO = (
        "BATCH-1",
        "BATCH-2",
        "BATCH-3",
        "BATCH-4",
        "BATCH-6",
        "CONC-1",
        "CONC-2",
        "DATA-3",
        "FLUSH-1",
        "FLUSH-2",
        "FLUSH-3",
        "FLUSH-4",
        "FLUSH-5",
        "IDEM-1",
        "IDEM-3",
        "PORT-2",
        "SEQ-4",
        "SES-4",
    )

    def get_latest_sequence(self, session_id: str) -> int:
        return super().get_latest_sequence(session_id) + 1


class UnlockedCounter(_CountingStore):
    """The counter is read, then written back + 1, without a lock held across both steps (a
    read-modify-write outside a transaction): concurrent appends get the same number."""

    BREAKS = ("SEQ-1", "CONC-1")
    # the race shows in whichever concurrent check it hits first
    ALSO = (*HISTORY_RULES,)

    def _take_number(self, session_id: str) -> int:
        current = self._counters.get(session_id, 0)
        time.sleep(0)  # let another thread run between the read and the write
        self._counters[session_id] = current + 1
        return current + 1

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        # The writes pass the fault gate as the parent's do; the counter is what races.
        with self._backend("append_events") as gate:
            with self._lock:
                written = self._announce_appends(gate, batch)
            stored = []
            for event in batch:
                with self._lock:
                    existing = self._event_ids.get(event.id)
                if existing is None:
                    existing = self._insert(event, self._take_number(event.session_id))
                stored.append(existing)
            if written:
                gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in stored]


class CommittedOutOfOrder(_CountingStore):
    """Numbers are taken in one step and the events made visible in a later one (a counter bumped
    outside the insert's transaction), so concurrent writers commit out of order and a reader
    polling with after=cursor sees n+1 before n and skips n forever."""

    BREAKS = ("SEQ-5",)
    # the race shows in whichever concurrent check it hits first
    ALSO = (*HISTORY_RULES,)

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        # Every write passes the fault gate before the numbers are taken, as the parent's do:
        # the bug is the late commit, not a write the kit cannot fail.
        with self._backend("append_events") as gate:
            with self._lock:
                written = self._announce_appends(gate, batch)
                taken: list[Event] = []
                known: dict[str, Event] = {}
                for event in batch:
                    existing = self._event_ids.get(event.id) or known.get(event.id)
                    if existing is None:
                        number = self._take_number(event.session_id)
                        existing = event.model_copy(update={"sequence_number": number}, deep=True)
                        known[event.id] = existing
                        self._event_ids[event.id] = existing  # ids reserved with the numbers
                    taken.append(existing)
            time.sleep(0)  # the commit happens later, after other writers may have committed
            for event in known.values():
                self._insert(event, event.sequence_number or 0)
            if written:
                gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in taken]
