"""The fault target for stores on a botocore client (boto3's ``client("s3")``), and a counter.

Handlers are registered on that client's own event system, so nothing is patched globally and
other clients are untouched. A call is a write unless its operation name starts with Get, Head,
List, Select or Describe. Before a write is sent (``before-call``) the policy may fail it with
what botocore itself raises for a failed call: ``ClientError`` with code ``InternalError``
(HTTP 500) by default, ``SlowDown`` (HTTP 503, throttling), or ``EndpointConnectionError``.
Once the service answered a write (``after-call``) the policy may lose the reply: a
``ReadTimeoutError``, as if the answer never arrived.

``RequestCounter`` counts the HTTP requests a client sends (``before-send``, so retries count),
by operation; the S3 tests and the S3 cost benchmark use it. botocore is imported only when a
target or counter is built (contract DEP-1).
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pytest_asm_contract._faults.policies import FailNthWrite, When
from pytest_asm_contract._faults.protocols import Policy

#: Operations that only read.
READ_OPERATION_PREFIXES = ("Get", "Head", "List", "Select", "Describe")

ErrorKind = Literal["internal", "throttle", "connection"]
_ids = itertools.count()


def is_write(operation_name: str) -> bool:
    """Whether a botocore operation changes something (not Get/Head/List/Select/Describe)."""
    return not operation_name.startswith(READ_OPERATION_PREFIXES)


def is_client(target: object) -> bool:
    """Whether ``target`` is a botocore client, told by its shape."""
    meta = getattr(target, "meta", None)
    return meta is not None and hasattr(meta, "events") and hasattr(meta, "service_model")


def _exceptions() -> Any:
    return importlib.import_module("botocore.exceptions")


def _error(kind: ErrorKind, operation: str, message: str) -> Exception:
    exceptions = _exceptions()
    if kind == "connection":
        error: Exception = exceptions.EndpointConnectionError(endpoint_url=message)
        return error
    code, status = ("SlowDown", 503) if kind == "throttle" else ("InternalError", 500)
    error = exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )
    return error


class BotocoreTarget:
    """Fails the writes one botocore client makes where the armed policy says."""

    kind = "botocore client"

    def __init__(self, client: Any, *, error: ErrorKind = "internal") -> None:
        if not is_client(client):
            raise TypeError(f"{type(client).__name__} is not a botocore client")
        self._timeout_error: Any = _exceptions().ReadTimeoutError  # fails now if botocore is gone
        self._client = client
        self._kind: ErrorKind = error
        self._handlers: list[tuple[str, Callable[..., None], str]] = []

    def arm(self, policy: Policy) -> None:
        kind, timeout_error = self._kind, self._timeout_error

        def before_call(model: Any = None, **_: Any) -> None:
            name = str(getattr(model, "name", "") or "")
            if is_write(name):
                message = policy.before_write(name)
                if message is not None:
                    raise _error(kind, name, message)

        def after_call(model: Any = None, http_response: Any = None, **_: Any) -> None:
            name = str(getattr(model, "name", "") or "")
            if not is_write(name) or getattr(http_response, "status_code", 200) >= 300:
                return
            message = policy.after_write(name)
            if message is not None:
                raise timeout_error(
                    endpoint_url=f"{message} ({name} succeeded, the reply was lost)"
                )

        for event, handler in (("before-call", before_call), ("after-call", after_call)):
            unique_id = f"asm-fault-{next(_ids)}"
            self._client.meta.events.register(event, handler, unique_id=unique_id)
            self._handlers.append((event, handler, unique_id))

    def disarm(self) -> None:
        while self._handlers:
            event, handler, unique_id = self._handlers.pop()
            self._client.meta.events.unregister(event, handler, unique_id=unique_id)


@contextlib.contextmanager
def failing_write(
    client: Any, fail_at: int, *, when: When = "before", error: ErrorKind = "internal"
) -> Iterator[FailNthWrite]:
    """Within the block, the ``fail_at``-th write through ``client`` fails (once)."""
    policy = FailNthWrite(fail_at, when=when)
    target = BotocoreTarget(client, error=error)
    target.arm(policy)
    try:
        yield policy
    finally:
        target.disarm()


class RequestCounter:
    """Counts the HTTP requests (retries included) a botocore client sends, by operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._unique_id = f"asm-count-{next(_ids)}"
        self.by_operation: collections.Counter[str] = collections.Counter()

    def _count(self, request: Any = None, event_name: str = "", **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1] if event_name else "?"
        with self._lock:
            self.by_operation[operation] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_operation.values())

    @property
    def writes(self) -> int:
        with self._lock:
            return sum(n for op, n in self.by_operation.items() if is_write(op))

    def reset(self) -> None:
        with self._lock:
            self.by_operation.clear()

    def __enter__(self) -> RequestCounter:
        self._client.meta.events.register("before-send", self._count, unique_id=self._unique_id)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.meta.events.unregister("before-send", self._count, unique_id=self._unique_id)


__all__ = [
    "READ_OPERATION_PREFIXES",
    "BotocoreTarget",
    "RequestCounter",
    "failing_write",
    "is_client",
    "is_write",
]
