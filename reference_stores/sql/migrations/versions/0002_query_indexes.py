"""Indexes for the QueryAPI's keyset pages (query-maintenance.md section 6).

Each order the QueryAPI pages by is an index ending in ``id``, the tie-breaker, so that a page
far down a search starts where the cursor points instead of counting rows: sessions by
``updated_at``, runs by ``started_at``, events by ``sequence_number`` and by ``timestamp``
(``created_at`` of sessions has its index since 0001). Events of one run are found by ``run_id``.

Revision ID: 0002_query_indexes
Revises: 0001_asm_schema
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

from alembic import context, op

revision = "0002_query_indexes"
down_revision = "0001_asm_schema"
branch_labels = None
depends_on = None

#: table -> (index suffix, columns)
INDEXES: dict[str, tuple[tuple[str, list[str]], ...]] = {
    "sessions": (("updated", ["updated_at", "id"]),),
    "runs": (("started", ["started_at", "id"]),),
    "events": (
        ("order", ["sequence_number", "id"]),
        ("time", ["timestamp", "id"]),
        ("run", ["run_id"]),
    ),
}


def _p(name: str) -> str:
    return str(context.config.attributes.get("table_prefix", "asm_")) + name


def upgrade() -> None:
    for table, indexes in INDEXES.items():
        for suffix, columns in indexes:
            op.create_index(f"ix_{_p(table)}_{suffix}", _p(table), columns)


def downgrade() -> None:
    for table, indexes in INDEXES.items():
        for suffix, _ in indexes:
            op.drop_index(f"ix_{_p(table)}_{suffix}", table_name=_p(table))
