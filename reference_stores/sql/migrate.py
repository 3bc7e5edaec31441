"""Schema migrations of the SQL session store, from Python and from the command line.

Python::

    from reference_stores.sql.migrate import upgrade, downgrade, drop
    upgrade("postgresql+psycopg://user@host/db")            # create or update the schema
    downgrade("postgresql+psycopg://user@host/db")          # drop every table of the store
    drop("postgresql+psycopg://user@host/db", "asm_")       # ... and the revision table too

Command line (the same, plus ``current``)::

    python -m reference_stores.sql upgrade --url URL [--table-prefix asm_] [--revision head]
    python -m reference_stores.sql downgrade --url URL [--table-prefix asm_] [--revision base]
    python -m reference_stores.sql current --url URL [--table-prefix asm_]
    python -m reference_stores.sql drop --url URL --table-prefix PREFIX   # + the revision table

Alembic's own command line works too, with the ini file shipped in this package::

    alembic -c reference_stores/sql/alembic.ini -x url=URL [-x table_prefix=asm_] upgrade head
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_asm_contract._contract.errors import StoreError, dependency_not_available
from reference_stores.sql import engines
from reference_stores.sql.schema import (
    DEFAULT_PREFIX,
    MYSQL_DIALECTS,
    check_prefix,
    version_table,
)

try:
    import sqlalchemy as sa
except ImportError:  # DEP-1
    sa = None  # type: ignore[assignment]

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0003_artifact_registry"
#: How long ``drop`` waits for a lock before giving up (the cleanup at exit must never hang on a
#: session someone left open on one of its tables).
DROP_LOCK_TIMEOUT_S = 10


def _require(operation: str) -> None:
    if sa is None:
        raise dependency_not_available("sqlalchemy", "sqlalchemy", operation, "sql")
    try:
        import alembic  # noqa: F401
    except ImportError:
        raise dependency_not_available("alembic", "alembic", operation, "sql") from None


def alembic_config(connection: Any = None, table_prefix: str = DEFAULT_PREFIX) -> Any:
    """An Alembic ``Config`` for the store's migrations (no ini file needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["table_prefix"] = check_prefix(table_prefix)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _run(target: Any, table_prefix: str, action: Any, write: bool = True) -> Any:
    """Run ``action(config)`` on a connection to ``target`` (URL, Engine or Connection)."""
    if isinstance(target, sa.Connection):
        return action(alembic_config(target, table_prefix))
    owned = isinstance(target, str)
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool) if owned else target
    try:
        with engine.connect() as connection:
            if write:  # on the store's SQLite engines: one BEGIN IMMEDIATE transaction
                engines.begin_write(connection, engine)
            result = action(alembic_config(connection, table_prefix))
            connection.commit()
            return result
    finally:
        if owned:
            engine.dispose()


def upgrade(target: Any, table_prefix: str = DEFAULT_PREFIX, revision: str = "head") -> None:
    """Create or update the schema under ``table_prefix`` (URL string, Engine or Connection)."""
    _require("upgrade")
    from alembic import command

    _run(target, table_prefix, lambda config: command.upgrade(config, revision))


def downgrade(target: Any, table_prefix: str = DEFAULT_PREFIX, revision: str = "base") -> None:
    """Undo the schema under ``table_prefix``: with ``base`` every table of the store is dropped."""
    _require("downgrade")
    from alembic import command

    _run(target, table_prefix, lambda config: command.downgrade(config, revision))


def current(target: Any, table_prefix: str = DEFAULT_PREFIX) -> str | None:
    """The revision the database is at under ``table_prefix``, or None."""
    _require("current")
    from alembic.runtime.migration import MigrationContext

    def read(config: Any) -> str | None:
        connection = config.attributes["connection"]
        context = MigrationContext.configure(
            connection, opts={"version_table": version_table(table_prefix)}
        )
        rev: str | None = context.get_current_revision()
        return rev

    result: str | None = _run(target, table_prefix, read, write=False)
    return result


def drop(target: Any, table_prefix: str = DEFAULT_PREFIX) -> None:
    """Downgrade to base and drop the revision table too: no table of ``table_prefix`` is left.

    ``target`` is a URL string or an Engine. Each lock is awaited at most
    ``DROP_LOCK_TIMEOUT_S`` seconds.
    """
    _require("drop")
    owned = isinstance(target, str)
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool) if owned else target
    try:
        lock = engines.write_lock(engine) or contextlib.nullcontext()
        with lock, engine.connect() as connection:
            _limit_lock_waits(connection)
            connection.commit()
            engines.begin_write(connection, engine)
            downgrade(connection, table_prefix)
            sa.Table(version_table(table_prefix), sa.MetaData()).drop(connection, checkfirst=True)
            connection.commit()
    finally:
        if owned:
            engine.dispose()


def _limit_lock_waits(connection: sa.Connection) -> None:
    name = connection.dialect.name
    if name == "postgresql":
        connection.exec_driver_sql(f"SET lock_timeout = '{DROP_LOCK_TIMEOUT_S}s'")
    elif name in MYSQL_DIALECTS:
        connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {DROP_LOCK_TIMEOUT_S}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reference_stores.sql",
        description="Create, update or remove the SQL session store's schema (Alembic).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, default, text in (
        ("upgrade", "head", "create or update the schema (default: to head)"),
        ("downgrade", "base", "undo migrations (default: to base, dropping every table)"),
        ("current", None, "print the revision the database is at"),
        ("drop", None, "downgrade to base and drop the revision table too (stale namespaces)"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--url", required=True, help="SQLAlchemy database URL")
        command.add_argument(
            "--table-prefix", default=DEFAULT_PREFIX, help="table name prefix (default asm_)"
        )
        if default is not None:
            command.add_argument("--revision", default=default, help=f"target (default {default})")
    args = parser.parse_args(argv)
    try:
        if args.command == "upgrade":
            upgrade(args.url, args.table_prefix, args.revision)
        elif args.command == "downgrade":
            downgrade(args.url, args.table_prefix, args.revision)
        elif args.command == "drop":
            drop(args.url, args.table_prefix)
            print("dropped")
            return 0
        print(current(args.url, args.table_prefix) or "base")
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0
