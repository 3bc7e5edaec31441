"""A session store for the ASM persistence port on the standard library's ``sqlite3`` module.

Design:

- One SQLite file, in WAL mode, so readers never wait for a writer. Each thread gets its own
  connection (a ``sqlite3.Connection`` must not be shared by threads at once); all of them are
  closed by ``close()``.
- Connections run in autocommit mode (``isolation_level=None``): a single SELECT reads one
  consistent snapshot, and every write is an explicit ``BEGIN IMMEDIATE`` ... ``COMMIT``.
  ``BEGIN IMMEDIATE`` takes SQLite's write lock up front, so two writers never both read the same
  highest sequence number, and a waiting writer queues on ``busy_timeout`` instead of failing
  with "database is locked" half-way through.
- Each record is kept whole as the model's JSON (``model_dump_json``), which round-trips every
  field exactly; the columns next to it exist only to filter, order and enforce uniqueness.
- Types, errors and input checks come from the kit (``pytest_asm_contract``), so the store
  rejects exactly what the contract says it must, with the contract's error codes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_created ON sessions (created_at, id);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_session ON runs (session_id, started_at, id);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    sequence_number INTEGER NOT NULL,
    run_id TEXT,
    type TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (session_id, sequence_number)
);
"""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: How long a writer waits for SQLite's write lock before giving up with ``timeout``.
BUSY_TIMEOUT_MS = 30_000


def _micros(value: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch: exact, and orders correctly."""
    return (value - EPOCH) // timedelta(microseconds=1)


def _json(model: BaseModel) -> str:
    """The model as JSON text, refused with validation_error unless it reads back unchanged.

    A lone surrogate (text that is not valid Unicode) cannot be stored: in a value it fails to
    serialise, in a dict key it would silently become U+FFFD. Checking the round trip catches
    both, and anything else that would not come back exactly (DATA-2).
    """
    what = f"{type(model).__name__} {getattr(model, 'id', '')!r:.80}"
    try:
        body = model.model_dump_json()
    except PydanticSerializationError as error:
        raise StoreError(ErrorCode.VALIDATION_ERROR, f"{what} cannot be stored: {error}") from error
    if type(model).model_validate_json(body) != model:
        raise StoreError(
            ErrorCode.VALIDATION_ERROR,
            f"{what} holds text that is not valid Unicode (a lone surrogate); it cannot be "
            "stored exactly",
        )
    return body


def _key(value: object, what: str) -> str:
    """An id used in a lookup: valid per the contract, and text SQLite can bind."""
    text = check_id(value, what)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise StoreError(
            ErrorCode.VALIDATION_ERROR, f"{what} is not valid Unicode text", {"field": what}
        ) from error
    return text


class SqliteSessionStore:
    """Session store on one SQLite file.

    ``path`` is the database file; it is created, with its schema, if it does not exist. Several
    instances, in this process or others, may open the same file (capability ``shared_backend``).
    """

    capabilities = frozenset({"shared_backend"})

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        with self._errors("open the database"):
            connection = self._connection()
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")

    # -- connections, transactions and errors ---------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._closed:
                raise StoreError(ErrorCode.STORAGE_ERROR, "the store is closed")
            connection = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,  # close() runs in another thread
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            # With WAL, NORMAL syncs at checkpoints, not at every commit: a committed write
            # survives a crash of the application, though not a power failure.
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextlib.contextmanager
    def _errors(self, doing: str, code: ErrorCode = ErrorCode.STORAGE_ERROR) -> Iterator[None]:
        """Turn sqlite3 errors into StoreError (PORT-3), keeping the driver error as the cause."""
        try:
            yield
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise StoreError(
                    ErrorCode.TIMEOUT, f"could not {doing}: {error}", {"path": str(self.path)}
                ) from error
            raise StoreError(code, f"could not {doing}: {error}") from error
        except sqlite3.Error as error:
            raise StoreError(code, f"could not {doing}: {error}") from error

    @contextlib.contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from its first statement."""
        with self._errors(doing, ErrorCode.STORAGE_WRITE_FAILED):
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _read(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._errors(doing, ErrorCode.STORAGE_READ_FAILED):
            return self._connection().execute(sql, params).fetchall()

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def asm_reopen_spec(self) -> tuple[str, dict[str, Any]]:
        """How the conformance kit opens this store's database from another process."""
        return ("asm_sqlite_store:SqliteSessionStore", {"path": str(self.path)})

    # -- sessions -------------------------------------------------------------------------------
    def save_session(self, session: Session) -> None:
        session = as_session(session)
        with self._write("save the session") as db:
            self._put_session(db, session)

    @staticmethod
    def _put_session(db: sqlite3.Connection, session: Session) -> None:
        db.execute(
            "INSERT OR REPLACE INTO sessions (id, agent_id, status, created_at, body) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                session.id,
                session.agent_id,
                session.status.value,
                _micros(session.created_at),
                _json(session),
            ),
        )

    def get_session(self, session_id: str) -> Session:
        key = _key(session_id, "session_id")
        rows = self._read("read the session", "SELECT body FROM sessions WHERE id = ?", (key,))
        if not rows:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND, f"no session {key!r}", {"session_id": key}
            )
        return Session.model_validate_json(rows[0][0])

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
        where, params = ["1"], []
        if wanted is not None:
            where.append("status = ?")
            params.append(wanted.value)
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(_key(agent_id, "agent_id"))
        rows = self._read(
            "list sessions",
            f"SELECT body FROM sessions WHERE {' AND '.join(where)} "
            "ORDER BY created_at, id LIMIT ? OFFSET ?",
            [*params, -1 if page.limit is None else page.limit, page.offset],
        )
        return [Session.model_validate_json(body) for (body,) in rows]

    def delete_session(self, session_id: str) -> None:
        key = _key(session_id, "session_id")
        with self._write("delete the session") as db:
            db.execute("DELETE FROM events WHERE session_id = ?", (key,))
            db.execute("DELETE FROM runs WHERE session_id = ?", (key,))
            db.execute("DELETE FROM sessions WHERE id = ?", (key,))

    # -- runs -----------------------------------------------------------------------------------
    def save_run(self, run: Run) -> None:
        run = as_run(run)
        with self._write("save the run") as db:
            self._put_run(db, run)

    @staticmethod
    def _put_run(db: sqlite3.Connection, run: Run) -> None:
        db.execute(
            "INSERT OR REPLACE INTO runs (id, session_id, status, started_at, body) "
            "VALUES (?, ?, ?, ?, ?)",
            (run.id, run.session_id, run.status.value, _micros(run.started_at), _json(run)),
        )

    def get_run(self, run_id: str) -> Run:
        key = _key(run_id, "run_id")
        rows = self._read("read the run", "SELECT body FROM runs WHERE id = ?", (key,))
        if not rows:
            raise StoreError(ErrorCode.RUN_NOT_FOUND, f"no run {key!r}", {"run_id": key})
        return Run.model_validate_json(rows[0][0])

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]:
        key = _key(session_id, "session_id")
        wanted = run_status_filter(status)
        page = Page.of(limit, offset)
        where, params = ["session_id = ?"], [key]
        if wanted is not None:
            where.append("status = ?")
            params.append(wanted.value)
        rows = self._read(
            "list runs",
            f"SELECT body FROM runs WHERE {' AND '.join(where)} "
            "ORDER BY started_at, id LIMIT ? OFFSET ?",
            [*params, -1 if page.limit is None else page.limit, page.offset],
        )
        return [Run.model_validate_json(body) for (body,) in rows]

    def get_active_run(self, session_id: str) -> Run | None:
        key = _key(session_id, "session_id")
        rows = self._read(
            "read the active run",
            "SELECT body FROM runs WHERE session_id = ? AND status = ? "
            "ORDER BY started_at DESC, id DESC LIMIT 1",
            (key, RunStatus.RUNNING.value),
        )
        return Run.model_validate_json(rows[0][0]) if rows else None

    # -- events ---------------------------------------------------------------------------------
    def append_event(self, event: Event) -> None:
        self.append_events([event])

    def append_event_with_sequence(self, event: Event) -> Event:
        return self.append_events([event])[0]

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)  # every element is checked before anything is written
        if not batch:
            return []
        # One transaction for the whole batch: all or nothing (BATCH-3), one consecutive block
        # of numbers per session (BATCH-4, BATCH-5).
        with self._write("append events") as db:
            return [self._put_event(db, event) for event in batch]

    @staticmethod
    def _put_event(db: sqlite3.Connection, event: Event) -> Event:
        """Store one event inside the caller's write transaction; a known id returns the original.

        The highest sequence number is read inside the same ``BEGIN IMMEDIATE`` transaction as the
        insert, so no other writer can take the same number in between.
        """
        known = db.execute("SELECT body FROM events WHERE id = ?", (event.id,)).fetchone()
        if known is not None:
            return Event.model_validate_json(known[0])
        (latest,) = db.execute(
            "SELECT COALESCE(MAX(sequence_number), 0) FROM events WHERE session_id = ?",
            (event.session_id,),
        ).fetchone()
        stored = event.with_sequence(latest + 1)
        db.execute(
            "INSERT INTO events (id, session_id, sequence_number, run_id, type, timestamp, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                stored.id,
                stored.session_id,
                stored.sequence_number,
                stored.run_id,
                stored.type.value,
                _micros(stored.timestamp),
                _json(stored),
            ),
        )
        return stored

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)  # payload, session and run membership (FLUSH-2)
        # Session, run and events in one transaction: a failure anywhere rolls back all of it.
        with self._write("flush the run") as db:
            self._put_session(db, checked.session)
            self._put_run(db, checked.run)
            for event in checked.events:
                self._put_event(db, event)

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
        key = _key(session_id, "session_id")
        # wait_timeout_ms is accepted and ignored: this store does not offer long_poll (POLL-0).
        query = EventQuery.of(
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,
        )
        where: list[str] = ["session_id = ?"]
        params: list[str | int] = [key]
        if query.run_id is not None:
            where.append("run_id = ?")
            params.append(_key(query.run_id, "run_id"))
        if query.type is not None:
            where.append("type = ?")
            params.append(query.type.value)
        if query.since is not None:
            where.append("timestamp >= ?")  # since is inclusive (EVT-3)
            params.append(_micros(query.since))
        if query.after is not None:
            where.append("sequence_number > ?")
            params.append(query.after)
        if query.before is not None:
            where.append("sequence_number < ?")
            params.append(query.before)
        rows = self._read(
            "read events",
            f"SELECT body FROM events WHERE {' AND '.join(where)} ORDER BY sequence_number LIMIT ?",
            [*params, -1 if query.limit is None else query.limit],
        )
        return [Event.model_validate_json(body) for (body,) in rows]

    def get_latest_sequence(self, session_id: str) -> int:
        key = _key(session_id, "session_id")
        rows = self._read(
            "read the latest sequence number",
            "SELECT COALESCE(MAX(sequence_number), 0) FROM events WHERE session_id = ?",
            (key,),
        )
        latest: int = rows[0][0]
        return latest
