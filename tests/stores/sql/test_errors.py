"""PORT-3 for the SQL store: every driver exception becomes a StoreError with the right code."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract.suite._builders import a_session, an_event, some_events
from reference_stores.sql import SqlSessionStore
from reference_stores.sql.errors import classify, is_conflict, to_store_error


def _wrapped(orig: Exception, kind: type[sa.exc.DBAPIError] = sa.exc.OperationalError) -> Any:
    return kind("SELECT 1", {}, orig)


def _pg_error(state: str) -> Exception:
    """The psycopg exception for a SQLSTATE, as the driver raises it."""
    error: Exception = psycopg.errors.lookup(state)(f"state {state}")
    return error


@pytest.mark.parametrize(
    ("orig", "code"),
    [
        (_pg_error("08006"), ErrorCode.STORAGE_CONNECTION_FAILED),
        (_pg_error("57P01"), ErrorCode.STORAGE_CONNECTION_FAILED),
        (_pg_error("57014"), ErrorCode.TIMEOUT),
        (_pg_error("55P03"), ErrorCode.TIMEOUT),
        (_pg_error("42P01"), ErrorCode.MIGRATION_REQUIRED),
        (_pg_error("22021"), ErrorCode.VALIDATION_ERROR),
        (_pg_error("XX000"), ErrorCode.STORAGE_WRITE_FAILED),
        (
            pymysql.err.OperationalError(2013, "Lost connection"),
            ErrorCode.STORAGE_CONNECTION_FAILED,
        ),
        (pymysql.err.OperationalError(2006, "gone away"), ErrorCode.STORAGE_CONNECTION_FAILED),
        (pymysql.err.OperationalError(1205, "Lock wait timeout"), ErrorCode.TIMEOUT),
        (pymysql.err.ProgrammingError(1146, "Table doesn't exist"), ErrorCode.MIGRATION_REQUIRED),
        (pymysql.err.OperationalError(1054, "Unknown column"), ErrorCode.MIGRATION_REQUIRED),
        (pymysql.err.DataError(1406, "Data too long"), ErrorCode.VALIDATION_ERROR),
        (sqlite3.OperationalError("database is locked"), ErrorCode.TIMEOUT),
        (sqlite3.OperationalError("no such table: asm_events"), ErrorCode.MIGRATION_REQUIRED),
        (
            sqlite3.OperationalError("unable to open database file"),
            ErrorCode.STORAGE_CONNECTION_FAILED,
        ),
        (sqlite3.OperationalError("disk I/O error"), ErrorCode.STORAGE_CONNECTION_FAILED),
    ],
    ids=lambda v: v.value if isinstance(v, ErrorCode) else f"{type(v).__name__}-{v}"[:40],
)
@rule("PORT-3")
def test_driver_errors_map_to_contract_codes(orig: Exception, code: ErrorCode) -> None:
    assert classify(_wrapped(orig), write=True) is code


@rule("PORT-3")
def test_reads_and_writes_get_their_own_fallback_code() -> None:
    error = _wrapped(sqlite3.OperationalError("something odd"))
    assert classify(error, write=True) is ErrorCode.STORAGE_WRITE_FAILED
    assert classify(error, write=False) is ErrorCode.STORAGE_READ_FAILED
    assert classify(ValueError("not from the driver"), write=True) is ErrorCode.STORAGE_ERROR


@rule("PORT-3")
def test_pool_exhaustion_is_a_timeout_and_retryable() -> None:
    mapped = to_store_error(
        sa.exc.TimeoutError("QueuePool limit"), "get_events", write=False, backend="postgresql"
    )
    assert mapped.code is ErrorCode.TIMEOUT and mapped.retryable


@rule("PORT-3")
def test_invalidated_connection_is_a_connection_failure() -> None:
    error = sa.exc.OperationalError(
        "SELECT 1", {}, psycopg.OperationalError("boom"), connection_invalidated=True
    )
    mapped = to_store_error(error, "flush", write=True, backend="postgresql")
    assert mapped.code is ErrorCode.STORAGE_CONNECTION_FAILED
    assert mapped.retryable
    assert mapped.__cause__ is error
    assert mapped.details["operation"] == "flush"


def test_races_are_retried_and_other_failures_are_not() -> None:
    assert is_conflict(_wrapped(sqlite3.IntegrityError("UNIQUE"), sa.exc.IntegrityError))
    assert is_conflict(_wrapped(_pg_error("40P01")))
    assert is_conflict(_wrapped(pymysql.err.OperationalError(1213, "Deadlock found")))
    assert not is_conflict(_wrapped(sqlite3.OperationalError("database is locked")))
    assert not is_conflict(ValueError("x"))


# -- real backends ------------------------------------------------------------------------------
@rule("PORT-3")
@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/test",
        "mysql+pymysql://root@127.0.0.1:1/test",
    ],
    ids=["postgresql", "mariadb"],
)
def test_unreachable_server_is_a_retryable_connection_failure(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        SqlSessionStore(url)
    error = caught.value
    assert error.code is ErrorCode.STORAGE_CONNECTION_FAILED
    assert error.retryable
    assert isinstance(error.__cause__, sa.exc.DBAPIError)


@rule("PORT-3")
def test_unopenable_sqlite_file_is_a_connection_failure(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        SqlSessionStore(f"sqlite:///{tmp_path / 'missing-dir' / 'store.db'}")
    assert caught.value.code is ErrorCode.STORAGE_CONNECTION_FAILED


@pytest.fixture
def isolated_store(request: pytest.FixtureRequest) -> Iterator[SqlSessionStore]:
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")
    store = SqlSessionStore(url, isolated=True)
    yield store
    store.close()


def _kill(store: SqlSessionStore, connection_id: int) -> None:
    """Kill one server connection of ``store`` from another connection, as an operator would."""
    url = store.engine.url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as admin:
            if store.engine.dialect.name == "postgresql":
                admin.execute(
                    sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": connection_id}
                )
            else:
                admin.exec_driver_sql(f"KILL CONNECTION {int(connection_id)}")
    finally:
        engine.dispose()


def _connection_id(conn: Any) -> int:
    query = (
        "SELECT pg_backend_pid()" if conn.dialect.name == "postgresql" else "SELECT CONNECTION_ID()"
    )
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(query)
        return int(cursor.fetchone()[0])
    finally:
        cursor.close()


@rule("PORT-3")
@pytest.mark.parametrize("isolated_store", ["postgresql", "mariadb"], indirect=True)
def test_connection_killed_at_commit_is_a_connection_failure(
    isolated_store: SqlSessionStore,
) -> None:
    """Whether a COMMIT that lost its connection took effect is unknown: the store says so."""
    store = isolated_store
    session = a_session()
    store.save_session(session)
    engine = store.asm_fault_target()
    killed = threading.Event()

    def kill_before_commit(conn: Any) -> None:
        if not killed.is_set():
            killed.set()
            _kill(store, _connection_id(conn))

    sa.event.listen(engine, "commit", kill_before_commit)
    try:
        with pytest.raises(StoreError) as caught:
            store.append_events(some_events(session, 3))
    finally:
        sa.event.remove(engine, "commit", kill_before_commit)

    error = caught.value
    assert error.code is ErrorCode.STORAGE_CONNECTION_FAILED, error
    assert error.retryable
    assert isinstance(error.__cause__, sa.exc.DBAPIError)
    # The server never got the COMMIT: nothing was stored, and the store works on.
    assert store.get_events(session.id) == []
    assert store.get_latest_sequence(session.id) == 0
    assert store.append_event_with_sequence(an_event(session)).sequence_number == 1


@rule("PORT-3")
@pytest.mark.parametrize("isolated_store", ["postgresql", "mariadb"], indirect=True)
def test_connection_killed_before_anything_was_written_is_retried(
    isolated_store: SqlSessionStore,
) -> None:
    store = isolated_store
    session = a_session()
    store.save_session(session)
    engine = store.asm_fault_target()
    killed = threading.Event()

    def kill_before_the_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT") and not killed.is_set():
            killed.set()
            _kill(store, _connection_id(conn))

    sa.event.listen(engine, "before_cursor_execute", kill_before_the_insert)
    try:
        stored = store.append_events(some_events(session, 3))
    finally:
        sa.event.remove(engine, "before_cursor_execute", kill_before_the_insert)

    assert killed.is_set()
    assert [e.sequence_number for e in stored] == [1, 2, 3]
    assert store.get_events(session.id) == stored


@rule("PORT-3")
@pytest.mark.parametrize("isolated_store", ["postgresql", "mariadb"], indirect=True)
def test_reads_survive_a_killed_pooled_connection(isolated_store: SqlSessionStore) -> None:
    store = isolated_store
    session = a_session()
    store.save_session(session)
    with store.engine.connect() as conn:
        victim = _connection_id(conn)
    _kill(store, victim)  # the connection now idles dead in the pool

    assert store.get_session(session.id) == session


@rule("PORT-3", "DATA-2")
def test_nul_in_a_postgresql_text_column_is_rejected_before_writing(pg_url: str) -> None:
    with SqlSessionStore(pg_url, isolated=True) as store:
        session = a_session()
        store.save_session(session)
        good, bad = an_event(session), an_event(session, provider="a\x00b")
        with pytest.raises(StoreError) as caught:
            store.append_events([good, bad])
        assert caught.value.code is ErrorCode.VALIDATION_ERROR
        assert caught.value.details["field"] == "event.provider"
        assert caught.value.__cause__ is None, "checked before the write, not after a failure"
        assert store.get_events(session.id) == []
        # JSON text escapes NUL, so it is stored exactly even on PostgreSQL.
        kept = store.append_event_with_sequence(an_event(session, data={"t": "a\x00b"}))
        assert store.get_events(session.id) == [kept]


def test_a_closed_store_refuses_work() -> None:
    store = SqlSessionStore()
    store.close()
    store.close()
    with pytest.raises(StoreError) as caught:
        store.save_session(a_session())
    assert caught.value.code is ErrorCode.STORAGE_ERROR
