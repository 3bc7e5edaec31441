"""The driver fault target for stores on the standard library's ``sqlite3``.

``sqlite3.Connection`` and ``sqlite3.Cursor`` are C types whose methods cannot be replaced, so
while armed the target replaces ``sqlite3.connect`` (and ``sqlite3.dbapi2.connect``, which
SQLAlchemy's pysqlite dialect calls): connections it opens are made with ``factory=`` a subclass
(of the caller's own factory, if it passed one) whose ``execute``, ``executemany``,
``executescript``, ``cursor()`` (an instrumented cursor subclass), ``commit``, ``rollback`` and
``with`` block pass through the target. The C shortcut ``Connection.execute`` would run a cursor
of its own; the subclass runs the statement on ``self.cursor()``, as the documentation describes
the shortcut, so each statement is asked about once, by the cursor.

A write is a statement ``sql_is_write`` accepts; a script (``executescript``) is one write when
any of its statements writes. Failures are ``sqlite3.OperationalError``.

The limit: a connection opened before the target was armed is a plain C object and stays
invisible; build the store while the target is armed (the suite does, see
docs/fault-injection.md). Connections opened while armed keep their subclass afterwards and, the
target disarmed, behave exactly like plain ones.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from typing import Any

from pytest_asm_contract._faults.drivers import SqlDriverTarget
from pytest_asm_contract._faults.sqlalchemy import sql_is_write, sql_verb

#: ``sqlite3.connect(database, timeout, detect_types, isolation_level, check_same_thread,
#: factory, ...)``: where ``factory`` sits when passed by position.
_FACTORY_POSITION = 5


class _ConnectionOverrides:
    """Mixed into a connection factory: every statement runs on an instrumented cursor."""

    _asm_target: Sqlite3Target

    def cursor(self, factory: Any = None) -> Any:
        parent: Any = super()
        target = self._asm_target
        return parent.cursor(target.cursor_class(factory or target.sqlite3.Cursor))

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, script: str, /) -> Any:
        return self.cursor().executescript(script)

    def commit(self) -> None:
        parent: Any = super()
        self._asm_target.commit(self, parent.commit)

    def rollback(self) -> None:
        parent: Any = super()
        self._asm_target.commit(self, parent.rollback, rolled_back=True)

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
        parent: Any = super()
        end = functools.partial(parent.__exit__, exc_type, exc, traceback)
        return self._asm_target.commit(self, end, rolled_back=exc_type is not None)


class _CursorOverrides:
    """Mixed into a cursor factory: each statement is asked about before it runs."""

    _asm_target: Sqlite3Target
    connection: Any

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        parent: Any = super()
        return self._asm_target.statement(
            self.connection, sql, lambda: parent.execute(sql, parameters)
        )

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        parent: Any = super()
        return self._asm_target.statement(
            self.connection, sql, lambda: parent.executemany(sql, parameters)
        )

    def executescript(self, script: str, /) -> Any:
        parent: Any = super()
        return self._asm_target.script(
            self.connection, script, lambda: parent.executescript(script)
        )


class Sqlite3Target(SqlDriverTarget):
    """Fails the writes of sqlite3 connections opened while armed, where the policy says."""

    module = "sqlite3"
    label = "SQLite"

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[tuple[str, type], type] = {}
        self._classes_lock = threading.Lock()

    @property
    def sqlite3(self) -> Any:
        return self._driver

    def error(self, message: str) -> Exception:
        error: Exception = self.sqlite3.OperationalError(message)
        return error

    def in_transaction(self, connection: Any) -> bool:
        return bool(connection.in_transaction)

    def connection_class(self, factory: type) -> type:
        """``factory`` with the connection overrides mixed in (itself if they already are)."""
        return self._instrumented("connection", factory, _ConnectionOverrides)

    def cursor_class(self, factory: type) -> type:
        return self._instrumented("cursor", factory, _CursorOverrides)

    def _instrumented(self, kind: str, factory: type, overrides: type) -> type:
        if issubclass(factory, overrides):
            return factory
        with self._classes_lock:
            made = self._classes.get((kind, factory))
            if made is None:
                name = f"Instrumented{factory.__name__}"
                made = type(name, (overrides, factory), {"_asm_target": self})
                self._classes[(kind, factory)] = made
        return made

    def script(self, connection: Any, script: str, run: Any) -> Any:
        """An ``executescript``: one write if any of its statements writes."""
        statements = list(_statements(self.sqlite3, script))
        writes = any(sql_is_write(s) for s in statements)
        rolled_back = bool(statements) and sql_verb(statements[-1]) == "ROLLBACK"

        def settle(policy: Any) -> None:
            self._settle(policy, connection, script[:200], writes, rolled_back)

        return self.call(script, writes, run, settle)

    def _install(self, driver: Any) -> None:
        def wrap(connect: Any) -> Any:
            def connect_instrumented(*args: Any, **kwargs: Any) -> Any:
                if len(args) > _FACTORY_POSITION:
                    factory = self.connection_class(args[_FACTORY_POSITION])
                    args = (*args[:_FACTORY_POSITION], factory, *args[_FACTORY_POSITION + 1 :])
                else:
                    kwargs["factory"] = self.connection_class(
                        kwargs.get("factory") or driver.Connection
                    )
                return connect(*args, **kwargs)

            return connect_instrumented

        self._patch(driver, "connect", wrap)
        self._patch(driver.dbapi2, "connect", wrap)


def _statements(sqlite3: Any, script: str) -> Iterator[str]:
    """The statements of a script, split where SQLite itself sees one end."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    if statement.strip(" \t\r\n;"):
        yield statement


__all__ = ["Sqlite3Target"]
