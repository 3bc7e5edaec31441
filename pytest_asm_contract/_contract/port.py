"""The persistence port (contract section 3) and the optional hooks a store may offer.

A session store is any object with the operations of :class:`SessionStore`; no base class is
needed. Four optional members unlock more of the kit, each described by a Protocol here and read
by the kit only through the functions at the end of this module:

- ``capabilities``: the names of the extra guarantees the store keeps (:class:`Capability`);
- ``asm_fault_target()`` (:class:`FaultInjectable`): what the store's writes go through, so the
  kit can fail the k-th one (docs/fault-injection.md);
- ``asm_reopen_spec()`` (:class:`Reopenable`): how another process opens the same backend
  (docs/shared-backend.md);
- ``close()`` (:class:`Closable`): called after every test.
"""

from __future__ import annotations

import contextlib
import enum
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


class Capability(enum.StrEnum):
    """An optional guarantee a store declares in its ``capabilities`` attribute."""

    LONG_POLL = "long_poll"
    SHARED_BACKEND = "shared_backend"
    REFERENTIAL_INTEGRITY = "referential_integrity"

    @property
    def promise(self) -> str:
        """What a store that declares this capability promises."""
        return _PROMISES[self]


_PROMISES = {
    Capability.LONG_POLL: "get_events(wait_timeout_ms=...) blocks until a matching event is "
    "appended or the timeout passes",
    Capability.SHARED_BACKEND: "several store instances, in different processes, share one "
    "backend and see each other's writes",
    Capability.REFERENTIAL_INTEGRITY: "save_run, append and flush raise session_not_found for a "
    "session that was never saved",
}

#: ``("module:attr", kwargs)``: builds another store on the same backend, resetting nothing.
ReopenSpec = tuple[str, dict[str, Any]]


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


@runtime_checkable
class FaultInjectable(Protocol):
    """A store whose writes the kit can fail (FLUSH-3, ambiguous failures).

    ``asm_fault_target()`` returns what every write goes through: a SQLAlchemy ``Engine`` (or a
    view of one from ``engine.execution_options()``), a botocore client, a
    :class:`~pytest_asm_contract.FaultGate` the store calls before each write, or a list of them.
    """

    def asm_fault_target(self) -> object: ...


@runtime_checkable
class Reopenable(Protocol):
    """A store that another process can open on the same backend (CONC-3, killed writers)."""

    def asm_reopen_spec(self) -> ReopenSpec: ...


@runtime_checkable
class Closable(Protocol):
    """A store with resources to release; the kit calls ``close()`` after each test."""

    def close(self) -> None: ...


#: The hooks' method names, as stores spell them.
FAULT_HOOK = "asm_fault_target"
REOPEN_HOOK = "asm_reopen_spec"


class HookError(TypeError):
    """A store's optional hook is missing where it is needed, or returned something unusable."""


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


def fault_targets(store: object) -> list[object] | None:
    """What ``store``'s fault hook returns, as a list; None when the store has no hook."""
    if not isinstance(store, FaultInjectable):
        return None
    target = store.asm_fault_target()
    targets = list(target) if isinstance(target, list | tuple) else [target]
    if not targets:
        raise HookError(f"{FAULT_HOOK}() returned no target; see docs/fault-injection.md")
    return targets


def reopen_spec(store: object) -> ReopenSpec:
    """How another process opens ``store``'s backend; ``HookError`` when it cannot say."""
    if not isinstance(store, Reopenable):
        raise HookError(
            f"the store declares {Capability.SHARED_BACKEND.value} but has no {REOPEN_HOOK}() "
            "telling the kit how to open its backend from another process; see "
            "docs/shared-backend.md"
        )
    spec = store.asm_reopen_spec()
    if (
        not isinstance(spec, tuple | list)
        or len(spec) != 2
        or not isinstance(spec[0], str)
        or not isinstance(spec[1], Mapping)
    ):
        raise HookError(
            f"{REOPEN_HOOK}() must return ('module:attr', {{keyword arguments}}), got {spec!r:.200}"
        )
    return spec[0], dict(spec[1])


def close_store(store: object) -> None:
    """Release a store's resources if it offers ``close()``."""
    if isinstance(store, Closable):
        store.close()


def close_quietly(store: object) -> None:
    """``close_store`` for clean-up paths, where a failing close must not hide the real error."""
    with contextlib.suppress(Exception):
        close_store(store)
