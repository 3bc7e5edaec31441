"""Driver exceptions to ``StoreError`` (contract PORT-3): nothing raw leaves the store.

SQLAlchemy wraps every DBAPI exception in ``sqlalchemy.exc.DBAPIError`` with the driver's own
exception as ``orig``; the code here reads the driver's error code (PostgreSQL SQLSTATE, MySQL error
number, SQLite message) to choose the contract code:

* connection lost or refused, server shutting down → ``storage_connection_failed`` (retryable);
* lock or statement timeout, SQLite "database is locked", pool exhausted → ``timeout`` (retryable);
* missing table or column → ``migration_required``;
* a value the column cannot hold → ``validation_error`` (DATA-2; the transaction is rolled back);
* anything else → ``storage_write_failed`` for writes, ``storage_read_failed`` for reads.
"""

from __future__ import annotations

from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError

try:
    import sqlalchemy as sa
except ImportError:  # DEP-1
    sa = None  # type: ignore[assignment]

PG_CONNECTION_STATES = ("57P01", "57P02", "57P03")
PG_TIMEOUT_STATES = ("57014", "55P03")
PG_CONFLICT_STATES = ("40001", "40P01", "23505")
PG_SCHEMA_STATES = ("42P01", "42703")
MYSQL_CONNECTION_ERRORS = frozenset({1040, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2055})
MYSQL_TIMEOUT_ERRORS = frozenset({1205, 3024})
MYSQL_CONFLICT_ERRORS = frozenset({1062, 1213})
#: The modules of MySQL drivers whose errors carry the server's error number first.
MYSQL_DRIVERS = ("pymysql", "asyncmy")
MYSQL_SCHEMA_ERRORS = frozenset({1054, 1146})
MYSQL_DATA_ERRORS = frozenset({1264, 1300, 1366, 1406})
SQLITE_TIMEOUT_MESSAGES = ("database is locked", "database table is locked", "busy")
SQLITE_SCHEMA_MESSAGES = ("no such table", "no such column", "has no column named")
SQLITE_CONNECTION_MESSAGES = ("unable to open database", "disk i/o error", "not a database")


def _driver(error: BaseException) -> BaseException:
    orig = getattr(error, "orig", None)
    return orig if isinstance(orig, BaseException) else error


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(_driver(error), "sqlstate", None)
    return state if isinstance(state, str) else None


def _mysql_code(error: BaseException) -> int | None:
    args = getattr(_driver(error), "args", ())
    if (
        args
        and isinstance(args[0], int)
        and type(_driver(error)).__module__.startswith(MYSQL_DRIVERS)
    ):
        return args[0]
    return None


def _message(error: BaseException) -> str:
    return str(_driver(error)).strip().splitlines()[0] if str(_driver(error)).strip() else ""


def is_conflict(error: BaseException) -> bool:
    """A write lost a race (duplicate key, deadlock, serialization failure): retry it whole."""
    if sa is None or not isinstance(error, sa.exc.DBAPIError):
        return False
    if isinstance(error, sa.exc.IntegrityError):
        return True
    state = _sqlstate(error)
    if state in PG_CONFLICT_STATES:
        return True
    code = _mysql_code(error)
    return code in MYSQL_CONFLICT_ERRORS


def classify(error: BaseException, *, write: bool, connecting: bool = False) -> ErrorCode:
    """The contract code for a backend exception."""
    fallback = ErrorCode.STORAGE_WRITE_FAILED if write else ErrorCode.STORAGE_READ_FAILED
    if sa is None:
        return ErrorCode.STORAGE_ERROR
    if isinstance(error, sa.exc.TimeoutError):  # connection pool exhausted
        return ErrorCode.TIMEOUT
    if not isinstance(error, sa.exc.DBAPIError):
        if isinstance(error, sa.exc.SQLAlchemyError):
            return fallback
        return ErrorCode.STORAGE_ERROR
    if error.connection_invalidated:
        return ErrorCode.STORAGE_CONNECTION_FAILED
    state, code = _sqlstate(error), _mysql_code(error)
    text = _message(error).lower()
    if state is not None:
        if state.startswith("08") or state in PG_CONNECTION_STATES:
            return ErrorCode.STORAGE_CONNECTION_FAILED
        if state in PG_TIMEOUT_STATES:
            return ErrorCode.TIMEOUT
        if state in PG_SCHEMA_STATES:
            return ErrorCode.MIGRATION_REQUIRED
        if state.startswith("22"):
            return ErrorCode.VALIDATION_ERROR
    if code is not None:
        if code in MYSQL_CONNECTION_ERRORS:
            return ErrorCode.STORAGE_CONNECTION_FAILED
        if code in MYSQL_TIMEOUT_ERRORS:
            return ErrorCode.TIMEOUT
        if code in MYSQL_SCHEMA_ERRORS:
            return ErrorCode.MIGRATION_REQUIRED
        if code in MYSQL_DATA_ERRORS:
            return ErrorCode.VALIDATION_ERROR
    if any(m in text for m in SQLITE_TIMEOUT_MESSAGES):
        return ErrorCode.TIMEOUT
    if any(m in text for m in SQLITE_SCHEMA_MESSAGES):
        return ErrorCode.MIGRATION_REQUIRED
    if any(m in text for m in SQLITE_CONNECTION_MESSAGES):
        return ErrorCode.STORAGE_CONNECTION_FAILED
    if connecting and isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError):
        return ErrorCode.STORAGE_CONNECTION_FAILED
    if isinstance(error, sa.exc.DataError):
        return ErrorCode.VALIDATION_ERROR
    return fallback


def to_store_error(
    error: BaseException,
    operation: str,
    *,
    write: bool,
    backend: str,
    connecting: bool = False,
) -> StoreError:
    """A ``StoreError`` for ``error`` raised by ``operation``; chain it with ``raise ... from``."""
    if isinstance(error, StoreError):
        return error
    code = classify(error, write=write, connecting=connecting)
    driver = _driver(error)
    details: dict[str, Any] = {
        "operation": operation,
        "backend": backend,
        "driver_error": f"{type(driver).__module__}.{type(driver).__name__}",
    }
    if (state := _sqlstate(error)) is not None:
        details["sqlstate"] = state
    if (mysql_code := _mysql_code(error)) is not None:
        details["mysql_errno"] = mysql_code
    what = {
        ErrorCode.STORAGE_CONNECTION_FAILED: "lost or could not open its database connection",
        ErrorCode.TIMEOUT: "timed out waiting for the database",
        ErrorCode.MIGRATION_REQUIRED: "found the database schema incomplete",
        ErrorCode.VALIDATION_ERROR: "was given a value the database cannot hold",
    }.get(code, "failed in the database")
    summary = _message(error) or type(driver).__name__
    store_error = StoreError(code, f"{operation} {what}: {summary:.300}", details)
    store_error.__cause__ = error
    return store_error
