"""A plain dict store written from docs/writing-a-store.md, and the same store without its lock.

``DictSessionStore`` is what a store author writes first: the kit's public models, errors and
input checks, Python dicts for the data, and one ``threading.Lock`` held for the whole of every
operation. It shares no code with the reference stores, so it checks the docs as much as the kit:
it must pass every rule (``tests/stores/memory/test_kit.py``).

``LocklessDictStore`` is the same store with the lock forgotten. Its critical sections are short
Python code, which CPython's GIL rarely interrupts at its default switch interval: the kit must
still catch it in every seeded run (``tests/kit/test_contention.py``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pytest_asm_contract import (
    ErrorCode,
    Event,
    EventQuery,
    EventType,
    ExecutionResult,
    Page,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    StoreError,
    as_events,
    as_execution_result,
    as_run,
    as_session,
    check_id,
    run_status_filter,
    session_status_filter,
)
from tests.zoo import HISTORY_RULES


class DictSessionStore:
    """Sessions, runs and events in dicts; one lock makes every operation atomic.

    Models are frozen but hold mutable dicts and lists, so records are deep-copied on the way in
    and out: nothing a caller does to an object changes what is stored (EVT-4).
    """

    def __init__(self) -> None:
        self._lock: contextlib.AbstractContextManager[Any] = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._runs: dict[str, Run] = {}
        self._events: dict[str, list[Event]] = {}  # by session, in sequence order
        self._event_ids: dict[str, Event] = {}  # event ids are global (IDEM-1)

    # -- sessions -------------------------------------------------------------------------------
    def save_session(self, session: Session) -> None:
        checked = as_session(session).model_copy(deep=True)
        with self._lock:
            self._sessions[checked.id] = checked

    def get_session(self, session_id: str) -> Session:
        check_id(session_id, "session_id")
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND,
                f"no session {session_id!r}",
                {"session_id": session_id},
            )
        return session.model_copy(deep=True)

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Session]:
        wanted = session_status_filter(status)
        page = Page.of(limit, offset)
        if agent_id is not None:
            check_id(agent_id, "agent_id")
        with self._lock:
            found = [
                s
                for s in self._sessions.values()
                if (wanted is None or s.status == wanted)
                and (agent_id is None or s.agent_id == agent_id)
            ]
        found.sort(key=lambda s: (s.created_at, s.id))
        return [s.model_copy(deep=True) for s in page.apply(found)]

    def delete_session(self, session_id: str) -> None:
        check_id(session_id, "session_id")
        with self._lock:
            self._sessions.pop(session_id, None)
            for run_id in [r.id for r in self._runs.values() if r.session_id == session_id]:
                del self._runs[run_id]
            for event in self._events.pop(session_id, []):
                del self._event_ids[event.id]

    # -- runs -----------------------------------------------------------------------------------
    def save_run(self, run: Run) -> None:
        checked = as_run(run).model_copy(deep=True)
        with self._lock:
            self._runs[checked.id] = checked

    def get_run(self, run_id: str) -> Run:
        check_id(run_id, "run_id")
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise StoreError(ErrorCode.RUN_NOT_FOUND, f"no run {run_id!r}", {"run_id": run_id})
        return run.model_copy(deep=True)

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]:
        check_id(session_id, "session_id")
        wanted = run_status_filter(status)
        page = Page.of(limit, offset)
        with self._lock:
            found = [
                r
                for r in self._runs.values()
                if r.session_id == session_id and (wanted is None or r.status == wanted)
            ]
        found.sort(key=lambda r: (r.started_at, r.id))
        return [r.model_copy(deep=True) for r in page.apply(found)]

    def get_active_run(self, session_id: str) -> Run | None:
        running = self.list_runs(session_id, status=RunStatus.RUNNING)
        return running[-1] if running else None  # the latest started_at, then the greatest id

    # -- events ---------------------------------------------------------------------------------
    def append_event(self, event: Event) -> None:
        self.append_events([event])

    def append_event_with_sequence(self, event: Event) -> Event:
        return self.append_events([event])[0]

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)  # the whole batch is checked before anything is stored
        with self._lock:  # one block of numbers per session (BATCH-4, BATCH-5)
            stored = [self._put_event(event) for event in batch]
        return [event.model_copy(deep=True) for event in stored]

    def _put_event(self, event: Event) -> Event:
        """Store one checked event under the lock, or return the stored copy of its id."""
        known = self._event_ids.get(event.id)
        if known is not None:
            return known
        log = self._events.setdefault(event.session_id, [])
        stored = event.model_copy(update={"sequence_number": len(log) + 1}, deep=True)
        log.append(stored)
        self._event_ids[stored.id] = stored
        return stored

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)  # payload, session and run membership (FLUSH-2)
        session = checked.session.model_copy(deep=True)
        run = checked.run.model_copy(deep=True)
        with self._lock:  # session, run and events become visible together (FLUSH-1, FLUSH-5)
            self._sessions[session.id] = session
            self._runs[run.id] = run
            for event in checked.events:
                self._put_event(event)

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
        check_id(session_id, "session_id")
        query = EventQuery.of(
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,  # checked, then ignored: no long_poll (POLL-0)
        )
        with self._lock:
            found = query.apply(self._events.get(session_id, ()))
        return [event.model_copy(deep=True) for event in found]

    def get_latest_sequence(self, session_id: str) -> int:
        check_id(session_id, "session_id")
        with self._lock:
            return len(self._events.get(session_id, ()))


class LocklessDictStore(DictSessionStore):
    """The dict store with its lock replaced by a no-op: two appends to one session read the same
    length of its log and take the same number, and readers see logs and flushes half-written."""

    BREAKS = ("CONC-1",)
    # the race shows in whichever concurrent check the interleaving of a run hits first
    ALSO = (*HISTORY_RULES, "FLUSH-4", "PORT-2", "SEQ-1")

    def __init__(self) -> None:
        super().__init__()
        self._lock = contextlib.nullcontext()
