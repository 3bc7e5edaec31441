"""Engines, per-dialect connection setup, writer locks and the pool gate.

* One Engine (and connection pool) per database URL and process, shared by every store on that
  URL; each store works through ``engine.execution_options()``, a view with its own event
  dispatch (so the fault hook of one store never touches another) on the same pool.
* SQLite: WAL journal, ``synchronous=NORMAL`` (``OFF`` for temporary files), 30 s busy timeout.
  The driver runs in autocommit mode: a write transaction starts with an explicit
  ``BEGIN IMMEDIATE`` (``begin_write``; a deferred transaction that upgrades to a writer fails
  with "database is locked" whatever the busy timeout), and a read, always one statement, is its
  own snapshot, with no BEGIN/COMMIT round trip. (A "begin" engine event would do the same for
  every transaction, but any engine event makes SQLAlchemy dispatch events around every
  statement: a third of a one-row read.) Writers of one process also queue on a lock per
  database file instead of spinning in SQLite's busy handler.
* MariaDB/MySQL: ``READ COMMITTED``, strict SQL mode, ``utf8mb4``.
* PostgreSQL: ``READ COMMITTED`` (the default); reads run in autocommit (one round trip).

Nothing here runs the migration: temporary SQLite files and isolated namespaces, which need the
schema, are made in ``provision``, above both this module and ``migrate``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

from reference_stores.sql.schema import MYSQL_DIALECTS

try:
    import sqlalchemy as sa
except ImportError:  # DEP-1
    sa = None  # type: ignore[assignment]

SQLITE_BUSY_TIMEOUT_S = 30.0
POOL_SIZE = 8
POOL_OVERFLOW = 24

_lock = threading.RLock()
_engines: dict[str, sa.Engine] = {}
_file_locks: dict[str, threading.Lock] = {}
_gates: weakref.WeakKeyDictionary[Any, FairGate] = weakref.WeakKeyDictionary()
#: The SQLite engines set up here (driver in autocommit mode: see ``begin_write``).
_autocommit_sqlite: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


class FairGate:
    """A FIFO counting semaphore in front of a connection pool.

    SQLAlchemy's pool lets a thread that returns a connection take one again at once, so a few
    busy readers can starve a writer until the pool timeout fires. Threads here wait in arrival
    order and a released slot goes straight to the oldest waiter; with at most as many holders as
    the pool has connections, the pool itself never makes anyone wait.
    """

    def __init__(self, capacity: int) -> None:
        self._free = capacity
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()

    def acquire(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # hand the slot over directly
            else:
                self._free += 1

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


def gate(engine: sa.Engine) -> FairGate:
    """The gate of ``engine``'s connection pool (shared by every view of that engine)."""
    pool = engine.pool
    with _lock:
        found = _gates.get(pool)
        if found is None:
            capacity = 1000
            if isinstance(pool, sa.pool.QueuePool):
                overflow = pool._max_overflow  # no public accessor
                capacity = pool.size() + (overflow if overflow >= 0 else 1000)
            found = _gates[pool] = FairGate(capacity)
        return found


def url_key(url: sa.URL) -> str:
    return url.render_as_string(hide_password=False)


def is_memory_sqlite(url: sa.URL) -> bool:
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in str(url.query)
    )


def sqlite_path(url: sa.URL) -> str | None:
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url):
        return None
    return os.path.abspath(url.database or "")


def write_lock(engine: sa.Engine) -> threading.Lock | None:
    """The in-process writer lock of a SQLite database file (None for server databases)."""
    path = sqlite_path(engine.url)
    if path is None:
        return None
    with _lock:
        return _file_locks.setdefault(path, threading.Lock())


def forget_write_lock(path: str | os.PathLike[str]) -> None:
    """Drop the writer lock of a SQLite file that is being removed."""
    with _lock:
        _file_locks.pop(os.path.abspath(path), None)


def view(engine: sa.Engine, **options: Any) -> sa.Engine:
    """``engine.execution_options(**options)``: a view with its own event dispatch on the same
    pool, set up as ``engine`` is."""
    found = engine.execution_options(**options)
    if engine in _autocommit_sqlite:
        _autocommit_sqlite.add(found)
    return found


def begin_write(connection: sa.Connection, engine: sa.Engine) -> None:
    """Start the write transaction on ``connection``, just after ``connection.begin()``: on a
    SQLite engine of ours, ``BEGIN IMMEDIATE``; an Engine from elsewhere keeps its driver's own
    transaction handling."""
    if engine in _autocommit_sqlite:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def begin_read(connection: sa.Connection, engine: sa.Engine) -> None:
    """Start a read transaction just begun on ``connection``: on a SQLite engine of ours, a
    deferred ``BEGIN`` (its first read fixes the snapshot, in WAL mode); elsewhere the
    connection's isolation level does."""
    if engine in _autocommit_sqlite:
        connection.exec_driver_sql("BEGIN")


def _setup_sqlite(engine: sa.Engine, synchronous: str) -> None:
    _autocommit_sqlite.add(engine)

    @sa.event.listens_for(engine, "connect")
    def connect(dbapi_connection: Any, record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, decides where transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()


def _setup_mysql(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(
                "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,"
                "ERROR_FOR_DIVISION_BY_ZERO'"
            )
        finally:
            cursor.close()


def create_engine(url: sa.URL, *, poolclass: Any = None, temporary: bool = False) -> sa.Engine:
    """A new Engine for ``url`` with the store's per-dialect setup.

    ``temporary``: a SQLite file deleted when its store closes, so never worth a disk flush
    (``synchronous=OFF``); other SQLite files use ``NORMAL``, safe with WAL.
    """
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {}
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    if poolclass is None:
        kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        engine = sa.create_engine(url, **kwargs)
        _setup_sqlite(engine, "OFF" if temporary else "NORMAL")
        return engine
    # No pre-ping (a round trip per checkout): the store retries an operation whose connection
    # turns out dead before anything was committed, and SQLAlchemy then renews the pool.
    kwargs.update(pool_recycle=3600)
    if backend in MYSQL_DIALECTS:
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        engine = sa.create_engine(url, isolation_level="READ COMMITTED", **kwargs)
        _setup_mysql(engine)
        return engine
    return sa.create_engine(url, **kwargs)


def create_async_engine(url: sa.URL, *, temporary: bool = False) -> Any:
    """A new ``AsyncEngine`` for ``url`` with the per-dialect setup of :func:`create_engine`
    (``temporary`` as there), applied to its ``sync_engine``, where SQLAlchemy runs every
    statement and event.

    Never shared: an async driver's connections belong to the event loop that opened them, and
    each async store lives on a loop of its own.
    """
    from sqlalchemy.ext.asyncio import create_async_engine as create

    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        engine = create(url, **kwargs)
        _setup_sqlite(engine.sync_engine, "OFF" if temporary else "NORMAL")
        return engine
    kwargs.update(pool_recycle=3600)
    if backend in MYSQL_DIALECTS:
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        engine = create(url, isolation_level="READ COMMITTED", **kwargs)
        _setup_mysql(engine.sync_engine)
        return engine
    return create(url, **kwargs)


#: The sync driver that reaches the database an async engine's URL names.
SYNC_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql"}


def sync_counterpart(engine: sa.Engine) -> sa.Engine:
    """``engine``, or for the sync face of an async engine the shared sync Engine of the same
    database: what code outside any event loop (the clean-up at exit) can use."""
    if not engine.dialect.is_async:
        return engine
    backend = engine.url.get_backend_name()
    return shared_engine(engine.url.set(drivername=f"{backend}+{SYNC_DRIVERS[backend]}"))


def shared_engine(url: sa.URL) -> sa.Engine:
    """The process-wide Engine for ``url`` (created on first use)."""
    key = url_key(url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = create_engine(url)
        return engine


def _forget_engines_after_fork() -> None:
    # A forked child must not use the parent's pooled connections (SQLAlchemy's advice).
    for engine in list(_engines.values()):
        engine.dispose(close=False)
    _engines.clear()
    _file_locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_engines_after_fork)


@atexit.register
def dispose_all() -> None:
    """Close the pooled connections of every shared Engine (also run at exit)."""
    with _lock:
        found = list(_engines.values())
    for engine in found:
        with contextlib.suppress(Exception):  # never mask the real outcome
            engine.dispose()
