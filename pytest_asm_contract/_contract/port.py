"""The persistence port (contract section 3): what a session store and an artifact store offer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)

#: The 14 operations of the v0.8 port, in contract order.
SESSION_STORE_OPERATIONS: tuple[str, ...] = (
    "save_session",
    "get_session",
    "list_sessions",
    "delete_session",
    "save_run",
    "get_run",
    "list_runs",
    "get_active_run",
    "append_event",
    "append_event_with_sequence",
    "append_events",
    "flush",
    "get_events",
    "get_latest_sequence",
)
#: Operations that v0.8 added; a store lacking only these is a v0.7-era store.
V08_OPERATIONS: tuple[str, ...] = ("append_events", "flush")
ARTIFACT_STORE_OPERATIONS: tuple[str, ...] = ("put", "get", "delete")


@runtime_checkable
class SessionStore(Protocol):
    """A session store. Optional ``capabilities`` (a set of names) declares extra guarantees."""

    def save_session(self, session: Session) -> None: ...

    def get_session(self, session_id: str) -> Session: ...

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Session]: ...

    def delete_session(self, session_id: str) -> None: ...

    def save_run(self, run: Run) -> None: ...

    def get_run(self, run_id: str) -> Run: ...

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]: ...

    def get_active_run(self, session_id: str) -> Run | None: ...

    def append_event(self, event: Event) -> None: ...

    def append_event_with_sequence(self, event: Event) -> Event: ...

    def append_events(self, events: Sequence[Event]) -> list[Event]: ...

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None: ...

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
    ) -> list[Event]: ...

    def get_latest_sequence(self, session_id: str) -> int: ...


@runtime_checkable
class ArtifactStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


def missing_operations(
    store: object, operations: Sequence[str] = SESSION_STORE_OPERATIONS
) -> list[str]:
    """The port operations ``store`` does not provide as callables."""
    return [name for name in operations if not callable(getattr(store, name, None))]


def declared_capabilities(store: object) -> frozenset[str]:
    """The capabilities a store declares through its optional ``capabilities`` attribute."""
    declared = getattr(store, "capabilities", ())
    if isinstance(declared, str):
        return frozenset({declared})
    return frozenset(str(name) for name in declared)
