"""A session store for the Agent Session Manager persistence port on stdlib ``sqlite3``."""

from asm_sqlite_store.store import SqliteSessionStore

__all__ = ["SqliteSessionStore"]
