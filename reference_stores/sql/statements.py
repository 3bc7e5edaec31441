"""The SQL store's write statements, built once per table set and dialect.

Statements that run hundreds of times a second go straight to the driver with positional
parameters (``for_driver``): SQLAlchemy then skips the compiled-cache lookup and the per-row
parameter processing. Engine events, and so the kit's fault hook, still see every statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from reference_stores.sql import codec
from reference_stores.sql.schema import MYSQL_DIALECTS, Tables

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql, postgresql, sqlite
except ImportError:  # DEP-1: only a store that is built needs SQLAlchemy
    pass


class Statements:
    """The write statements of one table set and dialect, built once."""

    def __init__(self, tables: Tables, dialect: str, engine_dialect: sa.Dialect) -> None:
        self.insert_event = sa.insert(tables.events)
        #: The INSERT with positional parameters in ``codec.EVENT_COLUMNS`` order, or None.
        self.insert_event_sql: str | None = None
        self.select_events_sql = str(sa.select(tables.events).compile(dialect=engine_dialect))
        if dialect not in MYSQL_DIALECTS:
            insert = for_driver(self.insert_event, engine_dialect, codec.EVENT_COLUMNS)
            if insert is not None and insert[1] == codec.EVENT_COLUMNS:
                self.insert_event_sql = insert[0]
        self.upsert_session = upsert(tables.sessions, dialect)
        self.upsert_run = upsert(tables.runs, dialect)
        counters = tables.sequences
        if dialect in MYSQL_DIALECTS:
            bump = mysql.insert(counters)
            self.bump_counter = Prepared(
                bump.on_duplicate_key_update(
                    last_sequence=counters.c.last_sequence + bump.inserted.last_sequence
                ),
                engine_dialect,
            )
            self.read_counter_for_update = (
                sa.select(counters.c.last_sequence)
                .where(counters.c.session_id == sa.bindparam("session_id"))
                .with_for_update()
            )
        else:
            module: Any = postgresql if dialect == "postgresql" else sqlite
            bump = module.insert(counters)
            self.bump_counter = Prepared(
                bump.on_conflict_do_update(
                    index_elements=[counters.c.session_id],
                    set_={"last_sequence": counters.c.last_sequence + bump.excluded.last_sequence},
                ).returning(counters.c.last_sequence),
                engine_dialect,
            )
        if dialect == "postgresql":
            events = tables.events
            self.events_by_ids = sa.select(events).where(
                events.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text())))
            )
            # The empty payload inline, not as a bound value, so that _for_driver takes it.
            empty: sa.ColumnClause[str] = sa.literal_column("''")
            notify = sa.select(sa.func.pg_notify(sa.bindparam("channel"), empty)).subquery()
            values = sa.select(
                sa.bindparam("session_id", type_=counters.c.session_id.type),
                sa.bindparam("last_sequence", type_=sa.BigInteger()),
            ).select_from(notify)
            notifying = postgresql.insert(counters).from_select(
                ["session_id", "last_sequence"], values
            )
            self.bump_counter_notify = Prepared(
                notifying.on_conflict_do_update(
                    index_elements=[counters.c.session_id],
                    set_={
                        "last_sequence": counters.c.last_sequence + notifying.excluded.last_sequence
                    },
                ).returning(counters.c.last_sequence),
                engine_dialect,
            )


def for_driver(
    statement: Any, dialect: sa.Dialect, column_keys: Sequence[str] | None = None
) -> tuple[str, tuple[str, ...]] | None:
    """``statement`` compiled once to the driver's SQL with positional parameters, and the
    names of those parameters in order; None if a parameter needs a bind conversion or has a
    value of its own (a literal the caller would not pass).

    Statements run hundreds of times a second go to the driver this way
    (``exec_driver_sql``): SQLAlchemy then skips the compiled-cache lookup and the per-row
    parameter processing, a third of a batch's Python time. Engine events (the fault hook)
    still see every statement.
    """
    compiled = statement.compile(
        dialect=dialect, column_keys=None if column_keys is None else list(column_keys)
    )
    if compiled._bind_processors or any(not bind.required for bind in compiled.binds.values()):
        return None
    sql = compiled.string
    if compiled.positional:
        order = tuple(compiled.positiontup or ())
    else:  # pyformat (psycopg): %(name)s becomes %s, in the same order
        order = tuple(re.findall(r"%\((\w+)\)s", sql))
        sql = re.sub(r"%\((\w+)\)s", "%s", sql)
    return sql, order


class Prepared:
    """A statement run often with one set of named parameters: straight to the driver when it
    compiles to plain positional SQL (``_for_driver``), through ``execute`` otherwise."""

    def __init__(self, statement: Any, dialect: sa.Dialect) -> None:
        self.statement = statement
        self._direct = None if dialect.name in MYSQL_DIALECTS else for_driver(statement, dialect)

    def run(self, connection: sa.Connection, params: Mapping[str, Any]) -> sa.CursorResult[Any]:
        if self._direct is None:
            return connection.execute(self.statement, params)
        sql, order = self._direct
        return connection.exec_driver_sql(sql, tuple(params[name] for name in order))


def upsert(table: sa.Table, dialect: str) -> Any:
    """INSERT that replaces the whole row when the primary key exists (SES-1, RUN-1)."""
    columns = [c.name for c in table.columns if not c.primary_key]
    if dialect in MYSQL_DIALECTS:
        statement = mysql.insert(table)
        return statement.on_duplicate_key_update({c: statement.inserted[c] for c in columns})
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[c for c in table.primary_key.columns],
        set_={c: statement.excluded[c] for c in columns},
    )


__all__ = ["Prepared", "Statements", "for_driver", "upsert"]
