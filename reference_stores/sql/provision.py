"""Databases a store makes for itself: temporary SQLite files and isolated namespaces.

Both hold the schema the migration creates, so this module sits above ``engines`` and ``migrate``
(which itself needs ``engines``): nothing below imports it back.

* Temporary SQLite files (the embedded default): a copy of a template file that the migration
  built once per process and table prefix, in a directory of its own, removed when its store
  closes.
* Isolated namespaces: a fresh table prefix with the schema created by the Alembic revision,
  emptied when its store closes and then reused by the next isolated store of the process (DDL
  costs ~30 ms on a server, a cleanup ~4 ms); every namespace a process created is dropped when the
  process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from reference_stores.sql import engines, migrate
from reference_stores.sql.schema import TABLES, tables_for

try:
    import sqlalchemy as sa
except ImportError:  # DEP-1
    sa = None  # type: ignore[assignment]

_lock = threading.RLock()
_templates: dict[str, Path] = {}
_temp_dirs: set[str] = set()
#: engine key -> free isolated prefixes (empty tables, ready for reuse)
_free_namespaces: dict[str, list[str]] = {}
#: engine key -> (engine, every isolated prefix this process created there)
_created_namespaces: dict[str, tuple[sa.Engine, set[str]]] = {}


# -- temporary SQLite files (the embedded default) ---------------------------------------------
def _sqlite_template(table_prefix: str) -> Path:
    """A database file holding the empty schema, built once per process with the migration."""
    with _lock:
        path = _templates.get(table_prefix)
        if path is not None and path.exists():
            return path
        directory = tempfile.mkdtemp(prefix="asm-sqlite-template-")
        _temp_dirs.add(directory)
        path = Path(directory) / "template.db"
        engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            migrate.upgrade(engine, table_prefix)
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()
        _templates[table_prefix] = path
        return path


def new_temporary_sqlite(table_prefix: str) -> Path:
    """A fresh SQLite file with the schema, in a directory of its own (remove it when done)."""
    template = _sqlite_template(table_prefix)
    directory = tempfile.mkdtemp(prefix="asm-sqlite-")
    with _lock:
        _temp_dirs.add(directory)
    path = Path(directory) / "store.db"
    shutil.copyfile(template, path)
    return path


def remove_temporary_sqlite(path: Path) -> None:
    directory = str(path.parent)
    with _lock:
        _temp_dirs.discard(directory)
    engines.forget_write_lock(path)
    shutil.rmtree(directory, ignore_errors=True)


# -- isolated namespaces on a shared database ---------------------------------------------------
def acquire_namespace(engine: sa.Engine, base_prefix: str) -> str:
    """A table prefix holding an empty schema that no other store of any process uses."""
    key = engines.url_key(engine.url)
    with _lock:
        free = _free_namespaces.setdefault(key, [])
        for index, prefix in enumerate(free):
            if prefix.startswith(base_prefix):
                return free.pop(index)
    prefix = f"{base_prefix}i{uuid.uuid4().hex[:12]}_"
    with _lock:
        _created_namespaces.setdefault(key, (engine, set()))[1].add(prefix)
    migrate.upgrade(engine, prefix)
    return prefix


def release_namespace(engine: sa.Engine, prefix: str) -> None:
    """Empty the namespace's tables in one transaction and keep it for the next isolated store."""
    tables = tables_for(prefix)
    lock = engines.write_lock(engine) or contextlib.nullcontext()
    with lock, engine.begin() as connection:
        engines.begin_write(connection, engine)
        for name in reversed(TABLES):
            connection.execute(getattr(tables, name).delete())
    with _lock:
        _free_namespaces.setdefault(engines.url_key(engine.url), []).append(prefix)


def drop_namespace(engine: sa.Engine, prefix: str) -> None:
    """Drop every table of an isolated namespace, its revision table included."""
    migrate.drop(engine, prefix)
    with _lock:
        key = engines.url_key(engine.url)
        _created_namespaces.get(key, (engine, set()))[1].discard(prefix)
        with contextlib.suppress(ValueError):
            _free_namespaces.get(key, []).remove(prefix)


def _forget_namespaces_after_fork() -> None:
    # The parent owns its namespaces: a forked child neither reuses nor drops them.
    _free_namespaces.clear()
    _created_namespaces.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_namespaces_after_fork)


@atexit.register
def _cleanup_at_exit() -> None:
    with _lock:
        created = [(engine, set(prefixes)) for engine, prefixes in _created_namespaces.values()]
        directories = set(_temp_dirs)
    for engine, prefixes in created:
        for prefix in prefixes:
            with contextlib.suppress(Exception):  # never mask the real outcome
                # an async store's engine needs its loop, gone by now: use the sync driver
                drop_namespace(engines.sync_counterpart(engine), prefix)
    engines.dispose_all()  # close the temporary files' connections before removing them
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
