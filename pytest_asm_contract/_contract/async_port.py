"""The persistence port on asyncio (async.md): the same 14 operations, each a coroutine function.

A store is async when its session-store operations are ``async def`` (coroutine functions, as
``inspect.iscoroutinefunction`` sees them); the kit tells the two kinds apart this way, with no
option. A store is one kind or the other: a mix of plain and ``async def`` operations is a usage
error naming the plain ones, because the kit could only drive it by guessing which calls return
coroutines. The optional members (``capabilities``, ``asm_fault_target()``,
``asm_reopen_spec()``, ``asm_*_unavailable``) stay as they are for sync stores; ``close()`` may
be ``async def``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from pytest_asm_contract._contract.port import SESSION_STORE_OPERATIONS


class AsyncSessionStore(Protocol):
    """An async session store: :class:`~pytest_asm_contract.SessionStore`'s operations, with the
    same names, arguments, results and errors, each ``async def``; an optional ``async close()``
    is awaited after each test. Not runtime-checkable: ``isinstance`` cannot see whether a method
    is a coroutine function, so the kit inspects the operations instead."""

    async def save_session(self, session: Session) -> None: ...

    async def get_session(self, session_id: str) -> Session: ...

    async def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Session]: ...

    async def delete_session(self, session_id: str) -> None: ...

    async def save_run(self, run: Run) -> None: ...

    async def get_run(self, run_id: str) -> Run: ...

    async def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]: ...

    async def get_active_run(self, session_id: str) -> Run | None: ...

    async def append_event(self, event: Event) -> None: ...

    async def append_event_with_sequence(self, event: Event) -> Event: ...

    async def append_events(self, events: Sequence[Event]) -> list[Event]: ...

    async def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None: ...

    async def get_events(
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

    async def get_latest_sequence(self, session_id: str) -> int: ...


class MixedPortError(TypeError):
    """A store (or store class) whose operations are partly ``async def``, partly plain."""


def _name(obj: object) -> str:
    return obj.__name__ if isinstance(obj, type) else type(obj).__name__


def is_async_store(obj: object) -> bool:
    """Whether ``obj`` (a store, or a store class) is async: every session-store operation it has
    is a coroutine function. False when it has none of them as coroutine functions (a sync store,
    or no store at all); ``MixedPortError`` naming the plain ones when it mixes the two."""
    present = [name for name in SESSION_STORE_OPERATIONS if callable(getattr(obj, name, None))]
    plain = [name for name in present if not inspect.iscoroutinefunction(getattr(obj, name))]
    if not plain or len(plain) == len(present):
        return bool(present) and not plain
    raise MixedPortError(
        f"{_name(obj)} mixes async and plain operations: {', '.join(plain)} "
        f"{'is a plain method' if len(plain) == 1 else 'are plain methods'} while "
        f"{len(present) - len(plain)} others are `async def`. A store is one kind or the other: "
        "an async store's 14 operations are all coroutine functions (AsyncSessionStore, "
        "docs/async.md), a sync store's none (PORT-1)"
    )


__all__ = ["AsyncSessionStore", "MixedPortError", "is_async_store"]
