"""REG-1..REG-3: the artifact registry built from the store under test
(``--asm-artifact-registry``), checked against what it was given and against the store's
``delete_session``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract._machine.values import exact_difference
from pytest_asm_contract.suite._builders import a_run, a_session, an_event, at, expect_error


def a_meta(session_id: str, **fields: Any) -> ArtifactMeta:
    fields.setdefault("key", f"{session_id}/output.txt")
    return ArtifactMeta(session_id=session_id, **fields)


#: Every field set, with values that a lossy backend changes: a microsecond, a year far from
#: today, a 64-bit int and a float in the metadata, a string with a NUL-free escape.
FULL = {
    "id": "art-full",
    "run_id": "run-1",
    "key": "sessions/s-1/report \u00e9.json",
    "content_type": "application/json",
    "byte_size": 2**53 + 1,
    "checksum_sha256": "ab" * 32,
    "storage_backend": "s3",
    "storage_ref": "s3://bucket/k",
    "metadata": {"n": 2**63 - 1, "x": 0.1, "nested": {"list": [1, "two", None, True]}},
    "created_at": datetime(2999, 12, 31, 23, 59, 58, 999_999, tzinfo=UTC),
    "deleted_at": datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
}


class TestArtifactRegistry:
    # -- REG-1: register, get, delete ---------------------------------------------------------
    @rule("REG-1")
    def test_register_returns_and_get_reads_every_field(
        self, asm_store: Any, asm_artifact_registry: Any
    ) -> None:
        meta = a_meta("s-1", **FULL)
        stored = asm_artifact_registry.register(meta)
        assert exact_difference(meta, stored) is None, (
            f"register returns the metadata as stored, equal field for field: "
            f"{exact_difference(meta, stored)}"
        )
        read = asm_artifact_registry.get("art-full")
        assert exact_difference(meta, read) is None, (
            "get returns the registered metadata equal field for field (DATA-1: timestamps to "
            f"the microsecond, 64-bit ints, JSON as given): {exact_difference(meta, read)}"
        )

    @rule("REG-1")
    def test_register_replaces_by_id(self, asm_store: Any, asm_artifact_registry: Any) -> None:
        asm_artifact_registry.register(a_meta("s-1", id="art-1", byte_size=1))
        newer = a_meta("s-1", id="art-1", byte_size=2, key="other")
        asm_artifact_registry.register(newer)
        assert [m.key for m in asm_artifact_registry.list_by_session("s-1")] == ["other"], (
            "registering a known id replaces the record instead of adding a second one"
        )
        assert asm_artifact_registry.get("art-1").byte_size == 2

    @rule("REG-1")
    def test_unknown_id_raises_not_found(self, asm_store: Any, asm_artifact_registry: Any) -> None:
        with expect_error(ErrorCode.NOT_FOUND):
            asm_artifact_registry.get("art-missing")

    @rule("REG-1")
    def test_delete_is_idempotent(self, asm_store: Any, asm_artifact_registry: Any) -> None:
        asm_artifact_registry.register(a_meta("s-1", id="art-1"))
        asm_artifact_registry.register(a_meta("s-1", id="art-2"))
        asm_artifact_registry.delete("art-1")
        asm_artifact_registry.delete("art-1")
        asm_artifact_registry.delete("art-never")
        with expect_error(ErrorCode.NOT_FOUND):
            asm_artifact_registry.get("art-1")
        assert [m.id for m in asm_artifact_registry.list_by_session("s-1")] == ["art-2"]

    @rule("REG-1")
    @pytest.mark.parametrize("meta", [None, "art-1", 42, {"key": "k"}])
    def test_invalid_metadata_raises_validation_error(
        self, asm_store: Any, asm_artifact_registry: Any, meta: Any
    ) -> None:
        with expect_error(ErrorCode.VALIDATION_ERROR):
            asm_artifact_registry.register(meta)

    # -- REG-2: list_by_session ---------------------------------------------------------------
    @rule("REG-2")
    def test_list_by_session_orders_by_created_at_then_id(
        self, asm_store: Any, asm_artifact_registry: Any
    ) -> None:
        for artifact_id, second in (("c", 5), ("b", 1), ("a", 5), ("d", 3)):
            asm_artifact_registry.register(a_meta("s-1", id=artifact_id, created_at=at(second)))
        asm_artifact_registry.register(a_meta("s-2", id="e", created_at=at(0)))
        found = [m.id for m in asm_artifact_registry.list_by_session("s-1")]
        assert found == ["b", "d", "a", "c"], (
            "list_by_session returns only the session's records, by (created_at, id)"
        )
        assert asm_artifact_registry.list_by_session("s-none") == []

    # -- REG-3: delete_session ----------------------------------------------------------------
    @rule("REG-3")
    def test_delete_session_removes_its_artifact_metadata(
        self, asm_store: Any, asm_artifact_registry: Any
    ) -> None:
        for sid in ("s-1", "s-2"):
            asm_store.save_session(a_session(id=sid))
            asm_store.save_run(a_run(sid, id=f"r-{sid}"))
            asm_store.append_event(an_event(sid, f"r-{sid}"))
            asm_artifact_registry.register(a_meta(sid, id=f"art-{sid}", run_id=f"r-{sid}"))

        asm_store.delete_session("s-1")

        assert asm_artifact_registry.list_by_session("s-1") == [], (
            "delete_session removes the session's artifact metadata with the rest of it"
        )
        with expect_error(ErrorCode.NOT_FOUND):
            asm_artifact_registry.get("art-s-1")
        assert [m.id for m in asm_artifact_registry.list_by_session("s-2")] == ["art-s-2"]

    @rule("REG-3")
    def test_metadata_of_a_session_that_does_not_exist_is_allowed(
        self, asm_store: Any, asm_artifact_registry: Any
    ) -> None:
        asm_artifact_registry.register(a_meta("s-nowhere", id="art-orphan"))
        found = [m.id for m in asm_artifact_registry.list_by_session("s-nowhere")]
        assert found == ["art-orphan"], (
            "metadata of a session the store does not hold is kept (no referential integrity)"
        )


__all__ = ["TestArtifactRegistry"]
