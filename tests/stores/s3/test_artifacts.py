"""The artifact stores beyond the ART suite: multipart uploads, failures, key layout."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_asm_contract._contract.errors import STORAGE_CODES, ErrorCode, StoreError
from pytest_asm_contract._faults.botocore import RequestCounter, failing_write
from reference_stores.fs import SEGMENT, FileSystemArtifactStore, encode_key
from reference_stores.s3 import S3ArtifactStore
from tests.stores.s3.conftest import BUCKET

HOSTILE_KEYS = [
    "a",
    "A",
    "a/b",
    "../a",
    "/a",
    "a/",
    ".",
    "..",
    "%",
    "%25",
    "a\x00b",
    "\u00e9",
    "e\u0301",
    "\U0001f600",
    "~",
    "CON",
    "x" * 1000,
    "\u00e9" * 400,
]


def _blob(size: int) -> bytes:
    return bytes((i * 7 + size) % 251 for i in range(size))


# -- S3 -------------------------------------------------------------------------------------------
def test_large_blobs_go_up_in_parts(artifact_store: S3ArtifactStore) -> None:
    data = _blob(5000)  # threshold 1024, parts of 300 bytes
    with RequestCounter(artifact_store.asm_fault_target()) as counter:
        artifact_store.put("big", data)
    assert counter.by_operation["CreateMultipartUpload"] == 1
    assert counter.by_operation["UploadPart"] == 17
    assert counter.by_operation["CompleteMultipartUpload"] == 1
    assert counter.by_operation["PutObject"] == 0
    assert artifact_store.get("big") == data
    with RequestCounter(artifact_store.asm_fault_target()) as counter:
        artifact_store.put("big", b"small now")
    assert counter.by_operation == {"PutObject": 1}
    assert artifact_store.get("big") == b"small now"


@pytest.mark.parametrize("fail_at", [1, 2, 5, 19])
def test_a_failed_multipart_upload_is_aborted_and_changes_nothing(
    artifact_store: S3ArtifactStore, s3_client: Any, fail_at: int
) -> None:
    artifact_store.put("big", b"old")
    with (
        failing_write(artifact_store.asm_fault_target(), fail_at) as plan,
        pytest.raises(StoreError) as raised,
    ):
        artifact_store.put("big", _blob(5000))
    assert plan.fired and raised.value.code in STORAGE_CODES
    assert artifact_store.get("big") == b"old"
    uploads = s3_client.list_multipart_uploads(Bucket=BUCKET, Prefix=artifact_store.prefix)
    assert uploads.get("Uploads", []) == [], "the failed upload was not aborted"


def test_s3_keys_stay_under_the_prefix(
    artifact_store: S3ArtifactStore, s3_client: Any, prefix: str
) -> None:
    for index, key in enumerate(HOSTILE_KEYS):
        artifact_store.put(key, f"{index}".encode())
    for index, key in enumerate(HOSTILE_KEYS):
        assert artifact_store.get(key) == f"{index}".encode()
    listed = s3_client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    names = [obj["Key"] for obj in listed]
    assert len(names) == len(HOSTILE_KEYS)
    assert all(n.startswith(f"{prefix}a/") and "/" not in n[len(prefix) + 2 :] for n in names)
    assert all(len(n.encode()) <= 1024 for n in names)


def test_s3_artifact_errors_are_store_errors(artifact_store: S3ArtifactStore) -> None:
    with pytest.raises(StoreError) as raised:
        artifact_store.get("missing")
    assert raised.value.code is ErrorCode.NOT_FOUND
    artifact_store.delete("missing")
    with pytest.raises(StoreError) as raised:
        artifact_store.put("k", "text")  # type: ignore[arg-type]
    assert raised.value.code is ErrorCode.VALIDATION_ERROR
    with failing_write(artifact_store.asm_fault_target(), 1), pytest.raises(StoreError) as raised:
        artifact_store.delete("k")
    assert raised.value.code is ErrorCode.STORAGE_CONNECTION_FAILED


# -- file system ----------------------------------------------------------------------------------
def test_fs_keys_map_to_files_inside_the_root(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path / "root")
    for index, key in enumerate(HOSTILE_KEYS):
        store.put(key, f"{index}".encode())
    for index, key in enumerate(HOSTILE_KEYS):
        assert store.get(key) == f"{index}".encode()
    files = [Path(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    assert len(files) == len(HOSTILE_KEYS)
    objects = (tmp_path / "root" / "objects").resolve()
    assert all(f.resolve().is_relative_to(objects) for f in files)
    assert all(len(part) <= SEGMENT + 1 for f in files for part in f.relative_to(objects).parts)


def test_fs_encoding_is_case_and_path_safe() -> None:
    assert encode_key("A") != encode_key("a")
    assert encode_key("A")[0].lower() == encode_key("A")[0]  # letters only as %XX escapes
    for key in HOSTILE_KEYS:
        for part in encode_key(key):
            assert "/" not in part and "." not in part and "\x00" not in part
    assert len(encode_key("x" * 1000)) == 5  # 1000 characters in segments of 200


def test_fs_overwrite_delete_and_large_payloads(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    big = _blob(3 * 1024 * 1024 + 5)
    store.put("k", big)
    assert store.get("k") == big
    store.put("k", b"")
    assert store.get("k") == b""
    store.delete("k")
    store.delete("k")
    with pytest.raises(StoreError) as raised:
        store.get("k")
    assert raised.value.code is ErrorCode.NOT_FOUND
    assert list((tmp_path / "tmp").iterdir()) == [], "temporary files are cleaned up"


def test_fs_store_without_root_is_fresh_and_closing_removes_it() -> None:
    first, second = FileSystemArtifactStore(), FileSystemArtifactStore()
    first.put("k", b"v")
    with pytest.raises(StoreError):
        second.get("k")
    root = first.root
    first.close()
    second.close()
    assert not root.exists()


def test_fs_failures_are_store_errors(tmp_path: Path) -> None:
    store = FileSystemArtifactStore(tmp_path)
    (tmp_path / "tmp").rmdir()
    (tmp_path / "tmp").write_bytes(b"not a directory")  # every write now fails in the OS
    with pytest.raises(StoreError) as raised:
        store.put("k", b"v")
    assert raised.value.code is ErrorCode.STORAGE_WRITE_FAILED
    with pytest.raises(StoreError) as raised:
        store.put("", b"v")
    assert raised.value.code is ErrorCode.VALIDATION_ERROR
