"""Async stores (docs/async.md): the common async facade over a sync store, and one race only an
``await`` opens.

``AsyncThreadFacade`` is the pattern many async services start with: every operation of a
correct sync store (``InMemorySessionStore``) run in a worker thread from an ``async def``, as
``asyncio.to_thread`` does. It must pass every session-store rule
(``tests/plugin/test_zoo.py``). ``AsyncSqlThreadFacade`` is the same over ``SqlSessionStore``,
whose ``shared_backend`` takes the kit's worker processes through their async path
(``tests/plugin/test_async_stores.py``).

``AwaitBetweenCountAndWrite`` runs its appends on the event loop itself and awaits between
reading a session's count and storing the event: two tasks read the same count. No thread is
involved, so only the kit driving the store as concurrent tasks on one loop can catch it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from pytest_asm_contract import (
    Event,
    EventType,
    ExecutionResult,
    ReopenSpec,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    as_events,
)
from pytest_asm_contract._contract.locate import locate
from reference_stores.memory import InMemorySessionStore
from reference_stores.sql import SqlSessionStore
from tests.zoo import HISTORY_RULES

T = TypeVar("T")

#: Worker threads per store: enough that long polls waiting in threads never hold every one
#: while the append that would wake them waits for a thread.
THREADS = 64


class AsyncThreadFacade:
    """Every operation of a sync store awaited in a worker thread; ``capabilities`` and the fault
    hook are the sync store's.

    ``asyncio.to_thread`` runs on the loop's default executor, which has ``min(32, cpus + 4)``
    threads: a few long polls could fill it while the append that ends them waits for a thread.
    So the facade does what ``to_thread`` does (the call, in a copy of the context, in a worker
    thread) on a pool of its own, which ``close()`` shuts down.
    """

    def __init__(self) -> None:
        self._store = self._open()
        self.capabilities = self._store.capabilities
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix=type(self).__name__)

    def _open(self) -> Any:
        return InMemorySessionStore()

    def asm_fault_target(self) -> object:
        return self._store.asm_fault_target()

    async def _call(self, operation: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        context = contextvars.copy_context()
        call = functools.partial(context.run, operation, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def close(self) -> None:
        # Plain: nothing here waits on the loop (the kit runs it on the store's loop all the
        # same), and helpers that build the class directly can close it without a loop.
        close = getattr(self._store, "close", None)
        if close is not None:
            close()
        self._threads.shutdown(wait=False)

    async def save_session(self, session: Session) -> None:
        await self._call(self._store.save_session, session)

    async def get_session(self, session_id: str) -> Session:
        found: Session = await self._call(self._store.get_session, session_id)
        return found

    async def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Session]:
        found: list[Session] = await self._call(
            self._store.list_sessions, status=status, agent_id=agent_id, limit=limit, offset=offset
        )
        return found

    async def delete_session(self, session_id: str) -> None:
        await self._call(self._store.delete_session, session_id)

    async def save_run(self, run: Run) -> None:
        await self._call(self._store.save_run, run)

    async def get_run(self, run_id: str) -> Run:
        found: Run = await self._call(self._store.get_run, run_id)
        return found

    async def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]:
        found: list[Run] = await self._call(
            self._store.list_runs, session_id, status=status, limit=limit, offset=offset
        )
        return found

    async def get_active_run(self, session_id: str) -> Run | None:
        found: Run | None = await self._call(self._store.get_active_run, session_id)
        return found

    async def append_event(self, event: Event) -> None:
        await self._call(self._store.append_event, event)

    async def append_event_with_sequence(self, event: Event) -> Event:
        stored: Event = await self._call(self._store.append_event_with_sequence, event)
        return stored

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        stored: list[Event] = await self._call(self._store.append_events, events)
        return stored

    async def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        await self._call(self._store.flush, result)

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
        found: list[Event] = await self._call(
            self._store.get_events,
            session_id,
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,
        )
        return found

    async def get_latest_sequence(self, session_id: str) -> int:
        latest: int = await self._call(self._store.get_latest_sequence, session_id)
        return latest


class AsyncSqlThreadFacade(AsyncThreadFacade):
    """The facade over ``SqlSessionStore`` (embedded SQLite by default): ``shared_backend``, so
    the kit's worker processes reopen it, async, from its ``asm_reopen_spec()``."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        super().__init__()

    def _open(self) -> Any:
        return SqlSessionStore(**self._options)

    def asm_reopen_spec(self) -> ReopenSpec:
        _, options = self._store.asm_reopen_spec()
        return f"{__name__}:{type(self).__name__}", options


class AsyncFacadeOf(AsyncThreadFacade):
    """The facade over any sync store of the zoo (``target``, ``module:attr``): that store's bug
    seen through an async store, as the kit's reports for async stores show it. Not a zoo store
    itself (no ``BREAKS``): tests pass ``--asm-store-option target=...``."""

    def __init__(self, target: str) -> None:
        self._target = target
        super().__init__()

    def _open(self) -> Any:
        return locate(self._target)()


class AwaitBetweenCountAndWrite(AsyncThreadFacade):
    """Appends run on the event loop: each reads the session's event count, awaits (the driver's
    round trip) and stores the event numbered count + 1, with no ``asyncio.Lock`` held across
    the read and the write, so two tasks on the loop read the same count and both store it."""

    BREAKS = ("CONC-1", "ASYNC-3")
    # the race shows in whichever concurrent check it hits first; the thread-driven CONC-1 checks
    # run before the tasks of ASYNC-3, which fail on it as well. The id is looked up before the
    # await too, so an append racing a retried flush of the same id stores it twice (FLUSH-4 in
    # the retry histories of test_ambiguous, in some runs). Its batch awaits between events
    # outside any transaction, so a batch cancelled at that await is left in part (ASYNC-1).
    ALSO = (*HISTORY_RULES, "SEQ-1", "FLUSH-4", "ASYNC-1")

    async def append_event(self, event: Event) -> None:
        await self.append_events([event])

    async def append_event_with_sequence(self, event: Event) -> Event:
        return (await self.append_events([event]))[0]

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        store = self._store
        batch = as_events(events)
        # The writes pass the fault gate as the sync store's do; only the lock is missing.
        with store._backend("append_events") as gate:
            with store._lock:
                written = store._announce_appends(gate, batch)
            stored: list[Event] = []
            for event in batch:
                existing = store._event_ids.get(event.id)
                if existing is None:
                    log = store._events.setdefault(event.session_id, [])
                    number = len(log) + 1
                    await asyncio.sleep(0)  # the round trip: every other ready task runs here
                    existing = event.model_copy(update={"sequence_number": number}, deep=True)
                    log.append(existing)
                    store._event_ids[existing.id] = existing
                stored.append(existing)
            if stored:
                with store._lock:
                    store._appended.notify_all()
            if written:
                gate.after_commit("append_events")
        return [event.model_copy(deep=True) for event in stored]
