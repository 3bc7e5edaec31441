"""The artifact registry port (query-maintenance.md section 5): artifact metadata per session,
kept in the session store's backend.

A registry is a plain object built from the store it serves (``InMemoryArtifactRegistry(store)``),
like the QueryAPI: no thread, cache or connection of its own. Its records live beside the
session's other records, so that ``delete_session`` removes them in the same atomic step
(REG-3). It keeps metadata only; the bytes live in an artifact store (``ArtifactStore``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract._contract.validation import coerce


@runtime_checkable
class ArtifactRegistry(Protocol):
    """Artifact metadata by id and by session (rules REG-1..REG-3)."""

    def register(self, meta: ArtifactMeta) -> ArtifactMeta:
        """Insert, or replace the record with the same id; returns it as stored."""
        ...

    def get(self, artifact_id: str) -> ArtifactMeta:
        """The record with this id; unknown: ``not_found``."""
        ...

    def list_by_session(self, session_id: str) -> list[ArtifactMeta]:
        """The session's records, ordered by (created_at, id)."""
        ...

    def delete(self, artifact_id: str) -> None:
        """Remove the record; an unknown id is not an error."""
        ...


#: The registry's operations, as the port names them.
REGISTRY_OPERATIONS: tuple[str, ...] = ("register", "get", "list_by_session", "delete")


def as_artifact_meta(value: object) -> ArtifactMeta:
    """``value`` as an ``ArtifactMeta`` (a dict is validated), or ``validation_error``."""
    return coerce(ArtifactMeta, value, "artifact metadata")


def artifact_not_found(artifact_id: str) -> StoreError:
    return StoreError(
        ErrorCode.NOT_FOUND, f"no artifact metadata {artifact_id!r}", {"artifact_id": artifact_id}
    )


def registry_order(meta: ArtifactMeta) -> tuple[object, str]:
    """REG-2: the order of ``list_by_session``."""
    return (meta.created_at, meta.id)


__all__ = [
    "REGISTRY_OPERATIONS",
    "ArtifactRegistry",
    "artifact_not_found",
    "as_artifact_meta",
    "registry_order",
]
