"""``SqlSessionStore``: the session-store port on SQLAlchemy 2 Core (SQLite, PostgreSQL, MariaDB).

Sequencing (SEQ-1, SEQ-5): one counter row per session, incremented by ``n`` in the same
transaction that inserts the ``n`` new events — ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``
on PostgreSQL and SQLite, ``INSERT ... ON DUPLICATE KEY UPDATE`` plus a locking read on MariaDB.
The row lock is held until commit, so a session's numbers are committed in order: gap-free, and a
reader that sees ``n`` sees every lower number. ``UNIQUE(session_id, sequence_number)`` is the
safety net. A transaction that loses a race (duplicate event id, deadlock) is rolled back whole,
so it consumed nothing, and retried; the retry then finds the winner's event (IDEM-4).

Every write is one transaction (flush, append_events, delete_session are atomic: FLUSH-1,
FLUSH-3, SES-4); concurrent appends of one store share a transaction (``combiner``).

The module is one class of about 650 lines on purpose: the fourteen operations share the
connection plumbing (``_read``, ``_write``: retries, reconnects, error mapping), and each write's
transaction reads best in one place. What stands apart lives beside it: the schema
(``schema.py``), the statements (``statements.py``), encoding (``codec.py``), engines and
migrations.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    INT64_MAX,
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
    as_events,
    as_execution_result,
    as_run,
    as_session,
    check_id,
    run_status_filter,
    session_status_filter,
)
from reference_stores._options import boolean, positive_float
from reference_stores.sql import codec, engines, migrate, provision
from reference_stores.sql.combiner import Combiner
from reference_stores.sql.errors import is_conflict, to_store_error
from reference_stores.sql.notify import PgListener, Waiter, channel_name
from reference_stores.sql.schema import (
    COLUMNS,
    DEFAULT_PREFIX,
    MYSQL_DIALECTS,
    TABLES,
    check_prefix,
    tables_for,
)
from reference_stores.sql.statements import Statements

try:
    import sqlalchemy as sa
except ImportError as error:  # DEP-1: the module imports; building a store reports the extra
    sa = None  # type: ignore[assignment]
    _IMPORT_ERROR: ImportError | None = error
else:
    _IMPORT_ERROR = None

T = TypeVar("T")

#: A write that lost a race is retried this many times before it fails.
MAX_ATTEMPTS = 25
#: An operation whose connection turned out dead before it committed is tried this many times.
RECONNECT_ATTEMPTS = 2
#: Rows per ``IN (...)`` lookup, well under every backend's parameter limit.
IN_CHUNK = 500
DRIVER_EXTRAS = {"psycopg": "postgres", "psycopg2": "postgres", "pymysql": "mysql"}


class SqlSessionStore:
    """The session store on a SQL database through SQLAlchemy Core.

    * ``SqlSessionStore()``: the embedded default, a fresh temporary SQLite file with the schema,
      private to this instance and deleted by ``close()``.
    * ``SqlSessionStore(url)`` or ``SqlSessionStore(engine=engine)``: an existing database whose
      schema is at the current revision (``python -m reference_stores.sql upgrade --url URL``);
      otherwise ``migration_required`` names what is missing (MIG-1). ``create_schema=True``
      runs the migration instead.
    * ``isolated=True`` (with a url or engine): a fresh namespace of tables (a new table prefix)
      on that database, with the schema created, emptied by ``close()``: what the contract kit
      needs on a shared server.

    All options accept strings, as ``--asm-store-option KEY=VALUE`` passes them.
    """

    capabilities = frozenset({"long_poll", "shared_backend"})

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: sa.Engine | None = None,
        table_prefix: str = DEFAULT_PREFIX,
        create_schema: bool | str | None = None,
        isolated: bool | str = False,
        poll_interval_ms: float | str = 50,
        notify: bool | str = True,
    ) -> None:
        self._closed = False
        self._owned_file: Path | None = None
        self._owned_namespace = False
        self._listener: PgListener | None = None
        if sa is None:
            missing = getattr(_IMPORT_ERROR, "name", None) or "sqlalchemy"
            raise dependency_not_available(missing, missing, "SqlSessionStore()", "sql")
        if url is not None and engine is not None:
            raise validation_error("pass either url or engine, not both")
        if url is not None and not isinstance(url, str):
            raise validation_error(f"url must be a string, got {type(url).__name__}")
        isolated_flag = boolean(isolated, "isolated")
        create = create_schema is not None and boolean(create_schema, "create_schema")
        self._poll_interval = positive_float(poll_interval_ms, "poll_interval_ms") / 1000
        self._notify_enabled = boolean(notify, "notify")
        try:
            check_prefix(table_prefix)
        except ValueError as error:
            raise validation_error(str(error), field="table_prefix") from None

        if (url is None and engine is None) or isolated_flag or create:
            _require_alembic()  # the schema will be created by the migration
        if url is None and engine is None:
            self._owned_file = provision.new_temporary_sqlite(table_prefix)
            base = engines.create_engine(
                sa.make_url(f"sqlite:///{self._owned_file}"), temporary=True
            )
            prefix = table_prefix
        else:
            base = engine if engine is not None else self._engine_for(url or "")
            if engines.is_memory_sqlite(base.url):
                raise validation_error(
                    "an in-memory SQLite database lives in one connection and cannot serve a "
                    "thread-safe store; omit url for a temporary file, or give a file path",
                    url=str(base.url),
                )
            backend = base.dialect.name
            if isolated_flag:
                prefix = _guard(
                    "open",
                    backend,
                    lambda: provision.acquire_namespace(base, table_prefix),
                    write=True,
                )
                self._owned_namespace = True
            else:
                prefix = table_prefix
                if create:
                    _guard(
                        "create_schema",
                        backend,
                        lambda: migrate.upgrade(base, prefix),
                        write=True,
                        connecting=True,
                    )
                _guard(
                    "open",
                    backend,
                    lambda: self._check_schema(base, prefix),
                    write=False,
                    connecting=True,
                )

        self._base = base
        self._prefix = prefix
        self._t = tables_for(prefix)
        # A view of the shared engine with its own event dispatch: the fault hook's target.
        self._engine = base.execution_options(asm_store=f"{id(self):x}")
        self._dialect = base.dialect.name
        self._mysql = self._dialect in MYSQL_DIALECTS
        self._postgres = self._dialect == "postgresql"
        self._reader = (
            self._engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._postgres
            else self._engine
        )
        # Several statements that must see one state (the QueryAPI's pages and totals): one
        # read transaction, a snapshot where the default isolation would not give one.
        self._consistent_reader = (
            self._engine.execution_options(isolation_level="REPEATABLE READ")
            if self._postgres or self._mysql
            else self._engine
        )
        self._write_lock = engines.write_lock(base)
        self._gate = engines.gate(base)
        self._limits = codec.Limits(self._dialect)
        self._waiter = Waiter()
        self._channel = channel_name(prefix, engines.url_key(base.url))
        self._listener_lock = threading.Lock()
        self._appends: Combiner[list[Event], list[Event]] = Combiner(self._append_group)
        self._statements = Statements(self._t, self._dialect, base.dialect)

    # -- construction helpers -------------------------------------------------------------------
    def _engine_for(self, url: str) -> sa.Engine:
        try:
            parsed = sa.make_url(url)
        except Exception as error:
            raise validation_error(f"not a database URL: {url!r} ({error})", url=url) from None
        try:
            return engines.shared_engine(parsed)
        except ImportError as error:
            driver = error.name or parsed.get_driver_name()
            extra = DRIVER_EXTRAS.get(driver.split(".")[0], "sql")
            raise dependency_not_available(driver, driver, "SqlSessionStore()", extra) from error
        except Exception as error:
            raise validation_error(
                f"cannot use database URL {parsed.render_as_string(hide_password=True)}: "
                f"{type(error).__name__}: {error}",
                url=parsed.render_as_string(hide_password=True),
            ) from error

    @staticmethod
    def _check_schema(engine: sa.Engine, prefix: str) -> None:
        """MIG-1: raise migration_required naming the first missing table or column."""
        tables = tables_for(prefix)
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            existing = set(inspector.get_table_names())
            for name in TABLES:
                table = tables.names()[name]
                missing_column = None
                if table in existing:
                    columns = {c["name"] for c in inspector.get_columns(table)}
                    missing_column = next((c for c in COLUMNS[name] if c not in columns), None)
                    if missing_column is None:
                        continue
                where = engine.url.render_as_string(hide_password=True)
                command = f"python -m reference_stores.sql upgrade --url '{where}'" + (
                    f" --table-prefix {prefix}" if prefix != DEFAULT_PREFIX else ""
                )
                what = (
                    f"table {table!r} has no column {missing_column!r}"
                    if missing_column
                    else f"table {table!r} is missing"
                )
                raise StoreError(
                    ErrorCode.MIGRATION_REQUIRED,
                    f"the database {where} lacks the session store schema: {what}. "
                    f"Run the migration: {command} (or pass create_schema=True)",
                    {
                        "table": table,
                        "column": missing_column,
                        "table_prefix": prefix,
                        "command": command,
                    },
                )

    # -- hooks of the contract kit --------------------------------------------------------------
    def asm_fault_target(self) -> sa.Engine:
        """The Engine every statement of this store runs on (see docs/fault-injection.md)."""
        return self._engine

    def asm_reopen_spec(self) -> tuple[str, dict[str, Any]]:
        """How another process opens this store's backend, without resetting it."""
        return (
            "reference_stores.sql:SqlSessionStore",
            {
                "url": self._base.url.render_as_string(hide_password=False),
                "table_prefix": self._prefix,
                "create_schema": False,
                "poll_interval_ms": self._poll_interval * 1000,
                "notify": self._notify_enabled,
            },
        )

    @property
    def table_prefix(self) -> str:
        return self._prefix

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def close(self) -> None:
        """Release the store. An isolated namespace is emptied; a temporary file is deleted."""
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.stop()
        if self._owned_namespace:
            with contextlib.suppress(Exception):
                provision.release_namespace(self._base, self._prefix)
        if self._owned_file is not None:
            self._base.dispose()
            provision.remove_temporary_sqlite(self._owned_file)

    def __enter__(self) -> SqlSessionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._base.url.render_as_string(hide_password=True)
        return f"SqlSessionStore({where!r}, table_prefix={self._prefix!r})"

    # -- plumbing -------------------------------------------------------------------------------
    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise StoreError(
                ErrorCode.STORAGE_ERROR,
                f"{operation} on a closed store",
                {"operation": operation},
            )

    @contextlib.contextmanager
    def _connect(self, engine: sa.Engine, operation: str, write: bool) -> Iterator[sa.Connection]:
        with self._gate.slot():
            try:
                connection = engine.connect()
            except Exception as error:
                raise to_store_error(
                    error, operation, write=write, backend=self._dialect, connecting=True
                ) from error
            with connection:
                yield connection

    def _read(
        self, operation: str, fn: Callable[[sa.Connection], T], *, consistent: bool = False
    ) -> T:
        """Run a read; one lost connection (a server restart, a killed session) is retried.
        ``consistent``: every statement of ``fn`` reads the same state (one read transaction)."""
        self._check_open(operation)
        engine = self._consistent_reader if consistent else self._reader
        for attempt in itertools.count(1):
            try:
                with self._connect(engine, operation, False) as connection:
                    if not consistent:
                        return fn(connection)
                    with connection.begin():
                        engines.begin_read(connection, self._base)
                        return fn(connection)
            except StoreError:
                raise
            except Exception as error:
                if attempt < RECONNECT_ATTEMPTS and _lost_connection(error):
                    continue
                raise to_store_error(
                    error, operation, write=False, backend=self._dialect
                ) from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, operation: str, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn`` in one write transaction; a transaction that lost a race is retried."""
        self._check_open(operation)
        for attempt in itertools.count(1):
            committing = False
            try:
                with (
                    self._write_lock or contextlib.nullcontext(),
                    self._connect(self._engine, operation, True) as connection,
                    connection.begin(),
                ):
                    self._begin_write(connection)
                    result = fn(connection)
                    committing = True
            except (StoreError, _IdsAlreadyStored):
                raise
            except Exception as error:
                if attempt < MAX_ATTEMPTS and is_conflict(error):
                    # Someone else committed first; a short jittered pause keeps racers apart.
                    self._pause(random.uniform(0, 0.002 * min(attempt, 10)))
                    continue
                if not committing and attempt < RECONNECT_ATTEMPTS and _lost_connection(error):
                    # The connection died before COMMIT was sent: nothing was written.
                    continue
                raise to_store_error(error, operation, write=True, backend=self._dialect) from error
            self._waiter.bump()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, seconds: float) -> None:
        """Wait between attempts of a write (the async store yields to its loop instead)."""
        time.sleep(seconds)

    def _begin_write(self, connection: sa.Connection) -> None:
        """Start the write transaction just begun on ``connection`` (see engines.begin_write)."""
        engines.begin_write(connection, self._base)

    # -- sessions -------------------------------------------------------------------------------
    def save_session(self, session: Session) -> None:
        session = as_session(session)
        self._limits.check_session(session)
        row = codec.session_row(session)
        self._write("save_session", lambda c: c.execute(self._statements.upsert_session, row))

    def get_session(self, session_id: str) -> Session:
        check_id(session_id, "session_id")
        row = None
        if self._limits.storable(session_id):
            t = self._t.sessions
            query = sa.select(t).where(t.c.id == session_id)
            row = self._read("get_session", lambda c: c.execute(query).mappings().first())
        if row is None:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND,
                f"no session {session_id!r}",
                {"session_id": session_id},
            )
        return codec.session_from_row(row)

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
        if page.limit == 0 or page.offset > INT64_MAX or not self._limits.storable(agent_id):
            return []
        t = self._t.sessions
        query = sa.select(t).order_by(t.c.created_at, t.c.id)
        if wanted is not None:
            query = query.where(t.c.status == wanted.value)
        if agent_id is not None:
            query = query.where(t.c.agent_id == agent_id)
        query = _paged(query, page)
        rows = self._read("list_sessions", lambda c: c.execute(query).mappings().all())
        return [codec.session_from_row(row) for row in rows]

    def delete_session(self, session_id: str) -> None:
        check_id(session_id, "session_id")
        if not self._limits.storable(session_id):
            return
        self._write("delete_session", lambda c: self._delete_rows(c, session_id))

    def _delete_rows(self, connection: sa.Connection, session_id: str) -> None:
        """The body of ``delete_session``'s transaction, also a hard delete's (MNT-2)."""
        t = self._t
        # Lock order: session row, then the counter (as flush does). The counter row is locked
        # (created if missing, by adding 0) before the events are deleted: an append holding it
        # commits first and its events are deleted below; any other append waits for this
        # transaction and numbers from 1 after it. Deleting a missing counter row would lock
        # nothing, and an append committed in between would lose its event here but leave its
        # counter behind: a hole at 1 (tests/stores/sql/test_races.py).
        connection.execute(t.sessions.delete().where(t.sessions.c.id == session_id))
        self._reserve(connection, session_id, 0)
        connection.execute(t.events.delete().where(t.events.c.session_id == session_id))
        connection.execute(t.runs.delete().where(t.runs.c.session_id == session_id))
        connection.execute(t.sequences.delete().where(t.sequences.c.session_id == session_id))
        registry = t.artifact_registry
        connection.execute(registry.delete().where(registry.c.session_id == session_id))

    # -- runs -----------------------------------------------------------------------------------
    def save_run(self, run: Run) -> None:
        run = as_run(run)
        self._limits.check_run(run)
        row = codec.run_row(run)
        self._write("save_run", lambda c: c.execute(self._statements.upsert_run, row))

    def get_run(self, run_id: str) -> Run:
        check_id(run_id, "run_id")
        row = None
        if self._limits.storable(run_id):
            t = self._t.runs
            query = sa.select(t).where(t.c.id == run_id)
            row = self._read("get_run", lambda c: c.execute(query).mappings().first())
        if row is None:
            raise StoreError(ErrorCode.RUN_NOT_FOUND, f"no run {run_id!r}", {"run_id": run_id})
        return codec.run_from_row(row)

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
        if page.limit == 0 or page.offset > INT64_MAX or not self._limits.storable(session_id):
            return []
        t = self._t.runs
        query = sa.select(t).where(t.c.session_id == session_id)
        if wanted is not None:
            query = query.where(t.c.status == wanted.value)
        query = _paged(query.order_by(t.c.started_at, t.c.id), page)
        rows = self._read("list_runs", lambda c: c.execute(query).mappings().all())
        return [codec.run_from_row(row) for row in rows]

    def get_active_run(self, session_id: str) -> Run | None:
        check_id(session_id, "session_id")
        if not self._limits.storable(session_id):
            return None
        t = self._t.runs
        query = (
            sa.select(t)
            .where(t.c.session_id == session_id, t.c.status == RunStatus.RUNNING.value)
            .order_by(t.c.started_at.desc(), t.c.id.desc())
            .limit(1)
        )
        row = self._read("get_active_run", lambda c: c.execute(query).mappings().first())
        return None if row is None else codec.run_from_row(row)

    # -- events: writing ------------------------------------------------------------------------
    def append_event(self, event: Event) -> None:
        self.append_events([event])

    def append_event_with_sequence(self, event: Event) -> Event:
        return self.append_events([event])[0]

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        if not batch:
            return []
        self._limits.check_events(batch)
        self._check_open("append_events")
        return self._appends.submit(batch)

    def _append_group(self, batches: list[list[Event]]) -> list[list[Event]]:
        """One transaction for the queued batches; each batch keeps its own block of numbers."""
        flat = [event for batch in batches for event in batch]
        stored = self._write_events(
            "append_events", lambda c, assume_new: self._store_events(c, flat, assume_new)
        )
        results, start = [], 0
        for batch in batches:
            results.append(stored[start : start + len(batch)])
            start += len(batch)
        return results

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        self._limits.check_session(checked.session)
        self._limits.check_run(checked.run)
        self._limits.check_events(checked.events)
        session_row = codec.session_row(checked.session)
        run_row = codec.run_row(checked.run)

        def flush(connection: sa.Connection, assume_new: bool) -> None:
            connection.execute(self._statements.upsert_session, session_row)
            connection.execute(self._statements.upsert_run, run_row)
            self._store_events(connection, checked.events, assume_new)

        self._write_events("flush", flush)

    def _write_events(self, operation: str, fn: Callable[[sa.Connection, bool], T]) -> T:
        """Run ``fn(connection, assume_new)`` in one write transaction.

        Most appended ids are new, so the first try skips the lookup of stored ids (a third of a
        batch's time on PostgreSQL) and inserts with a plain INSERT. If the INSERT breaks a
        unique key, an id was stored already (or a racing writer stored it first): that
        transaction is rolled back and the operation runs again with the lookup.
        """
        try:
            return self._write(operation, lambda c: fn(c, True))
        except _IdsAlreadyStored:
            return self._write(operation, lambda c: fn(c, False))

    def _store_events(
        self, connection: sa.Connection, events: list[Event], assume_new: bool = False
    ) -> list[Event]:
        """Store the events not stored yet, numbering them per session; return the stored view.

        A repeated id maps to its first occurrence (IDEM-3) or to the stored event (IDEM-1).
        With ``assume_new``, stored ids are not looked up: an insert that breaks a unique key
        raises ``_IdsAlreadyStored``, so that the caller rolls back and retries with the lookup
        (which then maps stored ids, and lets the plain INSERT report any other conflict).
        """
        first = {event.id: event for event in events}
        if len(first) < len(events):  # a repeated id: keep its first occurrence (and place)
            first = {}
            for event in events:
                first.setdefault(event.id, event)
        stored = {} if assume_new else self._events_by_id(connection, list(first))
        new: dict[str, list[Event]] = {}
        for event_id, event in first.items():
            if event_id not in stored:
                new.setdefault(event.session_id, []).append(event)
        rows: list[tuple[Any, ...]] = []
        values = codec.event_values
        for session_id in sorted(new):  # one lock order for every writer: no deadlocks
            fresh = new[session_id]
            start = self._reserve(connection, session_id, len(fresh)) - len(fresh) + 1
            rows += [values(_with_sequence(e, n), n) for n, e in enumerate(fresh, start=start)]
        if rows:
            try:
                self._insert_events(connection, rows)
            except sa.exc.IntegrityError:
                if not assume_new:
                    raise
                raise _IdsAlreadyStored from None
        if not stored and len(first) == len(events):
            return events  # all new, all numbered in place
        return [stored[e.id] if e.id in stored else first[e.id] for e in events]

    def _insert_events(self, connection: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        """One executemany of ``codec.event_values`` tuples. Where no column needs a bind
        conversion (all but MySQL, whose ids are bytes), the statement compiled once with
        positional parameters goes straight to the driver, which skips SQLAlchemy's per-row
        parameter processing (a third of the Python time of a batch)."""
        direct = self._statements.insert_event_sql
        if direct is None:
            columns = codec.EVENT_COLUMNS
            params = [dict(zip(columns, row, strict=True)) for row in rows]
            connection.execute(self._statements.insert_event, params)
        else:
            connection.exec_driver_sql(direct, rows)

    def _events_by_id(self, connection: sa.Connection, ids: list[str]) -> dict[str, Event]:
        found: dict[str, Event] = {}
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            if self._postgres:  # one array parameter: no per-call expansion or planning of n
                rows = connection.execute(self._statements.events_by_ids, {"ids": chunk})
            elif self._dialect == "sqlite":  # plain placeholders: no expanding-IN processing
                marks = ", ".join("?" * len(chunk))
                rows = connection.exec_driver_sql(
                    f"{self._statements.select_events_sql} WHERE id IN ({marks})", tuple(chunk)
                )
            else:
                t = self._t.events
                rows = connection.execute(sa.select(t).where(t.c.id.in_(chunk)))
            for row in rows.mappings():
                event = codec.event_from_row(row)
                found[event.id] = event
        return found

    def _reserve(self, connection: sa.Connection, session_id: str, count: int) -> int:
        """Add ``count`` to the session's counter, holding its row lock; return the new value."""
        params: dict[str, Any] = {"session_id": session_id, "last_sequence": count}
        statements = self._statements
        if self._mysql:
            connection.execute(statements.bump_counter.statement, params)
            value = connection.execute(
                statements.read_counter_for_update, {"session_id": session_id}
            ).scalar_one()
        elif self._postgres and self._notify_enabled:
            # The same statement sends the NOTIFY that wakes long-polling readers at commit.
            params["channel"] = self._channel
            value = statements.bump_counter_notify.run(connection, params).scalar_one()
        else:
            value = statements.bump_counter.run(connection, params).scalar_one()
        return int(value)

    # -- events: reading ------------------------------------------------------------------------
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
        if (
            query.limit == 0
            or (query.after is not None and query.after >= INT64_MAX)
            or (query.before is not None and query.before <= 1)
            or not self._limits.storable(session_id)
            or not self._limits.storable(query.run_id)
        ):
            return []
        statement = self._events_query(session_id, query)
        timeout = (query.wait_timeout_ms or 0) / 1000
        deadline = time.monotonic() + timeout
        while True:
            token = self._waiter.token()
            rows = self._read("get_events", lambda c: c.execute(statement).mappings().all())
            remaining = deadline - time.monotonic()
            if rows or remaining <= 0:
                return [codec.event_from_row(row) for row in rows]
            self._waiter.wait(token, min(remaining, self._wait_interval()))

    def _events_query(self, session_id: str, query: EventQuery) -> sa.Select[Any]:
        t = self._t.events
        statement = sa.select(t).where(t.c.session_id == session_id)
        if query.run_id is not None:
            statement = statement.where(t.c.run_id == query.run_id)
        if query.type is not None:
            statement = statement.where(t.c.type == query.type.value)
        if query.since is not None:
            statement = statement.where(t.c.timestamp >= codec.to_micros(query.since))
        if query.after is not None:
            statement = statement.where(t.c.sequence_number > query.after)
        if query.before is not None and query.before <= INT64_MAX:
            statement = statement.where(t.c.sequence_number < query.before)
        statement = statement.order_by(t.c.sequence_number)
        if query.limit is not None and query.limit <= INT64_MAX:
            statement = statement.limit(query.limit)
        return statement

    def _wait_interval(self) -> float:
        """How long to wait for a wake-up before querying again."""
        if self._postgres and self._notify_enabled:
            with self._listener_lock:
                if self._listener is None and not self._closed:
                    self._listener = PgListener(self._base, self._channel, self._waiter)
                listener = self._listener
            if listener is not None and listener.ensure_started():
                return max(self._poll_interval, 1.0)  # NOTIFY wakes us; this is a safety net
        return self._poll_interval

    def get_latest_sequence(self, session_id: str) -> int:
        check_id(session_id, "session_id")
        if not self._limits.storable(session_id):
            return 0
        t = self._t.sequences
        query = sa.select(t.c.last_sequence).where(t.c.session_id == session_id)
        value = self._read("get_latest_sequence", lambda c: c.execute(query).scalar())
        return 0 if value is None else int(value)


def _with_sequence(event: Event, number: int) -> Event:
    """``event`` carrying ``number``, set in place: what ``event.with_sequence(number)`` returns,
    without the copy. Only for the store's own events (``as_events`` and ``as_execution_result``
    return validated copies, never the caller's objects); a retried transaction sets it again."""
    event.__dict__["sequence_number"] = number
    event.__pydantic_fields_set__.add("sequence_number")
    return event


class _IdsAlreadyStored(Exception):
    """An insert that assumed every id new broke a unique key: roll back, retry with the
    lookup."""


def _lost_connection(error: BaseException) -> bool:
    return isinstance(error, sa.exc.DBAPIError) and bool(error.connection_invalidated)


def _require_alembic() -> None:
    try:
        importlib.import_module("alembic")
    except ImportError:
        raise dependency_not_available("alembic", "alembic", "SqlSessionStore()", "sql") from None


def _guard(
    operation: str, backend: str, fn: Callable[[], T], *, write: bool, connecting: bool = False
) -> T:
    try:
        return fn()
    except StoreError:
        raise
    except Exception as error:
        raise to_store_error(
            error, operation, write=write, backend=backend, connecting=connecting
        ) from error


def _paged(query: sa.Select[Any], page: Page) -> sa.Select[Any]:
    if page.offset:
        query = query.offset(page.offset)
    if page.limit is not None and page.limit <= INT64_MAX:
        query = query.limit(page.limit)
    return query
