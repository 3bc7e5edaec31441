"""The artifact registry's table: artifact metadata per session (query-maintenance.md
section 5). ``delete_session`` deletes a session's rows with the rest of it; rows of sessions that
do not exist are allowed (no foreign key), which is what orphan cleaning removes.

Revision ID: 0003_artifact_registry
Revises: 0002_query_indexes
Create Date: 2026-12-05 00:00:01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0003_artifact_registry"
down_revision = "0002_query_indexes"
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
    return (
        sa.String(255)
        .with_variant(sa.String(255, collation="C"), "postgresql")
        .with_variant(mysql.VARBINARY(1020), *MYSQL)
    )


def _text() -> sa.types.TypeEngine[Any]:
    return sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL)


def upgrade() -> None:
    table = _p("artifact_registry")
    op.create_table(
        table,
        sa.Column("id", _id(), primary_key=True),
        sa.Column("session_id", _id(), nullable=False),
        sa.Column("run_id", _id(), nullable=True),
        sa.Column("key", _text(), nullable=False),
        sa.Column("content_type", _text(), nullable=True),
        sa.Column("byte_size", sa.BigInteger(), nullable=True),
        sa.Column("checksum_sha256", _text(), nullable=True),
        sa.Column("storage_backend", _text(), nullable=True),
        sa.Column("storage_ref", _text(), nullable=True),
        sa.Column("metadata", _text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
        **TABLE_OPTIONS,
    )
    op.create_index(f"ix_{table}_session", table, ["session_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_table(_p("artifact_registry"))
