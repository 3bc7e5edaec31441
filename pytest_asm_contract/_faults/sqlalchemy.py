"""The fault target for stores on a SQLAlchemy Engine: engine events, nothing patched.

A ``before_cursor_execute`` listener asks the policy before every statement that writes (the
first keyword, after comments and ``WITH ... AS (...)``, is INSERT, UPDATE, DELETE, REPLACE,
MERGE or UPSERT) and raises the driver's own ``OperationalError``, which SQLAlchemy wraps as it
would a lost server. A ``commit`` listener asks it after each commit: to lose the reply, it
commits on the DB-API connection itself and then raises, as if the connection dropped before the
answer came back. Listeners are registered on the engine the hook returned (a view made with
``engine.execution_options()`` has its own), so other engines are untouched. SQLAlchemy is never
imported here unless a store hands over an engine (contract DEP-1).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from pytest_asm_contract._faults.protocols import Policy

#: SQL statements that write: the first keyword (after comments and WITH ... AS (...)).
SQL_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "UPSERT"})

_COMMENT = re.compile(r"(--[^\n]*\n|/\*.*?\*/|\s+)", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]+")


def _without_leading_comments(statement: str) -> str:
    text = statement.lstrip()
    while True:
        stripped = _COMMENT.match(text)
        if not stripped:
            return text
        text = text[stripped.end() :]


def sql_verb(statement: str) -> str:
    """A statement's first keyword, upper-cased, after comments ("" when there is none)."""
    match = _WORD.match(_without_leading_comments(statement))
    return "" if match is None else match.group(0).upper()


def sql_is_write(statement: str) -> bool:
    """Whether a SQL statement writes (a data-modifying ``WITH`` counts as a write)."""
    verb = sql_verb(statement)
    if verb == "WITH":
        words = {w.upper() for w in _WORD.findall(_without_leading_comments(statement))}
        return bool(words & SQL_WRITE_VERBS)
    return verb in SQL_WRITE_VERBS


def is_engine(target: object) -> bool:
    """Whether ``target`` is a SQLAlchemy Engine (or a view of one), told by its shape."""
    return type(target).__module__.startswith("sqlalchemy") and hasattr(target, "dialect")


class SqlAlchemyTarget:
    """Fails the writes of one engine where the armed policy says."""

    kind = "SQLAlchemy Engine"

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._event = importlib.import_module("sqlalchemy.event")
        self._listeners: list[tuple[str, Callable[..., None]]] = []

    def arm(self, policy: Policy) -> None:
        error_type: type[Exception] = self._engine.dialect.loaded_dbapi.OperationalError

        def before_cursor_execute(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            if sql_is_write(statement):
                message = policy.before_write(statement)
                if message is not None:
                    raise error_type(message)

        def commit(connection: Any) -> None:
            message = policy.after_write("COMMIT")
            if message is not None:
                connection.connection.dbapi_connection.commit()
                raise error_type(message)

        for name, listener in (
            ("before_cursor_execute", before_cursor_execute),
            ("commit", commit),
        ):
            self._event.listen(self._engine, name, listener)
            self._listeners.append((name, listener))

    def disarm(self) -> None:
        while self._listeners:
            name, listener = self._listeners.pop()
            self._event.remove(self._engine, name, listener)


__all__ = ["SQL_WRITE_VERBS", "SqlAlchemyTarget", "is_engine", "sql_is_write", "sql_verb"]
