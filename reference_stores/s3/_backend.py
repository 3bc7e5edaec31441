"""What both S3 stores share: the lazy boto3 import, client construction, error mapping, keys.

boto3 is an optional dependency (the ``s3`` extra). Nothing here imports it at module import time,
so ``import reference_stores.s3`` works without it; constructing a store without it raises
``dependency_not_available`` (DEP-1).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError, dependency_not_available

#: Environment variables the stores read when an option is not given.
ENV_ENDPOINT_URL = "ASM_S3_ENDPOINT_URL"
ENV_BUCKET = "ASM_S3_BUCKET"
ENV_REGION = "ASM_S3_REGION"
DEFAULT_BUCKET = "asm-contract"
DEFAULT_REGION = "us-east-1"

#: Error codes S3 returns for throttling or a transient server fault: retryable.
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "InternalError",
        "503",
        "500",
    }
)
TIMEOUT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException"})
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
CONFIG_CODES = frozenset(
    {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
)
CONFIG_EXCEPTIONS = frozenset({"NoCredentialsError", "PartialCredentialsError", "NoRegionError"})
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


_SESSION: Any = None
_SESSION_LOCK = threading.Lock()


def import_boto3(operation: str) -> ModuleType:
    """boto3, or ``dependency_not_available`` naming the ``s3`` extra (DEP-1)."""
    try:
        return importlib.import_module("boto3")
    except ImportError as error:
        raised = dependency_not_available("boto3", "boto3", operation, "s3")
        raise raised from error


def make_client(
    operation: str,
    *,
    client: Any | None,
    endpoint_url: str | None,
    region: str | None,
    aws_access_key_id: str | None,
    aws_secret_access_key: str | None,
    aws_session_token: str | None,
    max_pool_connections: int = 32,
) -> Any:
    """The caller's client, or a new S3 client built from the options and the environment."""
    boto3 = import_boto3(operation)
    if client is not None:
        return client
    config_module = importlib.import_module("botocore.config")
    config = config_module.Config(
        max_pool_connections=max_pool_connections,
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10,
        read_timeout=60,
        # Checksums only where S3 requires them: records are small and parsed as JSON (a torn
        # body fails to parse), and S3-compatible services often lack the newer algorithms.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        with _SESSION_LOCK:
            # Building a boto3 Session loads the service models (~0.2 s); clients built from one
            # shared session take milliseconds. Session objects are not thread-safe: hence the lock.
            global _SESSION
            if _SESSION is None:
                _SESSION = boto3.session.Session()
            return _SESSION.client(
                "s3",
                endpoint_url=endpoint_url or os.environ.get(ENV_ENDPOINT_URL) or None,
                region_name=region or os.environ.get(ENV_REGION) or DEFAULT_REGION,
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                aws_session_token=aws_session_token,
                config=config,
            )
    except Exception as error:
        raise StoreError(
            ErrorCode.STORAGE_ERROR,
            f"{operation}: cannot build an S3 client: {type(error).__name__}: {error}",
            {"operation": operation},
        ) from error


def new_prefix(label: str) -> str:
    """A fresh namespace, so that each store built without a prefix starts empty."""
    return f"{label}-{uuid.uuid4().hex}/"


def normalise_prefix(prefix: str) -> str:
    if not isinstance(prefix, str):
        raise StoreError(ErrorCode.VALIDATION_ERROR, f"prefix must be a string, got {prefix!r}")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def ensure_bucket(client: Any, bucket: str, region: str | None) -> None:
    """Create ``bucket`` unless it exists (for local servers and tests)."""
    with translated("create_bucket", write=True):
        try:
            client.head_bucket(Bucket=bucket)
            return
        except Exception as error:
            if error_code(error) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
        params: dict[str, Any] = {"Bucket": bucket}
        region = region or client.meta.region_name
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            client.create_bucket(**params)
        except Exception as error:
            if error_code(error) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise


# -- keys -------------------------------------------------------------------------------------
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
#: Above this many characters an encoded name is replaced by its digest (S3 keys hold 1024 bytes).
MAX_ENCODED = 400


def encode_name(value: str) -> str:
    """One key segment for ``value``: injective, and never containing '/', '.' or '~'.

    Every byte of the UTF-8 form outside ``[A-Za-z0-9_-]`` becomes ``%XX``, so no id can add a
    path segment, climb out of its prefix or look like another id. Names longer than
    ``MAX_ENCODED`` become ``~`` + the SHA-256 of the id (base 16); the '~' keeps the two forms
    apart, and records stored under a digest carry the full id, which readers check.
    """
    raw = value.encode("utf-8", "surrogatepass")
    encoded = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    if len(encoded) > MAX_ENCODED:
        return "~" + hashlib.sha256(raw).hexdigest()
    return encoded


# -- errors -----------------------------------------------------------------------------------
def error_code(error: BaseException) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    response = getattr(error, "response", None)
    if not isinstance(response, Mapping):
        return ""
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status) if status else ""


def is_not_found(error: BaseException) -> bool:
    return error_code(error) in NOT_FOUND_CODES


def is_conflict(error: BaseException) -> bool:
    """A conditional write lost: the key exists (If-None-Match) or changed (If-Match)."""
    return error_code(error) in CONFLICT_CODES


def to_store_error(error: BaseException, operation: str, *, write: bool) -> StoreError:
    """Map any boto3/botocore failure (or anything else) to a ``StoreError`` with a storage code.

    Throttling, server faults and connection errors give ``storage_connection_failed`` and
    timeouts ``timeout`` (both retryable); other S3 errors ``storage_write_failed`` or
    ``storage_read_failed``; configuration problems (credentials, bucket) ``storage_error``.
    """
    if isinstance(error, StoreError):
        return error
    name = type(error).__name__
    names = {cls.__name__ for cls in type(error).__mro__}
    code = error_code(error)
    details: dict[str, Any] = {"operation": operation, "exception": name}
    if code:
        details["s3_code"] = code
    transient = code in TRANSIENT_CODES or (code.isdigit() and int(code) >= 500)
    broken_link = bool(names & {"ConnectionError", "HTTPClientError", "ConnectionClosedError"})
    misconfigured = code in CONFIG_CODES or bool(names & CONFIG_EXCEPTIONS)
    if code in TIMEOUT_CODES or names & {"ReadTimeoutError", "ConnectTimeoutError"}:
        kind = ErrorCode.TIMEOUT
    elif transient or broken_link:
        kind = ErrorCode.STORAGE_CONNECTION_FAILED
    elif misconfigured or not code:
        kind = ErrorCode.STORAGE_ERROR
    else:
        kind = ErrorCode.STORAGE_WRITE_FAILED if write else ErrorCode.STORAGE_READ_FAILED
    message = f"S3 {operation} failed: {name}: {error}"
    store_error = StoreError(kind, message, details)
    store_error.__cause__ = error
    return store_error


@contextmanager
def translated(operation: str, *, write: bool) -> Iterator[None]:
    """Let nothing but ``StoreError`` out of the block (PORT-3)."""
    try:
        yield
    except StoreError:
        raise
    except Exception as error:
        raise to_store_error(error, operation, write=write) from error
