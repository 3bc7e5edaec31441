"""Broken stores whose bugs only show in sequences of operations.

Each one passes a single call of every operation; it takes a particular order of calls (a delete
then an append, a failed batch then a flush, a run completed then another started...) to expose
it. The state machine alone must catch every one of them (``tests/plugin/test_stateful.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pytest_asm_contract._contract.errors import StoreError
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from pytest_asm_contract._contract.validation import (
    EventQuery,
    Page,
    as_event,
    as_execution_result,
)
from reference_stores.memory import InMemorySessionStore


class _CountingStore(InMemorySessionStore):
    """Numbers events from a per-session counter instead of the log length (not broken itself)."""

    def __init__(self) -> None:
        super().__init__()
        self._counters: dict[str, int] = {}

    def _next_number(self, session_id: str) -> int:
        number = self._counters.get(session_id, 0) + 1
        self._counters[session_id] = number
        return number

    def _store_event(self, event: Event) -> Event:
        existing = self._event_ids.get(event.id)
        if existing is not None:
            return existing
        log = self._events.setdefault(event.session_id, [])
        stored = event.model_copy(
            update={"sequence_number": self._next_number(event.session_id)}, deep=True
        )
        log.append(stored)
        self._event_ids[stored.id] = stored
        return stored

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            super().delete_session(session_id)
            self._counters.pop(session_id, None)


class CounterNotResetOnDelete(_CountingStore):
    """delete_session removes the events but leaves the session's counter behind, so the next
    append to that session id continues at n+1 instead of starting again at 1."""

    BREAKS = ("SES-4",)

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            InMemorySessionStore.delete_session(self, session_id)


class BatchRepeatOnlyAdjacent(InMemorySessionStore):
    """append_events checks a repeated id only against the element just before it and the ids
    stored before the batch: a repeat further down the batch is stored a second time."""

    BREAKS = ("IDEM-3",)

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        from pytest_asm_contract._contract.validation import as_events

        batch = as_events(events)
        with self._backend("append_events") as gate, self._lock:
            gate.before_write("events")
            known = dict(self._event_ids)
            stored: list[Event] = []
            for index, event in enumerate(batch):
                if index and batch[index - 1].id == event.id:
                    stored.append(stored[-1])
                elif event.id in known:
                    stored.append(known[event.id])
                else:
                    log = self._events.setdefault(event.session_id, [])
                    new = event.model_copy(update={"sequence_number": len(log) + 1}, deep=True)
                    log.append(new)
                    self._event_ids[new.id] = new
                    stored.append(new)
            self._appended.notify_all()  # wake long-polling readers, as the parent does
            gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in stored]


class FailedBatchShiftsFlushNumbers(InMemorySessionStore):
    """append_events hands out numbers to the valid elements before it finds an invalid one and
    never takes them back; flush numbers after those reserved numbers, leaving a gap."""

    BREAKS = ("SEQ-1",)

    def __init__(self) -> None:
        super().__init__()
        self._reserved: dict[str, int] = {}
        self._flushing = threading.local()

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        try:
            return super().append_events(events)
        except StoreError:
            if isinstance(events, list):
                with self._lock:
                    for event in events:
                        try:
                            valid = as_event(event)
                        except StoreError:
                            break
                        self._reserved[valid.session_id] = (
                            self._reserved.get(valid.session_id, 0) + 1
                        )
            raise

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        self._flushing.active = True
        try:
            super().flush(result)
        finally:
            self._flushing.active = False

    def _store_event(self, event: Event) -> Event:
        if not getattr(self._flushing, "active", False) or event.id in self._event_ids:
            return super()._store_event(event)
        log = self._events.setdefault(event.session_id, [])
        number = len(log) + 1 + self._reserved.get(event.session_id, 0)
        stored = event.model_copy(update={"sequence_number": number}, deep=True)
        log.append(stored)
        self._event_ids[stored.id] = stored
        return stored

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            super().delete_session(session_id)
            self._reserved.pop(session_id, None)


class LimitBeforeAfter(InMemorySessionStore):
    """get_events with both limit and after takes the first `limit` events, then drops those not
    after the cursor (limit applied before the other filters)."""

    BREAKS = ("EVT-3",)

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> list[Event]:
        EventQuery.of(after=after, limit=limit)
        if after is None or limit is None:
            return super().get_events(
                session_id,
                run_id=run_id,
                type=type,
                since=since,
                after=after,
                before=before,
                limit=limit,
                wait_timeout_ms=wait_timeout_ms,
            )
        head = super().get_events(
            session_id,
            run_id=run_id,
            type=type,
            since=since,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,
        )
        return [e for e in head if (e.sequence_number or 0) > after]


class CounterSlotsShiftOnDelete(_CountingStore):
    """Counters live in a list indexed by the order sessions were first seen; deleting a session
    removes it from the order but not its counter, so later sessions read their neighbour's."""

    BREAKS = ("SEQ-1",)

    def __init__(self) -> None:
        super().__init__()
        self._order: list[str] = []
        self._slots: list[int] = []

    def _next_number(self, session_id: str) -> int:
        if session_id not in self._order:
            self._order.append(session_id)
            if len(self._slots) < len(self._order):
                self._slots.append(0)
            else:
                self._slots[len(self._order) - 1] = 0
        slot = self._order.index(session_id)
        self._slots[slot] += 1
        return self._slots[slot]

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            InMemorySessionStore.delete_session(self, session_id)
            if session_id in self._order:
                self._order.remove(session_id)


class OffsetTwiceWithStatusFilter(InMemorySessionStore):
    """list_sessions with a status filter pages in the query and then again on its result, so
    the offset is skipped twice; without a filter the page is right."""

    BREAKS = ("SES-3",)

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Session]:
        found = super().list_sessions(status=status, agent_id=agent_id, limit=limit, offset=offset)
        if status is None:
            return found
        return Page.of(None, offset).apply(found)


class ActiveRunStuckAfterCompletion(InMemorySessionStore):
    """Once a run of a session reaches a terminal status, get_active_run answers None for that
    session for good: a run started afterwards is never reported as active."""

    BREAKS = ("RUN-3",)

    def __init__(self) -> None:
        super().__init__()
        self._finished: set[str] = set()

    def save_run(self, run: Run) -> None:
        super().save_run(run)
        if isinstance(run, Run) and RunStatus(run.status).terminal:
            with self._lock:
                self._finished.add(run.session_id)

    def get_active_run(self, session_id: str) -> Run | None:
        with self._lock:
            if session_id in self._finished:
                return None
        return super().get_active_run(session_id)


class FlushRenumbersKnownIds(InMemorySessionStore):
    """flush stores every event of the result again, with a new number, when its id is already
    stored for that session (the pipeline appended it before the final flush)."""

    BREAKS = ("IDEM-1",)

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        with self._lock:
            self._sessions[checked.session.id] = checked.session.model_copy(deep=True)
            self._runs[checked.run.id] = checked.run.model_copy(deep=True)
            for event in checked.events:
                existing = self._event_ids.get(event.id)
                if existing is not None and existing.session_id != event.session_id:
                    continue
                log = self._events.setdefault(event.session_id, [])
                stored = event.model_copy(update={"sequence_number": len(log) + 1}, deep=True)
                log.append(stored)
                self._event_ids[stored.id] = stored

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
            for run_id in [r.id for r in self._runs.values() if r.session_id == session_id]:
                del self._runs[run_id]
            for event in self._events.pop(session_id, []):
                self._event_ids.pop(event.id, None)


class StaleIdIndexAfterDelete(InMemorySessionStore):
    """delete_session removes the events but not their ids from the global id index, so an id
    appended again after the delete returns the deleted event and stores nothing."""

    BREAKS = ("SES-4",)

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            index = dict(self._event_ids)
            super().delete_session(session_id)
            self._event_ids = index


class IdUniquePerSessionOnly(InMemorySessionStore):
    """Event ids are checked for uniqueness per session only: an id already stored under another
    session is stored a second time."""

    BREAKS = ("IDEM-1",)

    def __init__(self) -> None:
        super().__init__()
        self._ids_by_session: dict[str, dict[str, Event]] = {}

    def _store_event(self, event: Event) -> Event:
        index = self._ids_by_session.setdefault(event.session_id, {})
        existing = index.get(event.id)
        if existing is not None:
            return existing
        log = self._events.setdefault(event.session_id, [])
        stored = event.model_copy(update={"sequence_number": len(log) + 1}, deep=True)
        log.append(stored)
        index[stored.id] = stored
        return stored

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
            for run_id in [r.id for r in self._runs.values() if r.session_id == session_id]:
                del self._runs[run_id]
            self._events.pop(session_id, None)
            self._ids_by_session.pop(session_id, None)


class FlushedRunsSurviveDelete(InMemorySessionStore):
    """delete_session finds a session's runs through an index that save_run maintains and flush
    does not, so a run saved by a flush outlives its deleted session."""

    BREAKS = ("SES-4",)

    def __init__(self) -> None:
        super().__init__()
        self._run_index: dict[str, set[str]] = {}

    def save_run(self, run: Run) -> None:
        super().save_run(run)
        with self._lock:
            self._run_index.setdefault(run.session_id, set()).add(run.id)

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
            for run_id in self._run_index.pop(session_id, set()):
                run = self._runs.get(run_id)
                if run is not None and run.session_id == session_id:
                    del self._runs[run_id]
            for event in self._events.pop(session_id, []):
                del self._event_ids[event.id]


class LatestSequenceIgnoresFlush(InMemorySessionStore):
    """get_latest_sequence reads a cached high-water mark that the append paths update and
    flush does not."""

    BREAKS = ("SEQ-2",)

    def __init__(self) -> None:
        super().__init__()
        self._latest: dict[str, int] = {}

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        stored = super().append_events(events)
        with self._lock:
            for event in stored:
                number = event.sequence_number or 0
                if number > self._latest.get(event.session_id, 0):
                    self._latest[event.session_id] = number
        return stored

    def get_latest_sequence(self, session_id: str) -> int:
        super().get_latest_sequence(session_id)
        with self._lock:
            return self._latest.get(session_id, 0)

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            super().delete_session(session_id)
            self._latest.pop(session_id, None)


class ListRunsOffsetIgnoredWithStatus(InMemorySessionStore):
    """list_runs ignores offset when a status filter is given."""

    BREAKS = ("RUN-2",)

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]:
        Page.of(limit, offset)
        if status is not None:
            offset = None
        return super().list_runs(session_id, status=status, limit=limit, offset=offset)


class LastWriteWinsOnSingleAppend(InMemorySessionStore):
    """append_event_with_sequence of an id already stored in the session overwrites the stored
    event with the new copy (keeping its number) instead of returning the original."""

    BREAKS = ("IDEM-1",)

    def append_event_with_sequence(self, event: Event) -> Event:
        checked = as_event(event)
        with self._lock:
            existing = self._event_ids.get(checked.id)
            if existing is not None and existing.session_id == checked.session_id:
                replaced = checked.model_copy(
                    update={"sequence_number": existing.sequence_number}, deep=True
                )
                log = self._events[checked.session_id]
                log[log.index(existing)] = replaced
                self._event_ids[checked.id] = replaced
                return replaced.model_copy(deep=True)
        return super().append_event_with_sequence(event)


class ReadsReturnStoredObjects(InMemorySessionStore):
    """get_events hands out the stored event objects themselves, so a caller that changes the
    data of an event it read changes the stored event."""

    BREAKS = ("EVT-4",)

    def get_events(self, session_id: str, **filters: Any) -> list[Event]:
        copies = super().get_events(session_id, **filters)
        with self._lock:
            return [self._event_ids[event.id] for event in copies]
