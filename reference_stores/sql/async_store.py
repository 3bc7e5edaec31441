"""``AsyncSqlSessionStore``: the session-store port as ``async def``, on SQLAlchemy's asyncio
extension (aiosqlite, asyncpg, asyncmy).

One implementation, two faces. The async store runs ``SqlSessionStore``'s own operations — its
schema, Alembic history, statements, codec, option parsing, retries and error mapping — inside
SQLAlchemy's greenlet bridge (``greenlet_spawn``, the way ``AsyncSession`` runs ``Session``), on
an ``AsyncEngine``'s ``sync_engine``: every statement awaits the async driver, so the event loop
is never blocked (ASYNC-2). What waits differs, and is swapped for asyncio's here: the writer lock
of a SQLite file, the pause before a retried write, the long poll's wait and the group commit of
concurrent appends.

Cancellation (ASYNC-1): a cancelled task's ``CancelledError`` rises inside the bridge like any
exception, so the open transaction's context manager rolls it back whole; a write is one
transaction, so it is applied whole or not at all.

The store opens lazily: construction parses the options and makes the engine (no I/O on the
loop); the first operation — or ``await store.open()``, or ``async with`` — checks or creates
the schema. Errors of opening (``migration_required``, an unreachable server) are raised there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pytest_asm_contract._contract.errors import (
    ErrorCode,
    StoreError,
    dependency_not_available,
    validation_error,
)
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from reference_stores.sql import engines, provision
from reference_stores.sql.on_loop import LoopGate, LoopGroupCommit, LoopLock, LoopWaiter
from reference_stores.sql.schema import DEFAULT_PREFIX
from reference_stores.sql.store import SqlSessionStore

try:
    # SQLAlchemy's asyncio bridge needs greenlet: name it up front when it is missing.
    import greenlet  # type: ignore[import-untyped]  # noqa: F401
    import sqlalchemy as sa
    from sqlalchemy.util import await_only, greenlet_spawn
except ImportError as error:  # DEP-1: the module imports; building a store reports the extra
    sa = None  # type: ignore[assignment]
    _IMPORT_ERROR: ImportError | None = error
else:
    _IMPORT_ERROR = None

T = TypeVar("T")

#: The async driver for each backend's URL without one, and the extra that installs it.
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg", "mysql": "asyncmy"}
DRIVER_EXTRAS = {
    "aiosqlite": "async",
    "greenlet": "async",
    "asyncpg": "async-postgres",
    "asyncmy": "async-mysql",
}


class _BridgedSqlStore(SqlSessionStore):
    """``SqlSessionStore`` on an async engine's ``sync_engine``, only ever called inside the
    greenlet bridge, with asyncio's waits in place of the threads'."""

    def __init__(self, view: sa.Engine, owned_file: Path | None, **options: Any) -> None:
        super().__init__(engine=view, **options)
        self._owned_file = owned_file
        if self._write_lock is not None:
            self._write_lock = LoopLock()  # type: ignore[assignment]
        self._gate = LoopGate()  # type: ignore[assignment]
        self._waiter = LoopWaiter()  # type: ignore[assignment]
        self._appends = LoopGroupCommit(self._append_group)  # type: ignore[assignment]

    def _pause(self, seconds: float) -> None:
        await_only(asyncio.sleep(seconds))

    def _wait_interval(self) -> float:
        # Other processes' appends are found by polling (the LISTEN thread is the sync store's).
        return self._poll_interval


class AsyncSqlSessionStore:
    """The session store as ``async def`` on SQLAlchemy's asyncio extension.

    * ``AsyncSqlSessionStore()``: the embedded default, a fresh temporary SQLite file (aiosqlite)
      with the schema, private to this instance and deleted by ``close()``.
    * ``AsyncSqlSessionStore(url)``: ``sqlite+aiosqlite://``, ``postgresql+asyncpg://``,
      ``mysql+asyncmy://`` (a URL without a driver gets the async one); the options of
      ``SqlSessionStore`` (``table_prefix``, ``create_schema``, ``isolated``,
      ``poll_interval_ms``, ``notify``), strings accepted.

    An instance belongs to the event loop it is first used on (its connections do).
    """

    capabilities = SqlSessionStore.capabilities

    def __init__(
        self,
        url: str | None = None,
        *,
        table_prefix: str = DEFAULT_PREFIX,
        **options: Any,
    ) -> None:
        if _IMPORT_ERROR is not None:
            missing = getattr(_IMPORT_ERROR, "name", None) or "sqlalchemy"
            extra = DRIVER_EXTRAS.get(missing, "async")
            raise dependency_not_available(missing, missing, "AsyncSqlSessionStore()", extra)
        if url is not None and not isinstance(url, str):
            raise validation_error(f"url must be a string, got {type(url).__name__}")
        self._closed = False
        self._owned_file: Path | None = None
        if url is None:
            self._owned_file = provision.new_temporary_sqlite(table_prefix)
            parsed = sa.make_url(f"sqlite+aiosqlite:///{self._owned_file}")
        else:
            parsed = _async_url(url)
        self._url = parsed
        self._options: dict[str, Any] = {"table_prefix": table_prefix, **options}
        self._engine = _create_engine(parsed, temporary=self._owned_file is not None)
        # The fault hook's target (docs/fault-injection.md): exists before the store opens.
        self._view = engines.view(self._engine.sync_engine, asm_store=f"{id(self):x}")
        self._store: _BridgedSqlStore | None = None
        self._opening = asyncio.Lock()

    # -- opening and closing --------------------------------------------------------------------
    async def open(self) -> AsyncSqlSessionStore:
        """Check (or create) the schema; every operation does this first if it was not done."""
        await self._opened()
        return self

    async def _opened(self) -> _BridgedSqlStore:
        if self._store is not None:
            return self._store
        async with self._opening:
            if self._closed:
                raise StoreError(ErrorCode.STORAGE_ERROR, "operation on a closed store", {})
            if self._store is None:
                self._store = await greenlet_spawn(
                    _BridgedSqlStore, self._view, self._owned_file, **self._options
                )
            return self._store

    async def close(self) -> None:
        """Release the store: an isolated namespace is emptied, a temporary file deleted."""
        if self._closed:
            return
        self._closed = True
        async with self._opening:
            store, self._store = self._store, None
        try:
            if store is not None:
                await greenlet_spawn(store.close)
        finally:
            await self._engine.dispose()
            if self._owned_file is not None and store is None:
                provision.remove_temporary_sqlite(self._owned_file)

    async def __aenter__(self) -> AsyncSqlSessionStore:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        where = self._url.render_as_string(hide_password=True)
        return f"AsyncSqlSessionStore({where!r}, table_prefix={self._options['table_prefix']!r})"

    # -- hooks of the contract kit --------------------------------------------------------------
    def asm_fault_target(self) -> sa.Engine:
        """The Engine every statement of this store runs on (its events fire inside the bridge)."""
        return self._view

    async def asm_reopen_spec(self) -> tuple[str, dict[str, Any]]:
        """How another process opens this store's backend, without resetting it (an isolated
        namespace is only chosen when the store opens, so this opens it)."""
        async with self._bridge() as store:
            _, options = store.asm_reopen_spec()
        options["url"] = self._url.render_as_string(hide_password=False)
        return f"{__name__}:{type(self).__name__}", options

    @contextlib.asynccontextmanager
    async def _bridge(self) -> AsyncIterator[_BridgedSqlStore]:
        if self._closed:
            raise StoreError(ErrorCode.STORAGE_ERROR, "operation on a closed store", {})
        yield await self._opened()

    async def _call(self, operation: str, /, *args: Any, **kwargs: Any) -> Any:
        async with self._bridge() as store:
            return await greenlet_spawn(getattr(store, operation), *args, **kwargs)

    async def _write(self, operation: str, /, *args: Any, **kwargs: Any) -> Any:
        """A write, finished even if the caller is cancelled meanwhile (ASYNC-1).

        A cancellation that lands inside a statement makes SQLAlchemy discard the connection
        rather than roll back on it, and an aiosqlite connection discarded with a statement
        still open keeps its write transaction, and the database's write lock, until garbage
        collection. So a cancelled write runs to its end (committed, or rolled back whole) in a
        task of its own, and the cancellation is raised in the caller after it: the caller's
        fresh read then sees the write applied or absent, never pending.
        """
        write = asyncio.ensure_future(self._call(operation, *args, **kwargs))
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            if not write.done():
                with contextlib.suppress(BaseException):  # cancelled again: stop waiting
                    await write
            raise

    # -- the 14 operations ----------------------------------------------------------------------
    async def save_session(self, session: Session) -> None:
        await self._write("save_session", session)

    async def get_session(self, session_id: str) -> Session:
        found: Session = await self._call("get_session", session_id)
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
            "list_sessions", status=status, agent_id=agent_id, limit=limit, offset=offset
        )
        return found

    async def delete_session(self, session_id: str) -> None:
        await self._write("delete_session", session_id)

    async def save_run(self, run: Run) -> None:
        await self._write("save_run", run)

    async def get_run(self, run_id: str) -> Run:
        found: Run = await self._call("get_run", run_id)
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
            "list_runs", session_id, status=status, limit=limit, offset=offset
        )
        return found

    async def get_active_run(self, session_id: str) -> Run | None:
        found: Run | None = await self._call("get_active_run", session_id)
        return found

    async def append_event(self, event: Event) -> None:
        await self._write("append_event", event)

    async def append_event_with_sequence(self, event: Event) -> Event:
        stored: Event = await self._write("append_event_with_sequence", event)
        return stored

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        stored: list[Event] = await self._write("append_events", events)
        return stored

    async def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        await self._write("flush", result)

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
            "get_events",
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
        latest: int = await self._call("get_latest_sequence", session_id)
        return latest


def _async_url(url: str) -> sa.URL:
    """``url`` parsed, with the backend's async driver when it names none."""
    try:
        parsed = sa.make_url(url)
    except Exception as error:
        raise validation_error(f"not a database URL: {url!r} ({error})", url=url) from None
    if "+" not in parsed.drivername:
        driver = ASYNC_DRIVERS.get(parsed.get_backend_name())
        if driver is not None:
            parsed = parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}")
    return parsed


def _create_engine(url: sa.URL, *, temporary: bool) -> Any:
    where = url.render_as_string(hide_password=True)
    try:
        engine = engines.create_async_engine(url, temporary=temporary)
    except ImportError as error:
        driver = error.name or url.get_driver_name()
        extra = DRIVER_EXTRAS.get(driver.split(".")[0], "async")
        raise dependency_not_available(driver, driver, "AsyncSqlSessionStore()", extra) from error
    except Exception as error:  # a sync driver among them: the asyncio extension refuses it
        drivers = ", ".join(f"{b}+{d}" for b, d in ASYNC_DRIVERS.items())
        raise validation_error(
            f"cannot use database URL {where} for the async store: {type(error).__name__}: "
            f"{error} (async drivers: {drivers}; SqlSessionStore takes sync ones)",
            url=where,
        ) from error
    return engine
