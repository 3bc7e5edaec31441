"""Artifacts as files under a root directory (ART-1, ART-2).

Each key maps to exactly one file path and no two keys to the same one: the UTF-8 bytes of the key
are percent-encoded, keeping only ``[a-z0-9_-]`` (lower case, so a case-insensitive file system
cannot merge two keys), and the result is cut into segments of at most ``SEGMENT`` characters to
stay within file-name limits: every segment but the last is a directory named ``d<segment>``, the
last a file named ``f<segment>``. No encoded name contains '/', '.' or a NUL byte, so no key can
climb out of the root or name a special file. Writes go to a temporary file that replaces the
target in one ``os.replace``, so a reader sees the old bytes or the new ones, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pytest_asm_contract._contract.errors import ErrorCode, StoreError

SEGMENT = 200
CHUNK = 1024 * 1024
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_-")


def encode_key(key: str) -> list[str]:
    """The path segments (relative to the objects directory) of ``key``."""
    raw = key.encode("utf-8", "surrogatepass")
    encoded = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    chunks = [encoded[i : i + SEGMENT] for i in range(0, len(encoded), SEGMENT)]
    return [f"d{chunk}" for chunk in chunks[:-1]] + [f"f{chunks[-1]}"]


class FileSystemArtifactStore:
    """put/get/delete of bytes under any non-empty string key, as files below ``root``.

    Without ``root`` the store makes a fresh temporary directory (removed by ``close()``), so each
    store built with no arguments starts empty.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._owned = root is None
        try:
            base = Path(tempfile.mkdtemp(prefix="asm-artifacts-")) if root is None else Path(root)
            self.root = base.resolve()
            self._objects = self.root / "objects"
            self._tmp = self.root / "tmp"
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _failure("open artifact root", error, write=True) from error

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        view = _as_bytes(data)
        temporary = self._tmp / uuid.uuid4().hex
        try:
            with open(temporary, "wb") as file:
                for start in range(0, len(view), CHUNK):
                    file.write(view[start : start + CHUNK])
                file.flush()
                os.fsync(file.fileno())
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise _failure("put artifact", error, write=True) from error

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as file:
                return b"".join(_chunks(file))
        except (FileNotFoundError, NotADirectoryError):
            raise StoreError(ErrorCode.NOT_FOUND, f"no artifact {key!r}", {"key": key}) from None
        except OSError as error:
            raise _failure("get artifact", error, write=False) from error

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as error:
            raise _failure("delete artifact", error, write=True) from error

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def _path(self, key: object) -> Path:
        if not isinstance(key, str) or not key:
            raise StoreError(
                ErrorCode.VALIDATION_ERROR,
                f"artifact key must be a non-empty string, got {key!r:.80}",
            )
        return self._objects.joinpath(*encode_key(key))


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    while chunk := file.read(CHUNK):
        yield chunk


def _as_bytes(data: object) -> memoryview:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StoreError(
            ErrorCode.VALIDATION_ERROR, f"artifact data must be bytes, got {type(data).__name__}"
        )
    return memoryview(data).cast("B")


def _failure(operation: str, error: OSError, *, write: bool) -> StoreError:
    code = ErrorCode.STORAGE_WRITE_FAILED if write else ErrorCode.STORAGE_READ_FAILED
    return StoreError(
        code,
        f"{operation} failed: {type(error).__name__}: {error}",
        {"operation": operation, "errno": error.errno},
    )
