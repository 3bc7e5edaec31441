"""Broken artifact registries over the correct in-memory store: each makes one mistake of the REG
rules.

``KIND = "registry"``: the kit runs them as ``--asm-store=reference_stores.memory:
InMemorySessionStore --asm-artifact-registry=tests.zoo.registries:<name>``, so every failure is
the registry's.
"""

from __future__ import annotations

from typing import Any

from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract._contract.registry import as_artifact_meta
from reference_stores.memory import InMemoryArtifactRegistry


class _Zoo(InMemoryArtifactRegistry):
    KIND = "registry"


class RegisterAddsASecondRecord(_Zoo):
    """register keys its records by (id, key): registering a known id with another key adds a
    second record instead of replacing the first."""

    BREAKS = ("REG-1",)

    def register(self, meta: ArtifactMeta) -> ArtifactMeta:
        checked = as_artifact_meta(meta)
        known = self._store._artifact_meta.get(checked.id)
        if known is not None and known.key != checked.key:
            slot = checked.model_copy(update={"id": f"{checked.id}#{checked.key}"})
            with self._store._lock:
                self._store._artifact_meta[slot.id] = slot
            return checked
        return super().register(checked)


class ListedInInsertionOrder(_Zoo):
    """list_by_session returns the records in the order they were registered."""

    BREAKS = ("REG-2",)

    def list_by_session(self, session_id: str) -> list[ArtifactMeta]:
        with self._store._lock:
            found = [m for m in self._store._artifact_meta.values() if m.session_id == session_id]
        return [m.model_copy(deep=True) for m in found]


class RecordsOfItsOwn(_Zoo):
    """Keeps its records in a dict of its own instead of the store's backend, so the store's
    delete_session cannot remove a session's artifact metadata."""

    BREAKS = ("REG-3",)

    def __init__(self, store: Any) -> None:
        super().__init__(_OwnBackend(store))


class _OwnBackend:
    def __init__(self, store: Any) -> None:
        self._lock = store._lock
        self._artifact_meta: dict[str, ArtifactMeta] = {}


class CreatedAtToTheMillisecond(_Zoo):
    """Keeps created_at to the millisecond (a backend's DATETIME(3) column, say)."""

    BREAKS = ("REG-1",)
    # ties on the truncated created_at reorder records whose microseconds differ (none here)

    def register(self, meta: ArtifactMeta) -> ArtifactMeta:
        checked = as_artifact_meta(meta)
        moment = checked.created_at
        truncated = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        return super().register(checked.model_copy(update={"created_at": truncated}))
