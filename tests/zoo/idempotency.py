"""Broken stores for the IDEM rules: duplicate event ids stored, re-numbered or overwritten."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_asm_contract._contract.model import Event, ExecutionResult
from pytest_asm_contract._contract.validation import as_events, as_execution_result
from reference_stores.memory import InMemorySessionStore
from tests.zoo import HISTORY_RULES


class _Appending(InMemorySessionStore):
    """Helper: store an event as the next of its session, with no duplicate check at all."""

    def _append_new(self, event: Event) -> Event:
        log = self._events.setdefault(event.session_id, [])
        stored = event.model_copy(update={"sequence_number": len(log) + 1}, deep=True)
        log.append(stored)
        self._event_ids.setdefault(stored.id, stored)
        return stored

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            doomed = list(self._events.get(session_id, []))
            super().delete_session(session_id)  # a failed write raises here, nothing removed
            for event in doomed:
                if self._event_ids.get(event.id) is event:
                    del self._event_ids[event.id]


class DuplicateRenumbered(_Appending):
    """A re-appended id is numbered and stored again (no unique constraint on the event id)."""

    BREAKS = ("IDEM-1", "IDEM-3", "IDEM-4", "EVT-4")
    # a repeated id stored under a new number misleads every check that follows an id
    ALSO = (
        *HISTORY_RULES,
        "BATCH-1",
        "BATCH-4",
        "BATCH-6",
        "DATA-3",
        "EVT-1",
        "FLUSH-3",
        "FLUSH-4",
        "SEQ-2",
    )

    def _store_event(self, event: Event) -> Event:
        return self._append_new(event)


class LastWriteWins(InMemorySessionStore):
    """A re-appended id overwrites the stored event's content (an upsert), keeping its number."""

    BREAKS = ("IDEM-1", "EVT-4")
    # a later copy of an id replaces the first one in every result
    ALSO = (*HISTORY_RULES, "BATCH-1", "BATCH-4", "FLUSH-4", "IDEM-3")

    def _store_event(self, event: Event) -> Event:
        existing = self._event_ids.get(event.id)
        if existing is None:
            return super()._store_event(event)
        log = self._events[existing.session_id]
        index = log.index(existing)
        replaced = event.model_copy(
            update={"sequence_number": existing.sequence_number, "session_id": existing.session_id},
            deep=True,
        )
        log[index] = replaced
        self._event_ids[event.id] = replaced
        return replaced


class DuplicatePerSession(_Appending):
    """Event ids are unique per session only (UNIQUE(session_id, id)), so an id already stored
    under another session is stored again."""

    BREAKS = ("IDEM-1", "IDEM-4")
    # its own write path passes the fault gate differently, so FLUSH-3 sees part of an operation
    ALSO = ("FLUSH-3",)

    def _store_event(self, event: Event) -> Event:
        for stored in self._events.get(event.session_id, ()):
            if stored.id == event.id:
                return stored
        return self._append_new(event)


class NoInBatchDedupe(_Appending):
    """append_events looks the batch's ids up among stored events once, before storing, so an id
    repeated inside the batch is stored twice."""

    BREAKS = ("IDEM-3",)
    # a repeated id inside a batch is stored twice wherever batches repeat ids
    # BATCH-6 and FLUSH-3: its batch writes bypass the fault gate, so the kit cannot fail them
    # FLUSH-4: the ambiguous-failure histories name it when an id stored twice was also flushed
    ALSO = (*HISTORY_RULES, "BATCH-1", "BATCH-6", "FLUSH-3", "FLUSH-4")

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        with self._lock:
            known = {e.id: self._event_ids[e.id] for e in batch if e.id in self._event_ids}
            stored = [known.get(e.id) or self._append_new(e) for e in batch]
            if stored:
                self._appended.notify_all()
        return [event.model_copy(deep=True) for event in stored]


class FlushStoresDuplicates(_Appending):
    """flush bulk-inserts the result's events without checking for ids already stored, so a
    retried flush stores its events again."""

    BREAKS = ("IDEM-1",)
    # duplicates stored by a flush show as repeated ids everywhere
    ALSO = (*HISTORY_RULES, "FLUSH-3", "FLUSH-4", "IDEM-3")

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        with self._lock:
            self._sessions[checked.session.id] = checked.session.model_copy(deep=True)
            self._runs[checked.run.id] = checked.run.model_copy(deep=True)
            for event in checked.events:
                self._append_new(event)
            if checked.events:
                self._appended.notify_all()


class CheckThenInsert(InMemorySessionStore):
    """The duplicate check and the insert are separate steps (no lock or unique constraint across
    them), so threads appending one new id at the same time all store it."""

    BREAKS = ("IDEM-4",)
    # the race shows in whichever concurrent check it hits first
    ALSO = (*HISTORY_RULES,)

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        # The writes pass the fault gate as the parent's do; the duplicate check is what races.
        with self._backend("append_events") as gate:
            with self._lock:
                written = self._announce_appends(gate, batch)
            stored = []
            for event in batch:
                with self._lock:
                    existing = self._event_ids.get(event.id)
                if existing is None:
                    time.sleep(0)  # let another thread run between the check and the insert
                    with self._lock:
                        log = self._events.setdefault(event.session_id, [])
                        existing = event.model_copy(
                            update={"sequence_number": len(log) + 1}, deep=True
                        )
                        log.append(existing)
                        self._event_ids[event.id] = existing
                        self._appended.notify_all()
                stored.append(existing)
            if written:
                gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in stored]
