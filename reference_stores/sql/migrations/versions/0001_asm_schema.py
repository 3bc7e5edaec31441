"""The session store's schema: sessions, runs, events, sequence counters, artifact metadata.

One consolidated revision. Table names carry the prefix set by the caller
(``config.attributes["table_prefix"]`` or ``-x table_prefix=...``; default ``asm_``).

Revision ID: 0001_asm_schema
Revises:
Create Date: 2026-01-01 00:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0001_asm_schema"
down_revision = None
branch_labels = None
depends_on = None

MYSQL = ("mysql", "mariadb")
TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _p(name: str) -> str:
    return str(context.config.attributes.get("table_prefix", "asm_")) + name


def _id() -> sa.types.TypeEngine[Any]:
    """An id compared byte for byte (MySQL's utf8mb4_bin ignores trailing spaces: VARBINARY)."""
    return (
        sa.String(255)
        .with_variant(sa.String(255, collation="C"), "postgresql")
        .with_variant(mysql.VARBINARY(1020), *MYSQL)
    )


def _text() -> sa.types.TypeEngine[Any]:
    return sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL)


def upgrade() -> None:
    op.create_table(
        _p("sessions"),
        sa.Column("id", _id(), primary_key=True),
        sa.Column("agent_id", _id(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parent_session_id", _id(), nullable=True),
        sa.Column("metadata", _text(), nullable=False),
        sa.Column("context", _text(), nullable=False),
        sa.Column("tags", _text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
        **TABLE_OPTIONS,
    )
    op.create_index(f"ix_{_p('sessions')}_created", _p("sessions"), ["created_at", "id"])
    op.create_index(f"ix_{_p('sessions')}_agent", _p("sessions"), ["agent_id", "created_at"])
    op.create_table(
        _p("runs"),
        sa.Column("id", _id(), primary_key=True),
        sa.Column("session_id", _id(), nullable=False),
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
        **TABLE_OPTIONS,
    )
    op.create_index(f"ix_{_p('runs')}_session", _p("runs"), ["session_id", "started_at", "id"])
    op.create_table(
        _p("events"),
        sa.Column("id", _id(), primary_key=True),
        sa.Column("session_id", _id(), nullable=False),
        sa.Column("sequence_number", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("run_id", _id(), nullable=True),
        sa.Column("data", _text(), nullable=False),
        sa.Column("metadata", _text(), nullable=False),
        sa.Column("schema_version", sa.BigInteger(), nullable=False),
        sa.Column("provider", _text(), nullable=True),
        sa.Column("correlation_id", _text(), nullable=True),
        sa.UniqueConstraint(
            "session_id", "sequence_number", name=f"uq_{_p('events')}_session_sequence"
        ),
        **TABLE_OPTIONS,
    )
    op.create_table(
        _p("sequences"),
        sa.Column("session_id", _id(), primary_key=True),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        _p("artifacts"),
        sa.Column("key_digest", sa.String(64), primary_key=True),
        sa.Column("key", _text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("location", _text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        **TABLE_OPTIONS,
    )


def downgrade() -> None:
    for name in ("artifacts", "sequences", "events", "runs", "sessions"):
        op.drop_table(_p(name))
