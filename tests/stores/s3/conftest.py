"""Fixtures for the S3 store tests: in-process moto S3 servers (``ThreadedMotoServer(port=0)``).

``moto_endpoint`` serializes request handling (moto checks If-None-Match/If-Match without a lock;
see reference_stores/s3/moto_server.py); ``racy_moto_endpoint`` is moto as shipped, used to show
that the race is real. Both run for the whole test session, each test works under its own fresh
key prefix, so tests never see each other's objects.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# moto reads these when it is first imported: credentials for the local server, and small
# multipart parts (S3 wants 5 MiB) so that the multipart tests stay small.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("S3_UPLOAD_PART_MIN_SIZE", "256")

pytest.importorskip("boto3", reason="the S3 stores need boto3 (pip install '.[s3]')")
pytest.importorskip("moto.server", reason="the S3 tests need moto[server] (pip install '.[test]')")

from reference_stores.s3 import S3ArtifactStore, S3SessionStore
from reference_stores.s3.moto_server import serialized_moto_server

BUCKET = "asm-tests"


def _serve(serialize: bool) -> Iterator[str]:
    server = serialized_moto_server(port=0, serialize=serialize)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = make_client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


_SESSION: list[Any] = []


def make_client(endpoint: str, *, retries: bool = True, timeout: float | None = None) -> Any:
    """A new S3 client for ``endpoint`` (clients from one boto3 session build fast).

    ``retries=False``: one attempt per request. A retry of a conditional create whose first
    attempt took effect reports a conflict, which a race test would read as a lost race.
    ``timeout``: seconds to wait for a connection and for each read (botocore's default is 60),
    for a test whose own hang guard must fire first.
    """
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    if not _SESSION:
        _SESSION.append(boto3.session.Session())
    options: dict[str, Any] = {}
    if not retries:
        options["retries"] = {"total_max_attempts": 1}
    if timeout is not None:
        options.update(connect_timeout=timeout, read_timeout=timeout)
    config = Config(**options) if options else None
    return _SESSION[0].client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server that handles one request at a time (conditional writes are atomic)."""
    yield from _serve(serialize=True)


@pytest.fixture(scope="session")
def racy_moto_endpoint() -> Iterator[str]:
    """moto as shipped: If-None-Match is checked, then the object written, without a lock."""
    yield from _serve(serialize=False)


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex}/"


@pytest.fixture
def s3_client(moto_endpoint: str) -> Any:
    return make_client(moto_endpoint)


@pytest.fixture
def session_store_factory(
    moto_endpoint: str, prefix: str
) -> Iterator[Callable[..., S3SessionStore]]:
    """Builds S3 session stores on the serialized server; all share ``prefix`` by default."""
    stores: list[S3SessionStore] = []

    def make(**options: Any) -> S3SessionStore:
        options.setdefault("endpoint_url", moto_endpoint)
        options.setdefault("bucket", BUCKET)
        options.setdefault("prefix", prefix)
        store = S3SessionStore(**options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def session_store(session_store_factory: Callable[..., S3SessionStore]) -> S3SessionStore:
    return session_store_factory()


@pytest.fixture
def artifact_store(moto_endpoint: str, prefix: str) -> S3ArtifactStore:
    return S3ArtifactStore(
        endpoint_url=moto_endpoint,
        bucket=BUCKET,
        prefix=prefix,
        multipart_threshold=1024,
        multipart_chunksize=300,
    )
