"""The SQL reference store: SQLAlchemy 2 Core on SQLite (default), PostgreSQL and MariaDB/MySQL.

    from reference_stores.sql import SqlMaintenance, SqlQueryAPI, SqlSessionStore
    store = SqlSessionStore()                                   # temporary SQLite file
    store = SqlSessionStore("postgresql+psycopg://user@host/db") # schema must be migrated
    queries = SqlQueryAPI(store)                                # QueryAPI on the same database
    maintenance = SqlMaintenance(store)                         # retention, pruning, checks

    from reference_stores.sql import AsyncSqlSessionStore      # async def, on aiosqlite/asyncpg
    store = AsyncSqlSessionStore()                              # temporary SQLite file

Importing this package never needs SQLAlchemy (contract DEP-1); building a store without it
raises ``dependency_not_available`` naming the ``sql`` extra. The store module is loaded on first
access, so ``python -m reference_stores.sql`` (the migration command) starts quickly. See
docs/reference-stores.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reference_stores.sql.async_store import AsyncSqlSessionStore
    from reference_stores.sql.maintenance import SqlMaintenance
    from reference_stores.sql.query import SqlQueryAPI
    from reference_stores.sql.registry import SqlArtifactRegistry
    from reference_stores.sql.store import SqlSessionStore

__all__ = [
    "AsyncSqlSessionStore",
    "SqlArtifactRegistry",
    "SqlMaintenance",
    "SqlQueryAPI",
    "SqlSessionStore",
]
_MODULES = {
    "AsyncSqlSessionStore": "async_store",
    "SqlSessionStore": "store",
    "SqlQueryAPI": "query",
    "SqlArtifactRegistry": "registry",
    "SqlMaintenance": "maintenance",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"reference_stores.sql.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
