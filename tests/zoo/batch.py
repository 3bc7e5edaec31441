"""Broken stores for the BATCH rules (append_events)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pytest_asm_contract._contract.errors import StoreError, validation_error
from pytest_asm_contract._contract.model import Event
from pytest_asm_contract._contract.validation import as_events
from reference_stores.memory import InMemorySessionStore
from tests.zoo import HISTORY_RULES


class BatchSortedById(InMemorySessionStore):
    """append_events returns the stored events sorted by id instead of in input order."""

    BREAKS = ("BATCH-1",)
    # results out of input order (the order of random ids) mislead every check that maps a batch to
    # its result
    ALSO = (
        *HISTORY_RULES,
        "BATCH-2",
        "BATCH-3",
        "BATCH-4",
        "EVT-2",
        "EVT-3",
        "FLUSH-1",
        "IDEM-3",
        "POLL-0",
        "SEQ-1",
        "SEQ-3",
        "SEQ-4",
    )

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        return sorted(super().append_events(events), key=lambda event: event.id)


class EmptyBatchRaises(InMemorySessionStore):
    """append_events([]) raises validation_error instead of returning []."""

    BREAKS = ("BATCH-2",)

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        if isinstance(events, list) and not events:
            raise validation_error("a batch needs at least one event")
        return super().append_events(events)


class BatchNotAtomic(InMemorySessionStore):
    """append_events validates and stores element by element, so the valid prefix of a batch with
    an invalid element stays stored."""

    BREAKS = ("BATCH-3",)
    # a batch stored element by element is seen in part by readers and faults
    ALSO = (*HISTORY_RULES, "BATCH-6", "FLUSH-3", "SEQ-1")

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        if not isinstance(events, list):
            return super().append_events(events)
        return [super(BatchNotAtomic, self).append_events([event])[0] for event in events]


class BatchNumbersConsumedOnFailure(InMemorySessionStore):
    """The session counter is advanced for every element before the batch is validated, and not
    rolled back when validation fails: a rejected batch leaves a gap in the numbering."""

    # SEQ-1 first: a single append goes through the batch path here, and "a failed write
    # consumes no number" is SEQ-1's; a rejected batch numbering its elements is BATCH-3's
    BREAKS = ("SEQ-1", "BATCH-3")
    # numbers used up by rejected batches leave gaps wherever numbering is checked
    ALSO = (*HISTORY_RULES, "BATCH-6", "FLUSH-3")

    def __init__(self) -> None:
        super().__init__()
        self._consumed: dict[str, int] = {}

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        try:
            return super().append_events(events)
        except StoreError:
            with self._lock:
                for event in events if isinstance(events, list) else ():
                    session_id = getattr(event, "session_id", None)
                    if isinstance(session_id, str):
                        self._consumed[session_id] = self._consumed.get(session_id, 0) + 1
            raise

    def _store_event(self, event: Event) -> Event:
        existing = self._event_ids.get(event.id)
        if existing is not None:
            return existing
        log = self._events.setdefault(event.session_id, [])
        number = len(log) + 1 + self._consumed.get(event.session_id, 0)
        stored = event.model_copy(update={"sequence_number": number}, deep=True)
        log.append(stored)
        self._event_ids[stored.id] = stored
        return stored


class BatchRawExceptionOnBadInput(InMemorySessionStore):
    """append_events groups the batch by session before validating it, so a None or dict element
    (or a None batch) escapes as a raw AttributeError/TypeError instead of validation_error."""

    BREAKS = ("BATCH-3", "PORT-3")

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        _lock_order = sorted({event.session_id for event in events})
        return super().append_events(events)


class MixedBatchOneCounter(InMemorySessionStore):
    """A batch is numbered with one counter, started from the first event's session, so a batch
    mixing sessions numbers the other sessions' events wrongly."""

    BREAKS = ("BATCH-4",)
    # one counter for a mixed batch hands out another session's numbers
    ALSO = (*HISTORY_RULES, "BATCH-6", "FLUSH-3", "SES-4")

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        stored: list[Event] = []
        with self._lock:
            if not batch:
                return []
            number = len(self._events.get(batch[0].session_id, ()))
            for event in batch:
                existing = self._event_ids.get(event.id)
                if existing is None:
                    number += 1
                    existing = event.model_copy(update={"sequence_number": number}, deep=True)
                    self._events.setdefault(event.session_id, []).append(existing)
                    self._event_ids[existing.id] = existing
                stored.append(existing)
            self._appended.notify_all()
        return [event.model_copy(deep=True) for event in stored]


class BatchAppendedOneByOne(InMemorySessionStore):
    """append_events appends a batch one event at a time, each under its own lock, so concurrent
    batches to one session interleave. (The pause between events widens the window.)"""

    BREAKS = ("BATCH-5",)
    # a batch stored element by element is seen in part by readers
    ALSO = (*HISTORY_RULES,)

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        # Every write passes the fault gate before the first event is stored, as the parent's
        # do: the bug is the lock released between events, not a write the kit cannot fail.
        with self._backend("append_events") as gate:
            with self._lock:
                written = self._announce_appends(gate, batch)
            stored: list[Event] = []
            for index, event in enumerate(batch):
                if index:
                    time.sleep(0.001)
                with self._lock:
                    stored.append(self._store_event(event))
                    self._appended.notify_all()
            if written:
                gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in stored]
