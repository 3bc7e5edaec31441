"""In-memory reference stores: thread-safe, with long polling.

One re-entrant lock guards all state, so every operation is atomic and linearizable; a condition on
that lock wakes long-polling readers when events are appended. Models are frozen but hold mutable
dicts and lists, so the store keeps deep copies and hands out deep copies: nothing a caller does to
an object changes what is stored (EVT-4).

Writes pass a ``FaultGate`` (its fault hook), so the kit can fail them as it fails a database's
(FLUSH-3). Like a transaction, each operation announces all its writes to the gate first and
changes the state only when all of them passed (applying them cannot fail); a failure leaves
nothing behind and surfaces as ``storage_connection_failed``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract._contract.validation import (
    EventQuery,
    Page,
    as_events,
    as_execution_result,
    as_run,
    as_session,
    check_id,
    run_status_filter,
    session_status_filter,
)
from pytest_asm_contract._faults.gate import BackendFault, FaultGate


class InMemorySessionStore:
    capabilities = frozenset({"long_poll"})

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._appended = threading.Condition(self._lock)
        self._sessions: dict[str, Session] = {}
        self._runs: dict[str, Run] = {}
        self._events: dict[str, list[Event]] = {}
        self._event_ids: dict[str, Event] = {}  # global id index (IDEM-1)
        # how many events pruning removed from each session (MNT-3); see _highest_assigned
        self._pruned: dict[str, int] = {}
        # artifact metadata by id, written by InMemoryArtifactRegistry (REG-3: deleted here)
        self._artifact_meta: dict[str, ArtifactMeta] = {}
        self._gate = FaultGate()

    def asm_fault_target(self) -> FaultGate:
        """What every write passes (docs/fault-injection.md)."""
        return self._gate

    @contextlib.contextmanager
    def _backend(self, operation: str) -> Iterator[FaultGate]:
        """The gate, with its failures reported as the storage errors they stand for."""
        try:
            yield self._gate
        except BackendFault as error:
            raise StoreError(
                ErrorCode.STORAGE_CONNECTION_FAILED, f"{operation} failed: {error}"
            ) from error

    # -- sessions -------------------------------------------------------------------------------
    def save_session(self, session: Session) -> None:
        session = as_session(session)
        with self._backend("save_session") as gate, self._lock:
            gate.before_write("session")
            self._sessions[session.id] = session
            gate.after_commit("save_session")

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
            sessions = [
                s
                for s in self._sessions.values()
                if (wanted is None or s.status == wanted)
                and (agent_id is None or s.agent_id == agent_id)
            ]
        sessions.sort(key=lambda s: (s.created_at, s.id))
        return [s.model_copy(deep=True) for s in page.apply(sessions)]

    def delete_session(self, session_id: str) -> None:
        check_id(session_id, "session_id")
        with self._backend("delete_session") as gate, self._lock:
            self._delete_locked(session_id, gate)
            gate.after_commit("delete_session")

    def _delete_locked(self, session_id: str, gate: FaultGate) -> None:
        """Remove the session with its runs, events, counter and artifact metadata (SES-4,
        REG-3), every write announced first; also a hard delete's step (MNT-2). Call it holding
        the lock."""
        runs = [r.id for r in self._runs.values() if r.session_id == session_id]
        artifacts = [a.id for a in self._artifact_meta.values() if a.session_id == session_id]
        for what in ("events", "runs", "artifacts", "session"):
            gate.before_write(what)
        self._sessions.pop(session_id, None)
        for run_id in runs:
            del self._runs[run_id]
        for event in self._events.pop(session_id, []):
            del self._event_ids[event.id]
        self._pruned.pop(session_id, None)
        for artifact_id in artifacts:
            del self._artifact_meta[artifact_id]

    # -- runs -----------------------------------------------------------------------------------
    def save_run(self, run: Run) -> None:
        run = as_run(run)
        with self._backend("save_run") as gate, self._lock:
            gate.before_write("run")
            self._runs[run.id] = run
            gate.after_commit("save_run")

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
            runs = [
                r
                for r in self._runs.values()
                if r.session_id == session_id and (wanted is None or r.status == wanted)
            ]
        runs.sort(key=lambda r: (r.started_at, r.id))
        return [r.model_copy(deep=True) for r in page.apply(runs)]

    def get_active_run(self, session_id: str) -> Run | None:
        running = self.list_runs(session_id, status=RunStatus.RUNNING)
        return running[-1] if running else None

    # -- events ---------------------------------------------------------------------------------
    def append_event(self, event: Event) -> None:
        self.append_event_with_sequence(event)

    def append_event_with_sequence(self, event: Event) -> Event:
        return self.append_events([event])[0]

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        with self._backend("append_events") as gate, self._lock:
            written = self._announce_appends(gate, batch)
            stored = [self._store_event(event) for event in batch]
            if stored:
                self._appended.notify_all()
            if written:
                gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in stored]

    def _announce_appends(self, gate: FaultGate, batch: Sequence[Event]) -> list[str]:
        """Pass the gate once per session with new events in ``batch`` (one write each); the
        sessions written, in order. Call it holding the lock."""
        written = list(dict.fromkeys(e.session_id for e in batch if e.id not in self._event_ids))
        for session_id in written:
            gate.before_write(f"events of {session_id!r}")
        return written

    def _store_event(self, event: Event) -> Event:
        """Store one validated event, or return the stored copy of its id (IDEM-1, IDEM-3)."""
        existing = self._event_ids.get(event.id)
        if existing is not None:
            return existing
        number = self._highest_assigned(event.session_id) + 1
        stored = event.model_copy(update={"sequence_number": number}, deep=True)
        self._events.setdefault(event.session_id, []).append(stored)
        self._event_ids[stored.id] = stored
        return stored

    def _highest_assigned(self, session_id: str) -> int:
        """The highest number assigned in the session since it was created or deleted (SEQ-2).
        Numbers are gapless (SEQ-1), so that is the count of events held plus those pruning
        removed (MNT-3). The counter is kept as this offset over the log's length rather than
        as a number of its own so that a subclass that numbers events ``len(log) + 1`` itself
        still agrees with ``get_latest_sequence`` while nothing was pruned. Call it holding the
        lock."""
        return len(self._events.get(session_id, ())) + self._pruned.get(session_id, 0)

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        with self._backend("flush") as gate, self._lock:
            for what in ("session", "run", "events"):
                gate.before_write(what)
            self._sessions[checked.session.id] = checked.session.model_copy(deep=True)
            self._runs[checked.run.id] = checked.run.model_copy(deep=True)
            for event in checked.events:
                self._store_event(event)
            if checked.events:
                self._appended.notify_all()
            gate.after_commit("flush")

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
            wait_timeout_ms=wait_timeout_ms,
        )
        deadline = time.monotonic() + (query.wait_timeout_ms or 0) / 1000
        with self._lock:
            while True:
                found = query.apply(self._events.get(session_id, ()))
                remaining = deadline - time.monotonic()
                if found or query.limit == 0 or remaining <= 0:
                    return [event.model_copy(deep=True) for event in found]
                self._appended.wait(remaining)

    def get_latest_sequence(self, session_id: str) -> int:
        check_id(session_id, "session_id")
        with self._lock:
            return self._highest_assigned(session_id)


class InMemoryArtifactStore:
    """Artifacts as bytes in a dict; any non-empty string is a key of its own (ART-1, ART-2)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        check_id_key(key)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StoreError(
                ErrorCode.VALIDATION_ERROR,
                f"artifact data must be bytes, got {type(data).__name__}",
            )
        with self._lock:
            self._blobs[key] = bytes(data)

    def get(self, key: str) -> bytes:
        check_id_key(key)
        with self._lock:
            data = self._blobs.get(key)
        if data is None:
            raise StoreError(ErrorCode.NOT_FOUND, f"no artifact {key!r}", {"key": key})
        return data

    def delete(self, key: str) -> None:
        check_id_key(key)
        with self._lock:
            self._blobs.pop(key, None)


def check_id_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise StoreError(
            ErrorCode.VALIDATION_ERROR, f"artifact key must be a non-empty string, got {key!r:.80}"
        )
    return key


# The QueryAPI, the registry and the Maintenance port over this store live in modules of their
# own; they are offered from here, beside it.
from reference_stores.memory_maintenance import InMemoryMaintenance  # noqa: E402
from reference_stores.memory_query import InMemoryQueryAPI  # noqa: E402
from reference_stores.memory_registry import InMemoryArtifactRegistry  # noqa: E402

__all__ = [
    "InMemoryArtifactRegistry",
    "InMemoryArtifactStore",
    "InMemoryMaintenance",
    "InMemoryQueryAPI",
    "InMemorySessionStore",
]
