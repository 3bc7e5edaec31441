"""MIG-1: the consolidated Alembic revision, its upgrade and downgrade, and migration_required."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract.suite._builders import a_session
from reference_stores.sql import SqlSessionStore
from reference_stores.sql.migrate import HEAD, current, downgrade, upgrade
from reference_stores.sql.schema import COLUMNS, TABLES, tables_for, version_table

ROOT = Path(__file__).resolve().parents[3]


def _table_names(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _store_tables(prefix: str) -> set[str]:
    return {prefix + name for name in TABLES}


def _diff_against_store_tables(url: str, prefix: str) -> list[Any]:
    """What differs between the migrated database and the Table objects the store uses."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    store_tables = _store_tables(prefix)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, parent: (
                        kind != "table" or name in store_tables
                    ),
                },
            )
            diff: list[Any] = compare_metadata(context, tables_for(prefix).metadata)
            return diff
    finally:
        engine.dispose()


@rule("MIG-1")
def test_upgrade_creates_the_schema_the_store_uses(db_url: str, prefix: str) -> None:
    upgrade(db_url, prefix)

    assert _store_tables(prefix) <= _table_names(db_url)
    for name, columns in COLUMNS.items():
        assert set(columns) == _columns(db_url, prefix + name), name
    assert {"deleted_at"} <= _columns(db_url, f"{prefix}sessions")
    assert {"provider", "provider_metadata", "cost_usd"} <= _columns(db_url, f"{prefix}runs")
    assert {"provider", "correlation_id", "schema_version"} <= _columns(db_url, f"{prefix}events")
    assert current(db_url, prefix) == HEAD
    assert _diff_against_store_tables(db_url, prefix) == []


@rule("MIG-1")
def test_events_are_unique_per_session_and_sequence(db_url: str, prefix: str) -> None:
    upgrade(db_url, prefix)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        uniques = sa.inspect(engine).get_unique_constraints(f"{prefix}events")
        indexes = sa.inspect(engine).get_indexes(f"{prefix}events")
    finally:
        engine.dispose()
    unique_sets: list[tuple[str | None, ...]] = [tuple(u["column_names"]) for u in uniques]
    unique_sets += [tuple(i["column_names"]) for i in indexes if i.get("unique")]
    assert ("session_id", "sequence_number") in unique_sets


@rule("MIG-1")
def test_upgrade_is_idempotent_and_downgrade_removes_every_table(db_url: str, prefix: str) -> None:
    upgrade(db_url, prefix)
    upgrade(db_url, prefix)
    with SqlSessionStore(db_url, table_prefix=prefix) as store:
        store.save_session(a_session())

    downgrade(db_url, prefix)

    assert not _store_tables(prefix) & _table_names(db_url)
    assert current(db_url, prefix) is None


def _index_names(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return {str(i["name"]) for i in sa.inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


QUERY_INDEXES = {
    "sessions": {"ix_{p}sessions_updated"},
    "runs": {"ix_{p}runs_started"},
    "events": {"ix_{p}events_order", "ix_{p}events_time", "ix_{p}events_run"},
}


@rule("MIG-1")
def test_v07_to_v08_upgrades_a_populated_schema_and_downgrades_cleanly(
    db_url: str, prefix: str
) -> None:
    """0001 (v0.7) -> 0002 adds the QueryAPI's indexes and 0003 the artifact registry's table
    to a schema holding data; downgrading to 0001 removes both and keeps the data."""
    upgrade(db_url, prefix)
    with SqlSessionStore(db_url, table_prefix=prefix) as store:
        session = a_session()
        store.save_session(session)
    downgrade(db_url, prefix, "0001_asm_schema")  # a v0.7 schema holding data

    def query_indexes() -> set[str]:
        found = set()
        for table, names in QUERY_INDEXES.items():
            wanted = {name.format(p=prefix) for name in names}
            found |= wanted & _index_names(db_url, prefix + table)
        return found

    everything = {n.format(p=prefix) for names in QUERY_INDEXES.values() for n in names}
    assert query_indexes() == set()
    upgrade(db_url, prefix, "0002_query_indexes")
    assert current(db_url, prefix) == "0002_query_indexes"
    assert query_indexes() == everything
    upgrade(db_url, prefix)
    assert _diff_against_store_tables(db_url, prefix) == []

    with SqlSessionStore(db_url, table_prefix=prefix) as store:
        assert store.get_session(session.id) == session  # the data stayed

    downgrade(db_url, prefix, "0001_asm_schema")
    assert current(db_url, prefix) == "0001_asm_schema"
    assert query_indexes() == set()
    assert f"{prefix}artifact_registry" not in _table_names(db_url)
    with pytest.raises(StoreError) as caught:  # the v0.8 store names what v0.7 lacks
        SqlSessionStore(db_url, table_prefix=prefix)
    assert caught.value.details["table"] == f"{prefix}artifact_registry"


@rule("MIG-1")
def test_command_line_upgrade_and_downgrade(db_url: str, prefix: str) -> None:
    def cli(*args: str) -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "reference_stores.sql",
                *args,
                "--url",
                db_url,
                "--table-prefix",
                prefix,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert cli("upgrade") == HEAD
    assert _store_tables(prefix) <= _table_names(db_url)
    assert cli("current") == HEAD
    assert cli("downgrade") == "base"
    assert not _store_tables(prefix) & _table_names(db_url)
    assert version_table(prefix) in _table_names(db_url)  # Alembic keeps its revision table
    cli("upgrade")
    assert cli("drop") == "dropped"
    assert not {t for t in _table_names(db_url) if t.startswith(prefix)}


@rule("MIG-1")
def test_alembic_command_line_with_the_shipped_ini(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alembic.db'}"
    alembic = Path(sys.executable).with_name("alembic")
    ini = ROOT / "reference_stores" / "sql" / "alembic.ini"
    for command in (["upgrade", "head"], ["downgrade", "base"]):
        done = subprocess.run(
            [str(alembic), "-c", str(ini), "-x", f"url={url}", "-x", "table_prefix=cli_", *command],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        if command[0] == "upgrade":
            assert _store_tables("cli_") <= _table_names(url)
    assert _table_names(url) == {version_table("cli_")}


@rule("MIG-1")
def test_store_on_a_database_without_the_schema_names_the_missing_table(
    db_url: str, prefix: str
) -> None:
    with pytest.raises(StoreError) as caught:
        SqlSessionStore(db_url, table_prefix=prefix)

    error = caught.value
    assert error.code is ErrorCode.MIGRATION_REQUIRED
    assert error.details["table"] == f"{prefix}sessions"
    assert f"{prefix}sessions" in error.message
    assert "python -m reference_stores.sql upgrade" in error.message
    assert not _store_tables(prefix) & _table_names(db_url), "opening created tables"


@rule("MIG-1")
@pytest.mark.parametrize(
    ("table", "column"),
    [("events", "correlation_id"), ("runs", "cost_usd"), ("sessions", "deleted_at")],
)
def test_store_on_an_old_schema_names_the_missing_column(
    db_url: str, prefix: str, table: str, column: str
) -> None:
    upgrade(db_url, prefix)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"ALTER TABLE {prefix}{table} DROP COLUMN {column}")
    finally:
        engine.dispose()

    with pytest.raises(StoreError) as caught:
        SqlSessionStore(db_url, table_prefix=prefix)

    error = caught.value
    assert error.code is ErrorCode.MIGRATION_REQUIRED
    assert (error.details["table"], error.details["column"]) == (f"{prefix}{table}", column)
    assert repr(column) in error.message and repr(f"{prefix}{table}") in error.message


@rule("MIG-1")
def test_a_table_dropped_under_a_running_store_reports_migration_required(
    db_url: str, prefix: str
) -> None:
    upgrade(db_url, prefix)
    with SqlSessionStore(db_url, table_prefix=prefix) as store:
        engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"DROP TABLE {prefix}events")
        finally:
            engine.dispose()
        with pytest.raises(StoreError) as caught:
            store.get_events("ses-1")
    assert caught.value.code is ErrorCode.MIGRATION_REQUIRED


@rule("MIG-1")
def test_create_schema_runs_the_migration(db_url: str, prefix: str) -> None:
    with SqlSessionStore(db_url, table_prefix=prefix, create_schema="true") as store:
        session = a_session()
        store.save_session(session)
        assert store.get_session(session.id) == session
    assert current(db_url, prefix) == HEAD


def test_the_embedded_default_creates_its_schema_and_removes_its_file() -> None:
    store = SqlSessionStore()
    path = Path(store.engine.url.database or "")
    assert path.exists()
    assert current(store.engine, store.table_prefix) == HEAD
    store.close()
    assert not path.parent.exists()


def test_a_sqlite_file_given_by_url_is_not_migrated_silently(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mine.db'}"
    with pytest.raises(StoreError) as caught:
        SqlSessionStore(url)
    assert caught.value.code is ErrorCode.MIGRATION_REQUIRED
    assert _table_names(url) == set()
