"""Alembic environment of the SQL session store.

Runs against ``config.attributes["connection"]`` when a caller passes one
(``reference_stores.sql.migrate``), otherwise against the URL given as ``-x url=...`` or as
``sqlalchemy.url`` in the ini file. The table prefix comes from ``config.attributes`` or
``-x table_prefix=...`` (default ``asm_``); the revision table is ``<prefix>alembic_version``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config
x_args = context.get_x_argument(as_dictionary=True)
prefix = config.attributes.get("table_prefix") or x_args.get("table_prefix") or "asm_"
config.attributes["table_prefix"] = prefix
version_table = f"{prefix}alembic_version"


def run_offline() -> None:
    url = x_args.get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url, version_table=version_table, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: sa.Connection) -> None:
    context.configure(connection=connection, version_table=version_table)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif config.attributes.get("connection") is not None:
    run_online(config.attributes["connection"])
else:
    url = x_args.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set sqlalchemy.url")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            run_online(connection)
            connection.commit()
    finally:
        engine.dispose()
