"""Artifacts as S3 objects: one object per key, large payloads uploaded in parts."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from reference_stores._options import boolean, positive_int
from reference_stores.s3._backend import (
    DEFAULT_BUCKET,
    ENV_BUCKET,
    encode_name,
    ensure_bucket,
    is_not_found,
    make_client,
    new_prefix,
    normalise_prefix,
    translated,
)

MIB = 1024 * 1024


class S3ArtifactStore:
    """put/get/delete of bytes under any non-empty string key (ART-1, ART-2).

    Keys are encoded into one key segment (see ``encode_name``): percent-encoding of everything
    outside ``[A-Za-z0-9_-]``, or a SHA-256 digest for very long keys, so no key can reach another
    key's object or leave the store's prefix. Payloads of ``multipart_threshold`` bytes or more are
    sent with a multipart upload in parts of ``multipart_chunksize`` bytes (S3 requires parts of at
    least 5 MiB except the last; local test servers may allow smaller ones). Connection options are
    those of ``S3SessionStore``; without ``prefix`` every store gets a fresh, empty namespace.
    """

    def __init__(
        self,
        *,
        bucket: str | None = None,
        prefix: str | None = None,
        client: Any | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        create_bucket: bool | str = False,
        multipart_threshold: int | str = 16 * MIB,
        multipart_chunksize: int | str = 8 * MIB,
    ) -> None:
        # Every option is checked before the client or the bucket exist.
        create = boolean(create_bucket, "create_bucket")
        self.multipart_threshold: int = positive_int(multipart_threshold, "multipart_threshold")
        self.multipart_chunksize: int = positive_int(multipart_chunksize, "multipart_chunksize")
        self.bucket: str = bucket or os.environ.get(ENV_BUCKET) or DEFAULT_BUCKET
        self.prefix: str = normalise_prefix(prefix) if prefix is not None else new_prefix("art")
        self._client = make_client(
            "S3ArtifactStore()",
            client=client,
            endpoint_url=endpoint_url,
            region=region,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
        )
        if create:
            ensure_bucket(self._client, self.bucket, region)

    def asm_fault_target(self) -> Any:
        """The botocore client every request goes through (the fault-injection hook)."""
        return self._client

    def put(self, key: str, data: bytes) -> None:
        name = self._key(key)
        payload = _as_bytes(data)
        if len(payload) >= self.multipart_threshold:
            self._put_multipart(name, payload)
            return
        with translated("put artifact", write=True):
            self._client.put_object(Bucket=self.bucket, Key=name, Body=bytes(payload))

    def get(self, key: str) -> bytes:
        name = self._key(key)
        with translated("get artifact", write=False):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=name)
            except Exception as error:
                if is_not_found(error):
                    raise StoreError(
                        ErrorCode.NOT_FOUND, f"no artifact {key!r}", {"key": key}
                    ) from error
                raise
            body = response["Body"]
            chunks = bytearray()
            for chunk in body.iter_chunks(chunk_size=MIB):
                chunks.extend(chunk)
        return bytes(chunks)

    def delete(self, key: str) -> None:
        name = self._key(key)
        with translated("delete artifact", write=True):
            try:
                self._client.delete_object(Bucket=self.bucket, Key=name)
            except Exception as error:
                if not is_not_found(error):
                    raise

    def _put_multipart(self, name: str, payload: memoryview) -> None:
        """Upload in parts, streaming slices of the payload; abort the upload on any failure."""
        with translated("put artifact (multipart)", write=True):
            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=name)[
                "UploadId"
            ]
            try:
                parts = []
                size = self.multipart_chunksize
                for number_, start in enumerate(range(0, len(payload), size), start=1):
                    response = self._client.upload_part(
                        Bucket=self.bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=number_,
                        Body=bytes(payload[start : start + size]),
                    )
                    parts.append({"PartNumber": number_, "ETag": response["ETag"]})
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
            except BaseException:
                # The first failure is the one to report; a lifecycle rule removes what is left.
                with contextlib.suppress(Exception):
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=name, UploadId=upload_id
                    )
                raise

    def _key(self, key: object) -> str:
        if not isinstance(key, str) or not key:
            raise StoreError(
                ErrorCode.VALIDATION_ERROR,
                f"artifact key must be a non-empty string, got {key!r:.80}",
            )
        return f"{self.prefix}a/{encode_name(key)}"


def _as_bytes(data: object) -> memoryview:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StoreError(
            ErrorCode.VALIDATION_ERROR, f"artifact data must be bytes, got {type(data).__name__}"
        )
    return memoryview(data).cast("B")
