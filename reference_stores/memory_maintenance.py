"""The Maintenance port over an in-memory session store: a plain object that changes the store's
dicts.

``InMemoryMaintenance(store)`` holds the store and nothing else. Every hook runs under the
store's lock, so each session's delete or prune is one atomic step for the store's readers and
writers (MNT-7). Its writes pass the store's ``FaultGate`` as the store's own do: each step
announces all its writes first and changes the state only when all of them passed, so a fault
the kit injects leaves nothing behind and surfaces as ``storage_connection_failed``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from pytest_asm_contract._contract.errors import validation_error
from pytest_asm_contract._contract.maintenance import RetentionPolicy
from pytest_asm_contract._contract.model import Event, Run, Session
from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract._faults.gate import FaultGate
from reference_stores.maintenance_front import (
    Cutoffs,
    MaintenanceFront,
    hard_delete_due,
    prune_selection,
    soft_delete_due,
)


class _MemoryBackend(Protocol):
    """What maintenance uses of ``InMemorySessionStore`` (named by shape, as the registry does:
    the store's module offers this class, so it cannot import the store's class)."""

    _lock: threading.RLock
    _sessions: dict[str, Session]
    _runs: dict[str, Run]
    _events: dict[str, list[Event]]
    _event_ids: dict[str, Event]
    _pruned: dict[str, int]
    _artifact_meta: dict[str, ArtifactMeta]

    def _backend(self, operation: str) -> AbstractContextManager[FaultGate]: ...

    def _delete_locked(self, session_id: str, gate: FaultGate) -> None: ...

    def _highest_assigned(self, session_id: str) -> int: ...


#: Every attribute maintenance relies on, checked when it is built.
_NEEDED = (
    "_lock",
    "_sessions",
    "_runs",
    "_events",
    "_event_ids",
    "_pruned",
    "_artifact_meta",
    "_backend",
    "_delete_locked",
    "_highest_assigned",
)


class InMemoryMaintenance(MaintenanceFront):
    """Retention, pruning and integrity checks over one ``InMemorySessionStore`` (MNT-1..7)."""

    def __init__(self, store: _MemoryBackend) -> None:
        if not all(hasattr(store, name) for name in _NEEDED):
            raise validation_error(
                f"InMemoryMaintenance serves an InMemorySessionStore, got {type(store).__name__}",
                field="store",
            )
        self._store = store

    def __repr__(self) -> str:
        return f"InMemoryMaintenance({self._store!r})"

    # -- retention ------------------------------------------------------------------------------
    def _soft_delete(
        self, policy: RetentionPolicy, cutoffs: Cutoffs, now: datetime
    ) -> Iterator[int]:
        store = self._store
        with store._backend("soft_delete_expired_sessions") as gate, store._lock:
            due = [
                key
                for key, session in store._sessions.items()
                if soft_delete_due(session, policy, cutoffs)
            ]
            if not due:
                return
            gate.before_write("sessions")  # one update of every due session
            for key in due:
                # MNT-1: deleted_at alone changes (model_copy keeps every other field as stored)
                store._sessions[key] = store._sessions[key].model_copy(update={"deleted_at": now})
            gate.after_commit("soft_delete_expired_sessions")
        yield len(due)

    def _hard_delete_due(self, cutoffs: Cutoffs) -> list[str]:
        store = self._store
        with store._lock:
            return [key for key, s in store._sessions.items() if hard_delete_due(s, cutoffs)]

    def _hard_delete(self, session_id: str, cutoffs: Cutoffs) -> bool:
        store = self._store
        with store._backend("hard_delete_expired_sessions") as gate, store._lock:
            # a client may have saved the session again since it was listed as due
            session = store._sessions.get(session_id)
            if session is None or not hard_delete_due(session, cutoffs):
                return False
            store._delete_locked(session_id, gate)
            gate.after_commit("hard_delete_expired_sessions")
        return True

    # -- pruning --------------------------------------------------------------------------------
    def _prune(self, session_id: str, policy: RetentionPolicy) -> int:
        store = self._store
        with store._backend("prune_session_events") as gate, store._lock:
            log = store._events.get(session_id, [])
            doomed = set(
                prune_selection(((e.id, e.type, e.sequence_number or 0) for e in log), policy)
            )
            if not doomed:
                return 0
            gate.before_write(f"events of {session_id!r}")
            kept = [e for e in log if e.id not in doomed]
            removed = len(log) - len(kept)
            for event in log:
                # a pruned id appended again is stored anew (MNT-3)
                if event.id in doomed and store._event_ids.get(event.id) is event:
                    del store._event_ids[event.id]
            log[:] = kept  # the same list, in sequence order; the survivors keep their numbers
            # the removed numbers stay counted, so none is assigned again (MNT-7)
            store._pruned[session_id] = store._pruned.get(session_id, 0) + removed
            gate.after_commit("prune_session_events")
        return removed

    def _sessions_over(self, limit: int) -> list[str]:
        store = self._store
        with store._lock:
            return [key for key, log in store._events.items() if len(log) > limit]

    # -- orphans --------------------------------------------------------------------------------
    def _clean_orphaned_artifacts(self) -> int:
        store = self._store
        return self._remove(
            "clean_orphaned_artifacts",
            store._artifact_meta,
            lambda key: store._artifact_meta[key].session_id not in store._sessions,
        )

    def _clean_orphaned_counters(self) -> int:
        store = self._store
        return self._remove(
            "clean_orphaned_sequences",
            store._pruned,
            lambda key: not store._events.get(key) and key not in store._sessions,
        )

    def _remove(
        self, operation: str, table: dict[str, Any], orphaned: Callable[[str], bool]
    ) -> int:
        """Delete the orphaned entries of one of the store's dicts in one atomic step; how many."""
        store = self._store
        with store._backend(operation) as gate, store._lock:
            orphans = [key for key in table if orphaned(key)]
            if not orphans:
                return 0
            gate.before_write(operation)
            for key in orphans:
                del table[key]
            gate.after_commit(operation)
        return len(orphans)

    # -- integrity ------------------------------------------------------------------------------
    def _health_check(self) -> list[str]:
        store = self._store
        with store._lock:
            return [*self._numbering_problems(), *self._index_problems(), *self._records_problems()]

    def _numbering_problems(self) -> Iterator[str]:
        """A counter below the highest stored number, a repeated (session, sequence). Holes are
        not problems: pruning leaves them (MNT-6)."""
        store = self._store
        for session_id in sorted(store._events.keys() | store._pruned.keys()):
            numbers = Counter(e.sequence_number or 0 for e in store._events.get(session_id, ()))
            highest, latest = max(numbers, default=0), store._highest_assigned(session_id)
            if latest < highest:
                yield (
                    f"session {session_id!r}: counter {latest} is below the highest stored "
                    f"number {highest}"
                )
            for number, times in sorted(numbers.items()):
                if times > 1:
                    yield f"session {session_id!r}: sequence {number} stored {times} times"

    def _index_problems(self) -> Iterator[str]:
        """An event id stored twice: in two places of the logs, or where the logs and the global
        id index (IDEM-1) disagree."""
        store = self._store
        places: dict[str, list[Event]] = {}
        for log in store._events.values():
            for event in log:
                places.setdefault(event.id, []).append(event)
        for event_id, stored in sorted(places.items()):
            indexed = store._event_ids.get(event_id)
            if len(stored) > 1:
                sessions = ", ".join(repr(e.session_id) for e in stored)
                yield f"event id {event_id!r} stored {len(stored)} times (sessions {sessions})"
            elif indexed is None:
                yield f"event id {event_id!r} is stored but missing from the id index"
            elif indexed is not stored[0] and indexed != stored[0]:
                yield f"event id {event_id!r}: the id index holds another event than the log"
        for event_id in sorted(store._event_ids.keys() - places.keys()):
            yield f"event id {event_id!r} is in the id index but in no session's events"

    def _records_problems(self) -> Iterator[str]:
        """A record that no longer decodes as its model."""
        store = self._store
        events = [e for log in store._events.values() for e in log]
        kinds: list[tuple[str, type[BaseModel], Iterable[object]]] = [
            ("session", Session, store._sessions.values()),
            ("run", Run, store._runs.values()),
            ("event", Event, events),
            ("artifact metadata", ArtifactMeta, store._artifact_meta.values()),
        ]
        for kind, model, records in kinds:
            for record in records:
                problem = _decoding_problem(model, record)
                if problem is not None:
                    name = getattr(record, "id", None)
                    yield f"{kind} {name!r} no longer decodes as {model.__name__}: {problem}"


def _decoding_problem(model: type[BaseModel], record: object) -> str | None:
    """Why ``record`` does not survive a round trip through ``model``, or None."""
    if not isinstance(record, model):
        return f"it is a {type(record).__name__}"
    try:
        model.model_validate(record.model_dump(warnings=False))
    except ValidationError as error:
        first = error.errors()[0]
        return f"{'.'.join(map(str, first['loc'])) or 'record'}: {first['msg']}"
    except (ValueError, TypeError) as error:  # a value the serializer cannot dump
        return str(error).splitlines()[0]
    return None


__all__ = ["InMemoryMaintenance"]
