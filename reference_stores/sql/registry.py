"""``SqlArtifactRegistry``: the artifact registry in the SQL store's database (REG-1..REG-3).

A plain object bound to a ``SqlSessionStore``: its rows live in ``<prefix>artifact_registry``
(migration ``0003_artifact_registry``), written through the store's own plumbing (retries, error
mapping), and ``SqlSessionStore.delete_session`` deletes a session's rows in its transaction.
"""

from __future__ import annotations

from pytest_asm_contract._contract.errors import validation_error
from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract._contract.registry import artifact_not_found, as_artifact_meta
from pytest_asm_contract._contract.validation import check_id
from reference_stores.sql import codec
from reference_stores.sql.statements import upsert
from reference_stores.sql.store import SqlSessionStore

try:
    import sqlalchemy as sa
except ImportError:  # DEP-1: building a store without SQLAlchemy already failed
    sa = None  # type: ignore[assignment]


class SqlArtifactRegistry:
    """Artifact metadata in one ``SqlSessionStore``'s database."""

    def __init__(self, store: SqlSessionStore) -> None:
        if not isinstance(store, SqlSessionStore):
            raise validation_error(
                f"SqlArtifactRegistry serves a SqlSessionStore, got {type(store).__name__}",
                field="store",
            )
        self._store = store
        self._table = store._t.artifact_registry
        self._upsert = upsert(self._table, store._dialect)

    def __repr__(self) -> str:
        return f"SqlArtifactRegistry({self._store!r})"

    def register(self, meta: ArtifactMeta) -> ArtifactMeta:
        checked = as_artifact_meta(meta)
        self._store._limits.check_artifact_meta(checked)
        row = codec.artifact_meta_row(checked)
        self._store._write("register", lambda c: c.execute(self._upsert, row))
        return checked.model_copy(deep=True)

    def get(self, artifact_id: str) -> ArtifactMeta:
        checked = check_id(artifact_id, "artifact_id")
        row = None
        if self._store._limits.storable(checked):
            query = sa.select(self._table).where(self._table.c.id == checked)
            row = self._store._read("get", lambda c: c.execute(query).mappings().first())
        if row is None:
            raise artifact_not_found(checked)
        return codec.artifact_meta_from_row(row)

    def list_by_session(self, session_id: str) -> list[ArtifactMeta]:
        checked = check_id(session_id, "session_id")
        if not self._store._limits.storable(checked):
            return []
        t = self._table
        query = sa.select(t).where(t.c.session_id == checked).order_by(t.c.created_at, t.c.id)
        rows = self._store._read("list_by_session", lambda c: c.execute(query).mappings().all())
        return [codec.artifact_meta_from_row(row) for row in rows]

    def delete(self, artifact_id: str) -> None:
        checked = check_id(artifact_id, "artifact_id")
        if not self._store._limits.storable(checked):
            return
        statement = self._table.delete().where(self._table.c.id == checked)
        self._store._write("delete", lambda c: c.execute(statement))


__all__ = ["SqlArtifactRegistry"]
