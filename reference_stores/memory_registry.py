"""The artifact registry over an in-memory session store: a plain object that keeps its records
in the store's own dict, under the store's lock, so that ``delete_session`` removes a session's
artifact metadata in the same step as the rest of it (REG-3)."""

from __future__ import annotations

import threading
from typing import Protocol

from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract._contract.registry import (
    artifact_not_found,
    as_artifact_meta,
    registry_order,
)
from pytest_asm_contract._contract.validation import check_id


class _MemoryBackend(Protocol):
    """What the registry uses of ``InMemorySessionStore`` (named by shape, as the QueryAPI
    does)."""

    _lock: threading.RLock
    _artifact_meta: dict[str, ArtifactMeta]


class InMemoryArtifactRegistry:
    """Artifact metadata in one ``InMemorySessionStore`` (rules REG-1..REG-3)."""

    def __init__(self, store: _MemoryBackend) -> None:
        self._store = store

    def register(self, meta: ArtifactMeta) -> ArtifactMeta:
        checked = as_artifact_meta(meta)
        with self._store._lock:
            self._store._artifact_meta[checked.id] = checked
        return checked.model_copy(deep=True)

    def get(self, artifact_id: str) -> ArtifactMeta:
        checked = check_id(artifact_id, "artifact_id")
        with self._store._lock:
            meta = self._store._artifact_meta.get(checked)
        if meta is None:
            raise artifact_not_found(checked)
        return meta.model_copy(deep=True)

    def list_by_session(self, session_id: str) -> list[ArtifactMeta]:
        checked = check_id(session_id, "session_id")
        with self._store._lock:
            found = [m for m in self._store._artifact_meta.values() if m.session_id == checked]
        return [m.model_copy(deep=True) for m in sorted(found, key=registry_order)]

    def delete(self, artifact_id: str) -> None:
        checked = check_id(artifact_id, "artifact_id")
        with self._store._lock:
            self._store._artifact_meta.pop(checked, None)


__all__ = ["InMemoryArtifactRegistry"]
