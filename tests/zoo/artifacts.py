"""Broken artifact stores for the ART rules (run with --asm-artifact-store)."""

from __future__ import annotations

import posixpath
from typing import ClassVar

from reference_stores.memory import InMemoryArtifactStore


class NormalisedKeys(InMemoryArtifactStore):
    """Keys are normalised like paths, so 'a/../b' and 'b' reach the same object."""

    KIND = "artifact"
    BREAKS = ("ART-2",)
    # keys that normalise alike collide, so a get may return another key's bytes
    ALSO = ("ART-1",)

    def _key(self, key: str) -> str:
        return posixpath.normpath(key) if key else key

    def put(self, key: str, data: bytes) -> None:
        super().put(self._key(key), data)

    def get(self, key: str) -> bytes:
        return super().get(self._key(key))

    def delete(self, key: str) -> None:
        super().delete(self._key(key))


class CaseInsensitiveKeys(InMemoryArtifactStore):
    """Keys are lower-cased (a case-insensitive file system or collation)."""

    KIND = "artifact"
    BREAKS = ("ART-2",)
    # a get under a key that differs only in case finds the other key's bytes
    ALSO = ("ART-1",)

    def put(self, key: str, data: bytes) -> None:
        super().put(key.lower(), data)

    def get(self, key: str) -> bytes:
        return super().get(key.lower())


class SharedNamespace(InMemoryArtifactStore):
    """Every instance writes into one process-wide dict: keys escape their store."""

    KIND = "artifact"
    BREAKS = ("ART-2",)
    _shared: ClassVar[dict[str, bytes]] = {}

    def __init__(self) -> None:
        super().__init__()
        self._blobs = self._shared


class DeleteMissingRaises(InMemoryArtifactStore):
    """delete of a missing key raises not_found instead of being idempotent."""

    KIND = "artifact"
    BREAKS = ("ART-1",)
    # the generated key sequences delete keys that were never written
    ALSO = ("ART-2",)

    def delete(self, key: str) -> None:
        self.get(key)
        super().delete(key)


class FirstPutWins(InMemoryArtifactStore):
    """put does not overwrite an existing key."""

    KIND = "artifact"
    BREAKS = ("ART-1",)
    # the generated key sequences overwrite keys
    ALSO = ("ART-2",)

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            exists = key in self._blobs
        if not exists:
            super().put(key, data)
