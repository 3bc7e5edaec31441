"""Every boto3/botocore failure leaves the S3 stores as a StoreError; boto3 stays optional."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from typing import Any

import botocore.exceptions as boto_errors  # type: ignore[import-untyped]
import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Session
from reference_stores.s3 import S3ArtifactStore, S3SessionStore
from reference_stores.s3._backend import to_store_error


def _client_error(code: str, status: int) -> boto_errors.ClientError:
    return boto_errors.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("error", "write", "code"),
    [
        (_client_error("SlowDown", 503), True, ErrorCode.STORAGE_CONNECTION_FAILED),
        (_client_error("Throttling", 400), False, ErrorCode.STORAGE_CONNECTION_FAILED),
        (_client_error("RequestLimitExceeded", 400), False, ErrorCode.STORAGE_CONNECTION_FAILED),
        (_client_error("InternalError", 500), True, ErrorCode.STORAGE_CONNECTION_FAILED),
        (_client_error("ServiceUnavailable", 503), False, ErrorCode.STORAGE_CONNECTION_FAILED),
        (_client_error("RequestTimeout", 400), True, ErrorCode.TIMEOUT),
        (_client_error("NoSuchBucket", 404), True, ErrorCode.STORAGE_ERROR),
        (_client_error("AccessDenied", 403), False, ErrorCode.STORAGE_ERROR),
        (_client_error("InvalidArgument", 400), True, ErrorCode.STORAGE_WRITE_FAILED),
        (_client_error("InvalidArgument", 400), False, ErrorCode.STORAGE_READ_FAILED),
        (
            boto_errors.EndpointConnectionError(endpoint_url="x"),
            True,
            ErrorCode.STORAGE_CONNECTION_FAILED,
        ),
        (
            boto_errors.ConnectionClosedError(endpoint_url="x"),
            False,
            ErrorCode.STORAGE_CONNECTION_FAILED,
        ),
        (boto_errors.ReadTimeoutError(endpoint_url="x"), False, ErrorCode.TIMEOUT),
        (boto_errors.ConnectTimeoutError(endpoint_url="x"), True, ErrorCode.TIMEOUT),
        (boto_errors.NoCredentialsError(), True, ErrorCode.STORAGE_ERROR),
        (boto_errors.ParamValidationError(report="bad"), True, ErrorCode.STORAGE_ERROR),
        (RuntimeError("anything else"), False, ErrorCode.STORAGE_ERROR),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_backend_errors_map_to_storage_codes(
    error: Exception, write: bool, code: ErrorCode
) -> None:
    mapped = to_store_error(error, "op", write=write)
    assert mapped.code is code
    assert mapped.retryable == (code in {ErrorCode.STORAGE_CONNECTION_FAILED, ErrorCode.TIMEOUT})
    assert mapped.__cause__ is error
    assert mapped.details["operation"] == "op"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_endpoint_is_a_retryable_connection_failure() -> None:
    store = S3SessionStore(endpoint_url=f"http://127.0.0.1:{_closed_port()}", bucket="b")
    with pytest.raises(StoreError) as raised:
        store.get_session("s")
    assert raised.value.code is ErrorCode.STORAGE_CONNECTION_FAILED and raised.value.retryable
    assert isinstance(raised.value.__cause__, boto_errors.EndpointConnectionError)


@pytest.mark.parametrize("kind", ["session", "artifact"])
def test_a_missing_bucket_is_a_storage_error(moto_endpoint: str, kind: str) -> None:
    options: dict[str, Any] = {"endpoint_url": moto_endpoint, "bucket": "no-such-bucket"}
    with pytest.raises(StoreError) as raised:
        if kind == "session":
            S3SessionStore(**options).save_session(Session(agent_id="a"))
        else:
            S3ArtifactStore(**options).put("k", b"v")
    assert raised.value.code is ErrorCode.STORAGE_ERROR
    assert raised.value.details["s3_code"] == "NoSuchBucket"


def test_create_bucket_makes_a_missing_bucket(moto_endpoint: str) -> None:
    store = S3ArtifactStore(
        endpoint_url=moto_endpoint, bucket="made-by-store", create_bucket="true"
    )
    store.put("k", b"v")
    assert (
        S3ArtifactStore(
            endpoint_url=moto_endpoint, bucket="made-by-store", prefix=store.prefix
        ).get("k")
        == b"v"
    )


def test_options_given_as_strings_are_checked() -> None:
    with pytest.raises(StoreError) as raised:
        S3SessionStore(endpoint_url="http://127.0.0.1:1", snapshot_interval="many")
    assert raised.value.code is ErrorCode.VALIDATION_ERROR


WITHOUT_BOTO3 = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("boto3", "botocore", "moto"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    import reference_stores.s3
    import reference_stores.s3.moto_server
    import pytest_asm_contract._faults.botocore
    from pytest_asm_contract._contract.errors import StoreError

    found = []
    for build in (reference_stores.s3.S3SessionStore, reference_stores.s3.S3ArtifactStore):
        try:
            build(endpoint_url="http://127.0.0.1:1")
        except StoreError as error:
            found.append({"code": error.code.value, "message": error.message, **error.details})
    print(json.dumps(found))
    """
)


def test_without_boto3_importing_works_and_building_names_the_s3_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_BOTO3], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    import json

    found = json.loads(done.stdout)
    assert len(found) == 2
    for error in found:
        assert error["code"] == "dependency_not_available"
        assert error["dependency"] == "boto3" and error["extra"] == "s3"
        assert {"module", "operation"} <= error.keys()
        assert "pytest-asm-contract[s3]" in error["message"]
