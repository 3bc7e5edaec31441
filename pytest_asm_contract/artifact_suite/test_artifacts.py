"""ART: artifact stores keep exact bytes under any key, with no collisions and no escapes."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.port import close_store
from pytest_asm_contract._plugin.loading import StoreFactory
from pytest_asm_contract.suite._builders import expect_error

#: Keys that break naive path or prefix handling; each must stay a key of its own.
HOSTILE_KEYS = (
    "a",
    "A",
    "a/b",
    "a%2Fb",
    "a\\b",
    "../a",
    "../../etc/passwd",
    "/a",
    "a/",
    "a//b",
    "a/./b",
    "a/../b",
    "b",
    ".",
    "..",
    "...",
    "%",
    "_",
    "%25",
    "*",
    "?",
    "a b",
    " a",
    "a\x00b",
    "\u00e9",
    "e\u0301",
    "\U0001f600",
    "CON",
    "~",
    "x" * 300,
)

keys = st.one_of(st.sampled_from(HOSTILE_KEYS), st.text(min_size=1, max_size=64))
payloads = st.binary(max_size=2048)


class TestArtifacts:
    @rule("ART-1")
    def test_put_then_get_returns_exact_bytes(self, asm_artifact_store: Any) -> None:
        data = bytes(range(256)) * 4
        asm_artifact_store.put("report.bin", data)
        assert asm_artifact_store.get("report.bin") == data

    @rule("ART-1")
    def test_put_overwrites(self, asm_artifact_store: Any) -> None:
        asm_artifact_store.put("k", b"first, longer value")
        asm_artifact_store.put("k", b"second")
        assert asm_artifact_store.get("k") == b"second"

    @rule("ART-1")
    def test_empty_payload_round_trips(self, asm_artifact_store: Any) -> None:
        asm_artifact_store.put("empty", b"")
        assert asm_artifact_store.get("empty") == b""

    @rule("ART-1")
    def test_missing_key_raises_not_found(self, asm_artifact_store: Any) -> None:
        with expect_error(ErrorCode.NOT_FOUND):
            asm_artifact_store.get("never-written")

    @rule("ART-1")
    def test_delete_removes_and_is_idempotent(self, asm_artifact_store: Any) -> None:
        asm_artifact_store.put("k", b"v")
        asm_artifact_store.delete("k")
        asm_artifact_store.delete("k")
        asm_artifact_store.delete("never-written")
        with expect_error(ErrorCode.NOT_FOUND):
            asm_artifact_store.get("k")

    @rule("ART-1")
    def test_empty_key_is_rejected(self, asm_artifact_store: Any) -> None:
        with expect_error(ErrorCode.VALIDATION_ERROR):
            asm_artifact_store.put("", b"v")

    @rule("ART-2")
    def test_hostile_keys_never_collide(self, asm_artifact_store: Any) -> None:
        for index, key in enumerate(HOSTILE_KEYS):
            asm_artifact_store.put(key, f"{index}".encode())
        for index, key in enumerate(HOSTILE_KEYS):
            assert asm_artifact_store.get(key) == f"{index}".encode(), (
                f"key {key!r} returned another key's bytes: two keys reached the same object"
            )

    @rule("ART-2")
    def test_keys_stay_inside_their_store(self, asm_artifact_store_factory: StoreFactory) -> None:
        first, second = asm_artifact_store_factory(), asm_artifact_store_factory()
        try:
            for key in HOSTILE_KEYS:
                first.put(key, b"first")
            for key in HOSTILE_KEYS:
                with expect_error(ErrorCode.NOT_FOUND):
                    second.get(key)
        finally:
            close_store(first)
            close_store(second)

    @rule("ART-1", "ART-2")
    def test_generated_keys_and_payloads(
        self,
        asm_artifact_store_factory: StoreFactory,
        asm_hypothesis_settings: settings,
        asm_seed: int,
    ) -> None:
        store = asm_artifact_store_factory()
        model: dict[str, bytes] = {}

        @settings(
            asm_hypothesis_settings,
            max_examples=min(asm_hypothesis_settings.max_examples, 50),
            suppress_health_check=[HealthCheck.too_slow],
        )
        @hypothesis_seed(asm_seed)
        @given(st.lists(st.tuples(keys, payloads | st.none()), min_size=1, max_size=8))
        def check(steps: list[tuple[str, bytes | None]]) -> None:
            for key, data in steps:
                if data is None:
                    store.delete(key)
                    model.pop(key, None)
                else:
                    store.put(key, data)
                    model[key] = data
            for key in {key for key, _ in steps}:
                if key in model:
                    assert store.get(key) == model[key], f"wrong bytes for key {key!r}"
                else:
                    with expect_error(ErrorCode.NOT_FOUND):
                        store.get(key)

        try:
            check()
        finally:
            close_store(store)


__all__ = ["TestArtifacts"]
