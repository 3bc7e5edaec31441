"""Async stores broken only where async code can break (ASYNC-1, ASYNC-2).

``OneConnection`` is ``AsyncThreadFacade`` on a single connection, as a store on one aiosqlite
connection is: every call holds it (an ``asyncio.Lock``) for its whole length, so no task ever
sees another's write half done, and long polls wait outside it. It keeps every rule. The two
ASYNC-1 stores below write in several steps while holding it, and undo the first steps when a
later one fails, so readers, concurrent writers and injected backend failures find nothing wrong:
only a cancellation between the steps leaves half a write behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pytest_asm_contract import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    Session,
    as_events,
    as_execution_result,
)
from tests.zoo.async_stores import AsyncThreadFacade

T = TypeVar("T")


class OneConnection(AsyncThreadFacade):
    """Each call holds the store's one connection; a long poll waits outside it."""

    def __init__(self) -> None:
        super().__init__()
        self._connection = asyncio.Lock()

    async def _call(self, operation: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        async with self._connection:
            return await self._unlocked(operation, *args, **kwargs)

    async def _unlocked(self, operation: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """The call in a worker thread, for a caller that holds the connection."""
        return await AsyncThreadFacade._call(self, operation, *args, **kwargs)

    def _acknowledge(self, operation: str) -> None:
        """The commit's reply (where the kit loses replies: the write stands, nothing undone)."""
        with self._store._backend(operation) as gate:
            gate.after_commit(operation)

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
    ) -> list[Event]:
        filters = dict(run_id=run_id, type=type, since=since, after=after, before=before)
        read = self._store.get_events
        found: list[Event] = await self._call(read, session_id, limit=limit, **filters)
        if found or not wait_timeout_ms:
            return found
        # Wait for a matching append outside the connection (a listener), then read again on
        # it, so that a write still in progress is seen whole.
        await self._unlocked(read, session_id, wait_timeout_ms=wait_timeout_ms, **filters)
        found = await self._call(read, session_id, limit=limit, **filters)
        return found


class FlushInTwoTransactions(OneConnection):
    """flush writes the session and run in one transaction, awaits the round trip that commits
    it, then writes the events in a second one. A failure of the second undoes the first
    (``except Exception``), but CancelledError is a BaseException: a task cancelled between the
    two leaves the session and run flushed without their events."""

    BREAKS = ("ASYNC-1",)

    async def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        async with self._connection:
            previous = await self._unlocked(self._write_head, checked)
            try:
                await asyncio.sleep(0)  # COMMIT; BEGIN: every other ready task runs here
                await self._unlocked(self._write_events, checked)
            except Exception:
                await self._unlocked(self._restore_head, checked, previous)
                raise
            await self._unlocked(self._acknowledge, "flush")

    def _write_head(self, checked: ExecutionResult) -> tuple[Session | None, Run | None]:
        """The first transaction: the session and run; what they replaced."""
        store = self._store
        with store._backend("flush") as gate, store._lock:
            gate.before_write("session")
            gate.before_write("run")
            previous = store._sessions.get(checked.session.id), store._runs.get(checked.run.id)
            store._sessions[checked.session.id] = checked.session.model_copy(deep=True)
            store._runs[checked.run.id] = checked.run.model_copy(deep=True)
        return previous

    def _write_events(self, checked: ExecutionResult) -> None:
        store = self._store
        with store._backend("flush") as gate, store._lock:
            gate.before_write("events")
            for event in checked.events:
                store._store_event(event)
            store._appended.notify_all()

    def _restore_head(
        self, checked: ExecutionResult, previous: tuple[Session | None, Run | None]
    ) -> None:
        store = self._store
        with store._lock:
            for table, key, old in (
                (store._sessions, checked.session.id, previous[0]),
                (store._runs, checked.run.id, previous[1]),
            ):
                if old is None:
                    table.pop(key, None)
                else:
                    table[key] = old


class BatchAwaitsPerEvent(OneConnection):
    """append_events stores the batch one event at a time, each its own transaction awaited in
    turn. A failure undoes the events already stored (``except Exception``), but a task
    cancelled between two of them leaves part of the batch stored."""

    BREAKS = ("ASYNC-1",)

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        stored: list[Event] = []
        new: list[str] = []
        async with self._connection:
            try:
                for event in batch:
                    one, added = await self._unlocked(self._write_one, event)
                    stored.append(one)
                    new += [one.id] if added else []
            except Exception:
                await self._unlocked(self._forget, new)
                raise
            if new:
                await self._unlocked(self._acknowledge, "append_events")
        return stored

    def _write_one(self, event: Event) -> tuple[Event, bool]:
        """One event in a transaction of its own; the stored event, and whether it is new."""
        store = self._store
        with store._backend("append_events") as gate, store._lock:
            added = event.id not in store._event_ids
            if added:
                gate.before_write(f"event {event.id!r}")
            stored: Event = store._store_event(event)
            store._appended.notify_all()
        return stored.model_copy(deep=True), added

    def _forget(self, ids: list[str]) -> None:
        """Remove the events of ``ids``: the last of their sessions' logs, as the batch held the
        connection throughout, so the numbers they took are free again."""
        store = self._store
        with store._lock:
            for event_id in reversed(ids):
                event = store._event_ids.pop(event_id)
                store._events[event.session_id].remove(event)


#: How long the sync sqlite3 call waits for the index's write lock (its busy timeout).
BUSY_TIMEOUT_S = 0.15


class SyncSqliteInAsync(AsyncThreadFacade):
    """delete_session also removes the session from a search index with the sync sqlite3
    driver, inside async def. The index's rebuild holds its write lock, so the DELETE waits out
    sqlite3's busy timeout (150 ms) and gives up, the index catching up at its next rebuild; for
    all that time the event loop runs nothing else. Everything else is AsyncThreadFacade's."""

    BREAKS = ("ASYNC-2",)

    def __init__(self) -> None:
        super().__init__()
        self._directory = Path(tempfile.mkdtemp(prefix="asm-index-"))
        path = self._directory / "index.sqlite3"
        self._rebuild = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._rebuild.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY)")
        self._rebuild.execute("BEGIN IMMEDIATE")  # the rebuild's write transaction, still open
        self._index = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )

    async def delete_session(self, session_id: str) -> None:
        with contextlib.suppress(sqlite3.OperationalError):  # database is locked
            self._index.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        await super().delete_session(session_id)

    def close(self) -> None:
        self._index.close()
        self._rebuild.close()
        shutil.rmtree(self._directory, ignore_errors=True)
        super().close()
