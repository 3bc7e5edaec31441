"""The one exception type a store may raise, and its closed set of codes (contract section 2)."""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    VALIDATION_ERROR = "validation_error"
    INVALID_EVENT_TYPE = "invalid_event_type"
    INVALID_STATUS = "invalid_status"
    SESSION_MISMATCH = "session_mismatch"
    RUN_MISMATCH = "run_mismatch"
    SESSION_NOT_FOUND = "session_not_found"
    RUN_NOT_FOUND = "run_not_found"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    STORAGE_ERROR = "storage_error"
    STORAGE_CONNECTION_FAILED = "storage_connection_failed"
    STORAGE_WRITE_FAILED = "storage_write_failed"
    STORAGE_READ_FAILED = "storage_read_failed"
    DEPENDENCY_NOT_AVAILABLE = "dependency_not_available"
    MIGRATION_REQUIRED = "migration_required"
    TIMEOUT = "timeout"
    #: A QueryAPI cursor that is malformed, tampered with, or issued for other filters or
    #: another order (query-maintenance.md, QRY-3); not retryable.
    INVALID_CURSOR = "invalid_cursor"


RETRYABLE_CODES = frozenset({ErrorCode.STORAGE_CONNECTION_FAILED, ErrorCode.TIMEOUT})

#: Codes that report a backend failure (FLUSH-3 accepts any of them).
STORAGE_CODES = frozenset(
    {
        ErrorCode.STORAGE_ERROR,
        ErrorCode.STORAGE_CONNECTION_FAILED,
        ErrorCode.STORAGE_WRITE_FAILED,
        ErrorCode.STORAGE_READ_FAILED,
        ErrorCode.TIMEOUT,
    }
)


class StoreError(Exception):
    """A store operation failed: ``code`` says how; a backend error is chained as ``__cause__``."""

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.code = ErrorCode(code)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(f"[{self.code.value}] {message}")

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the error picklable so it survives xdist and multiprocessing boundaries.
        return (type(self), (self.code, self.message, self.details))


def validation_error(message: str, **details: Any) -> StoreError:
    return StoreError(ErrorCode.VALIDATION_ERROR, message, details)


def dependency_not_available(
    dependency: str, module: str, operation: str, extra: str
) -> StoreError:
    """DEP-1: the error for a missing optional dependency, naming the pip extra that provides it."""
    return StoreError(
        ErrorCode.DEPENDENCY_NOT_AVAILABLE,
        f"{operation} needs the optional dependency {dependency!r} (module {module!r}); "
        f"install it with: pip install 'pytest-asm-contract[{extra}]'",
        {"dependency": dependency, "module": module, "operation": operation, "extra": extra},
    )
