"""Small SQLite-file stores that declare ``shared_backend``: a correct one and two broken ones.

Every record is a JSON body in a SQLite file, so store instances in different processes share it
(``asm_reopen_spec`` names the file). ``SqliteToyStore`` keeps the contract: every write is one
``BEGIN IMMEDIATE`` transaction, numbering included. The broken ones keep it within one process
and break it across processes or across a crash, where only the process histories and the crash
rounds of the kit look.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from pytest_asm_contract._contract.errors import ErrorCode, StoreError, validation_error
from pytest_asm_contract._contract.model import (
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
from tests.zoo import HISTORY_RULES

T = TypeVar("T")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, "
    "body TEXT NOT NULL)",
    # No UNIQUE(session_id, seq) and no UNIQUE(id): the transaction is the only guard.
    "CREATE TABLE IF NOT EXISTS events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, "
    "id TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, seq)",
    "CREATE INDEX IF NOT EXISTS events_by_id ON events (id)",
)


class SqliteToyStore:
    """The session store on one SQLite file; correct, also across processes and crashes."""

    capabilities = frozenset({"shared_backend"})

    def __init__(self, path: str | None = None) -> None:
        self._owned = path is None
        if path is None:
            handle, path = tempfile.mkstemp(prefix="asm-toy-", suffix=".sqlite")
            os.close(handle)
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        if self._owned:
            with self._transaction() as db:
                for statement in SCHEMA:
                    db.execute(statement)

    # -- plumbing -------------------------------------------------------------------------------
    def asm_reopen_spec(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}:{type(self).__name__}", {"path": self._path}

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        if self._owned:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self._path + suffix)

    def _db(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._path, timeout=60, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, _storage_errors():
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _query(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with _storage_errors():
            return fn(self._db())

    # -- sessions -------------------------------------------------------------------------------
    def save_session(self, session: Session) -> None:
        session = as_session(session)
        with self._transaction() as db:
            self._put_session(db, session)

    @staticmethod
    def _put_session(db: sqlite3.Connection, session: Session) -> None:
        db.execute(
            "INSERT INTO sessions (id, body) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            (session.id, json_body(session)),
        )

    def get_session(self, session_id: str) -> Session:
        check_id(session_id, "session_id")
        row = self._query(
            lambda db: db.execute(
                "SELECT body FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        )
        if row is None:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND,
                f"no session {session_id!r}",
                {"session_id": session_id},
            )
        return Session.model_validate_json(row[0])

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
        rows = self._query(lambda db: db.execute("SELECT body FROM sessions").fetchall())
        sessions = [Session.model_validate_json(row[0]) for row in rows]
        sessions = [
            s
            for s in sessions
            if (wanted is None or s.status == wanted)
            and (agent_id is None or s.agent_id == agent_id)
        ]
        sessions.sort(key=lambda s: (s.created_at, s.id))
        return page.apply(sessions)

    def delete_session(self, session_id: str) -> None:
        check_id(session_id, "session_id")
        with self._transaction() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            db.execute("DELETE FROM runs WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM events WHERE session_id = ?", (session_id,))

    # -- runs -----------------------------------------------------------------------------------
    def save_run(self, run: Run) -> None:
        run = as_run(run)
        with self._transaction() as db:
            self._put_run(db, run)

    @staticmethod
    def _put_run(db: sqlite3.Connection, run: Run) -> None:
        db.execute(
            "INSERT INTO runs (id, session_id, body) VALUES (?, ?, ?) ON CONFLICT (id) "
            "DO UPDATE SET session_id = excluded.session_id, body = excluded.body",
            (run.id, run.session_id, json_body(run)),
        )

    def get_run(self, run_id: str) -> Run:
        check_id(run_id, "run_id")
        row = self._query(
            lambda db: db.execute("SELECT body FROM runs WHERE id = ?", (run_id,)).fetchone()
        )
        if row is None:
            raise StoreError(ErrorCode.RUN_NOT_FOUND, f"no run {run_id!r}", {"run_id": run_id})
        return Run.model_validate_json(row[0])

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
        rows = self._query(
            lambda db: db.execute(
                "SELECT body FROM runs WHERE session_id = ?", (session_id,)
            ).fetchall()
        )
        runs = [Run.model_validate_json(row[0]) for row in rows]
        runs = [r for r in runs if wanted is None or r.status == wanted]
        runs.sort(key=lambda r: (r.started_at, r.id))
        return page.apply(runs)

    def get_active_run(self, session_id: str) -> Run | None:
        running = self.list_runs(session_id, status=RunStatus.RUNNING)
        return running[-1] if running else None

    # -- events ---------------------------------------------------------------------------------
    def append_event(self, event: Event) -> None:
        self.append_events([event])

    def append_event_with_sequence(self, event: Event) -> Event:
        return self.append_events([event])[0]

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        if not batch:
            return []
        with self._transaction() as db:
            return self._store_events(db, batch)

    def _store_events(self, db: sqlite3.Connection, batch: list[Event]) -> list[Event]:
        """Store the events not stored yet, each session's new ones numbered after its highest."""
        known: dict[str, Event] = {}
        out = []
        for event in batch:
            existing = known.get(event.id) or self._stored(db, event.id)
            if existing is None:
                number = self._highest(db, event.session_id) + 1
                existing = self._insert(db, event, number)
            known[event.id] = existing
            out.append(existing)
        return out

    @staticmethod
    def _stored(db: sqlite3.Connection, event_id: str) -> Event | None:
        row = db.execute("SELECT body FROM events WHERE id = ? LIMIT 1", (event_id,)).fetchone()
        return None if row is None else Event.model_validate_json(row[0])

    @staticmethod
    def _highest(db: sqlite3.Connection, session_id: str) -> int:
        row = db.execute(
            "SELECT MAX(seq) FROM events WHERE session_id = ?", (session_id,)
        ).fetchone()
        return int(row[0] or 0)

    @staticmethod
    def _insert(db: sqlite3.Connection, event: Event, number: int) -> Event:
        stored = event.with_sequence(number)
        db.execute(
            "INSERT INTO events (session_id, seq, id, body) VALUES (?, ?, ?, ?)",
            (stored.session_id, number, stored.id, json_body(stored)),
        )
        return stored

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        with self._transaction() as db:
            self._put_session(db, checked.session)
            self._put_run(db, checked.run)
            self._store_events(db, list(checked.events))

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
        rows = self._query(
            lambda db: db.execute(
                "SELECT body FROM events WHERE session_id = ? AND seq > ? ORDER BY seq",
                (session_id, min(query.after or 0, 2**62)),
            ).fetchall()
        )
        return query.apply(Event.model_validate_json(row[0]) for row in rows)

    def get_latest_sequence(self, session_id: str) -> int:
        check_id(session_id, "session_id")
        return self._query(lambda db: self._highest(db, session_id))


def json_body(model: BaseModel) -> str:
    """The JSON body of a record; a value JSON text cannot hold exactly is refused (DATA-2)."""
    try:
        body = model.model_dump_json()
        body.encode("utf-8")
        exact = type(model).model_validate_json(body) == model
    except (ValueError, UnicodeError) as error:
        raise validation_error(f"a value SQLite text cannot hold: {error}") from None
    if not exact:
        raise validation_error("a value JSON text cannot hold exactly (a lone surrogate?)")
    return body


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise StoreError(ErrorCode.STORAGE_ERROR, f"sqlite: {error}") from error


class UnguardedSqliteStore(SqliteToyStore):
    """Reads the session's highest number and checks for a stored id before its write
    transaction, guarded only by a lock of this process (an in-process lock standing in for a
    database lock): threads of one process number correctly, two processes take the same
    numbers and store a racing id twice."""

    BREAKS = ("CONC-3",)
    # the race shows in whichever concurrent check it hits first
    ALSO = (*HISTORY_RULES, "DATA-2")

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        if not batch:
            return []
        with self._write_lock, _storage_errors():
            db = self._db()
            planned: dict[str, Event] = {}
            highest: dict[str, int] = {}
            out = []
            for event in batch:
                existing = planned.get(event.id) or self._stored(db, event.id)
                if existing is None:
                    if event.session_id not in highest:
                        highest[event.session_id] = self._highest(db, event.session_id)
                    highest[event.session_id] += 1
                    existing = event.with_sequence(highest[event.session_id])
                    planned[event.id] = existing
                out.append(existing)
            time.sleep(0.0003)  # building the rows; another process reads the same numbers
            db.execute("BEGIN IMMEDIATE")
            try:
                for event in planned.values():
                    self._insert(db, event, event.sequence_number or 0)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return out


class TornFlushSqliteStore(SqliteToyStore):
    """flush commits the run, the events and the session in three transactions: a concurrent
    reader can catch it half done, and a writer killed between them leaves the flush in part
    for good (its run without its events, or its events under an old session record)."""

    BREAKS = ("FLUSH-3",)
    # a flush in three transactions is seen in part by readers and other processes
    ALSO = (*HISTORY_RULES, "CONC-3", "DATA-2")

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        with self._transaction() as db:
            self._put_run(db, checked.run)
        time.sleep(0.002)  # the next transaction
        with self._transaction() as db:
            self._store_events(db, list(checked.events))
        time.sleep(0.002)
        with self._transaction() as db:
            self._put_session(db, checked.session)
