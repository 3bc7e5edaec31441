"""The tables of the SQL session store, as SQLAlchemy Core objects.

Alembic owns the schema (``migrations/versions/`` create exactly these tables and indexes;
``tests/stores/sql/test_migrations.py`` compares the two on every backend). The store only reads and
writes through these objects.

Storage choices, all for exact round trips on every backend (contract DATA-1, DATA-3):

* ids are ``VARCHAR(255)`` compared byte for byte: ``COLLATE "C"`` on PostgreSQL, SQLite's
  default ``BINARY`` collation, and ``VARBINARY(1020)`` (UTF-8 bytes) on MariaDB/MySQL, whose
  ``utf8mb4_bin`` collation ignores trailing spaces (``'a' = 'a '``);
* timestamps are ``BIGINT`` microseconds since 1970-01-01 UTC: the whole range of Python
  datetimes, no time zone conversions, no precision loss (MariaDB ``DATETIME`` stops at year 1000);
* JSON fields are text written by ``json.dumps(ensure_ascii=True)``: 64-bit integers, float
  ``repr``\\ s, key order and every string (NUL and lone surrogates included, as escapes) come back
  exactly; a native ``jsonb`` column would rewrite ``1e300`` as an integer and drop ``-0.0``;
* ``runs.cost_usd`` is the float's ``repr`` as text (``CAST`` it for arithmetic): SQLite and
  MariaDB store a ``-0.0`` double as ``0.0``.

Every module of this package imports without SQLAlchemy installed (contract DEP-1); building a
store then raises ``dependency_not_available``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql
except ImportError:  # DEP-1: importable without the `sql` extra
    sa = None  # type: ignore[assignment]
    mysql = None  # type: ignore[assignment]

#: Ids are at most 255 characters; in UTF-8 that is at most 1020 bytes.
ID_LENGTH = 255
ID_BYTES = 4 * ID_LENGTH
DEFAULT_PREFIX = "asm_"
#: Table names are ``<prefix><table>``; index names add a few characters, and MySQL allows 64.
PREFIX_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,29}")
TABLES = ("sessions", "runs", "events", "sequences", "artifacts", "artifact_registry")
MYSQL_DIALECTS = ("mysql", "mariadb")
MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

#: Column names per table: what MIG-1 checks before a store uses a database.
COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": (
        "id",
        "agent_id",
        "status",
        "parent_session_id",
        "metadata",
        "context",
        "tags",
        "created_at",
        "updated_at",
        "deleted_at",
    ),
    "runs": (
        "id",
        "session_id",
        "status",
        "input",
        "output",
        "error",
        "metadata",
        "turn_count",
        "token_usage",
        "cost_usd",
        "started_at",
        "ended_at",
        "provider",
        "provider_metadata",
    ),
    "events": (
        "id",
        "session_id",
        "sequence_number",
        "type",
        "timestamp",
        "run_id",
        "data",
        "metadata",
        "schema_version",
        "provider",
        "correlation_id",
    ),
    "sequences": ("session_id", "last_sequence"),
    "artifacts": (
        "key_digest",
        "key",
        "size",
        "sha256",
        "content_type",
        "location",
        "created_at",
        "updated_at",
    ),
    "artifact_registry": (
        "id",
        "session_id",
        "run_id",
        "key",
        "content_type",
        "byte_size",
        "checksum_sha256",
        "storage_backend",
        "storage_ref",
        "metadata",
        "created_at",
        "deleted_at",
    ),
}


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(
            f"table_prefix must match {PREFIX_PATTERN.pattern} (letters, digits, '_'; at most "
            f"30 characters), got {prefix!r}"
        )
    return prefix


if sa is not None:

    class Identifier(sa.types.TypeDecorator[str]):
        """An id: VARCHAR(255) compared byte for byte (VARBINARY holding UTF-8 on MySQL)."""

        impl = sa.String(ID_LENGTH)
        cache_ok = True

        def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
            if dialect.name in MYSQL_DIALECTS:
                return dialect.type_descriptor(mysql.VARBINARY(ID_BYTES))
            if dialect.name == "postgresql":
                return dialect.type_descriptor(sa.String(ID_LENGTH, collation="C"))
            return dialect.type_descriptor(sa.String(ID_LENGTH))

        def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> Any:
            if value is not None and dialect.name in MYSQL_DIALECTS:
                return value.encode("utf-8")
            return value

        def process_result_value(self, value: Any, dialect: sa.Dialect) -> str | None:
            if isinstance(value, bytes | bytearray | memoryview):
                return bytes(value).decode("utf-8")
            return value  # type: ignore[no-any-return]

        def bind_processor(self, dialect: sa.Dialect) -> Any:
            # Only MySQL needs a conversion; elsewhere skip a Python call per id and row.
            if dialect.name in MYSQL_DIALECTS:
                return super().bind_processor(dialect)
            return None

        def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
            if dialect.name in MYSQL_DIALECTS:
                return super().result_processor(dialect, coltype)
            return None


def _text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL_DIALECTS)


@dataclasses.dataclass(frozen=True)
class Tables:
    """The store's five tables, named ``<prefix><table>``."""

    prefix: str
    metadata: sa.MetaData
    sessions: sa.Table
    runs: sa.Table
    events: sa.Table
    sequences: sa.Table
    artifacts: sa.Table
    artifact_registry: sa.Table

    def names(self) -> dict[str, str]:
        """Logical table name -> real table name."""
        return {name: self.prefix + name for name in TABLES}

    @property
    def version_table(self) -> str:
        """Alembic's revision table for this prefix."""
        return version_table(self.prefix)


def version_table(prefix: str) -> str:
    return f"{prefix}alembic_version"


def build_tables(prefix: str = DEFAULT_PREFIX) -> Tables:
    """The store's tables under ``prefix``, in a MetaData of their own."""
    check_prefix(prefix)
    md = sa.MetaData()
    p = prefix
    sessions = sa.Table(
        f"{p}sessions",
        md,
        sa.Column("id", Identifier(), primary_key=True),
        sa.Column("agent_id", Identifier(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parent_session_id", Identifier(), nullable=True),
        sa.Column("metadata", _text(), nullable=False),
        sa.Column("context", _text(), nullable=False),
        sa.Column("tags", _text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
        sa.Index(f"ix_{p}sessions_created", "created_at", "id"),
        sa.Index(f"ix_{p}sessions_agent", "agent_id", "created_at"),
        sa.Index(f"ix_{p}sessions_updated", "updated_at", "id"),
        **MYSQL_TABLE_OPTIONS,
    )
    runs = sa.Table(
        f"{p}runs",
        md,
        sa.Column("id", Identifier(), primary_key=True),
        sa.Column("session_id", Identifier(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", _text(), nullable=True),
        sa.Column("output", _text(), nullable=True),
        sa.Column("error", _text(), nullable=True),
        sa.Column("metadata", _text(), nullable=False),
        sa.Column("turn_count", sa.BigInteger(), nullable=False),
        sa.Column("token_usage", _text(), nullable=False),
        sa.Column("cost_usd", sa.String(32), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("provider", _text(), nullable=True),
        sa.Column("provider_metadata", _text(), nullable=False),
        sa.Index(f"ix_{p}runs_session", "session_id", "started_at", "id"),
        sa.Index(f"ix_{p}runs_started", "started_at", "id"),
        **MYSQL_TABLE_OPTIONS,
    )
    events = sa.Table(
        f"{p}events",
        md,
        sa.Column("id", Identifier(), primary_key=True),
        sa.Column("session_id", Identifier(), nullable=False),
        sa.Column("sequence_number", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("run_id", Identifier(), nullable=True),
        sa.Column("data", _text(), nullable=False),
        sa.Column("metadata", _text(), nullable=False),
        sa.Column("schema_version", sa.BigInteger(), nullable=False),
        sa.Column("provider", _text(), nullable=True),
        sa.Column("correlation_id", _text(), nullable=True),
        sa.UniqueConstraint("session_id", "sequence_number", name=f"uq_{p}events_session_sequence"),
        sa.Index(f"ix_{p}events_order", "sequence_number", "id"),
        sa.Index(f"ix_{p}events_time", "timestamp", "id"),
        sa.Index(f"ix_{p}events_run", "run_id"),
        **MYSQL_TABLE_OPTIONS,
    )
    sequences = sa.Table(
        f"{p}sequences",
        md,
        sa.Column("session_id", Identifier(), primary_key=True),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        **MYSQL_TABLE_OPTIONS,
    )
    artifacts = sa.Table(
        f"{p}artifacts",
        md,
        sa.Column("key_digest", sa.String(64), primary_key=True),
        sa.Column("key", _text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("location", _text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        **MYSQL_TABLE_OPTIONS,
    )
    artifact_registry = sa.Table(
        f"{p}artifact_registry",
        md,
        sa.Column("id", Identifier(), primary_key=True),
        sa.Column("session_id", Identifier(), nullable=False),
        sa.Column("run_id", Identifier(), nullable=True),
        sa.Column("key", _text(), nullable=False),
        sa.Column("content_type", _text(), nullable=True),
        sa.Column("byte_size", sa.BigInteger(), nullable=True),
        sa.Column("checksum_sha256", _text(), nullable=True),
        sa.Column("storage_backend", _text(), nullable=True),
        sa.Column("storage_ref", _text(), nullable=True),
        sa.Column("metadata", _text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
        sa.Index(f"ix_{p}artifact_registry_session", "session_id", "created_at", "id"),
        **MYSQL_TABLE_OPTIONS,
    )
    return Tables(prefix, md, sessions, runs, events, sequences, artifacts, artifact_registry)


@functools.lru_cache(maxsize=256)
def tables_for(prefix: str) -> Tables:
    """``build_tables(prefix)``, built once: the same Table objects let SQLAlchemy reuse its
    compiled statements across store instances."""
    return build_tables(prefix)
