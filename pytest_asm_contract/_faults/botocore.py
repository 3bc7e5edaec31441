"""Fault injection and request counting for stores built on a botocore client.

A store whose fault hook (``asm_fault_target()``, see ``_faults.injection``) returns a
botocore client (boto3's ``client("s3")``) gets its faults from ``BotocoreTarget``: event handlers
registered on that client's own event system, so nothing is patched globally and other clients are
untouched. A call is a write unless its operation name starts with Get, Head, List, Select or
Describe; the k-th write of an armed plan fails:

* ``when="before"`` (the default): a ``before-call`` handler raises before the request is built,
  so the write never reaches the service. This is the failure FLUSH-3 is about: the operation
  must report it and leave nothing partial.
* ``when="after"``: an ``after-call`` handler raises once the service has answered, so the write
  took effect but its caller hears of a failure (a lost response). A store must still never
  expose part of an operation, and repeating the operation must complete it.

The raised error is what botocore itself raises for a failed call: ``ClientError`` with code
``InternalError`` (HTTP 500), ``SlowDown`` (HTTP 503, throttling), or for ``error="connection"``
an ``EndpointConnectionError``.

``RequestCounter`` counts the HTTP requests a client sends (``before-send``, so retries count),
by operation; the S3 cost benchmark uses it.

botocore is imported only when a target or counter is built (contract DEP-1).
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol

#: Operations that only read.
READ_OPERATION_PREFIXES = ("Get", "Head", "List", "Select", "Describe")

When = Literal["before", "after"]
ErrorKind = Literal["internal", "throttle", "connection"]
_ids = itertools.count()


class Plan(Protocol):
    """What a target needs of an armed plan (``injection.FaultPlan``)."""

    def next_write_fails(self, what: str) -> bool: ...

    def message(self) -> str: ...


def is_write(operation_name: str) -> bool:
    """Whether a botocore operation changes something (not Get/Head/List/Select/Describe)."""
    return not operation_name.startswith(READ_OPERATION_PREFIXES)


def _botocore_exceptions() -> Any:
    return importlib.import_module("botocore.exceptions")


def _error(kind: ErrorKind, operation: str, message: str) -> Exception:
    exceptions = _botocore_exceptions()
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
    """Fails the armed plan's k-th write made through one botocore client.

    Same interface as the targets of ``_faults.injection`` (``arm``/``disarm``).
    """

    def __init__(self, client: Any, *, when: When = "before", error: ErrorKind = "internal"):
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is None or not hasattr(events, "register"):
            raise TypeError(f"{type(client).__name__} is not a botocore client")
        _botocore_exceptions()  # fail now, not inside a handler, if botocore is missing
        self._client = client
        self._when: When = when
        self._kind: ErrorKind = error
        self._event = "before-call" if when == "before" else "after-call"
        self._unique_id = f"asm-fault-{next(_ids)}"
        self._handler: Callable[..., None] | None = None

    def arm(self, plan: Plan) -> None:
        if self._handler is not None:
            raise RuntimeError("this target is already armed")
        kind = self._kind

        def handler(model: Any = None, **_: Any) -> None:
            name = str(getattr(model, "name", "") or "")
            if is_write(name) and plan.next_write_fails(name):
                raise _error(kind, name, plan.message())

        self._handler = handler
        self._client.meta.events.register(self._event, handler, unique_id=self._unique_id)

    def disarm(self) -> None:
        if self._handler is not None:
            self._client.meta.events.unregister(
                self._event, self._handler, unique_id=self._unique_id
            )
            self._handler = None


class CountingPlan:
    """A plan for ``BotocoreTarget`` on its own: fail the ``fail_at``-th write, once."""

    def __init__(self, fail_at: int, marker: str = "fault injected by pytest-asm-contract"):
        if fail_at < 1:
            raise ValueError("fail_at counts from 1")
        self.fail_at = fail_at
        self.writes_seen = 0
        self.fired_on: str | None = None
        self._marker = marker
        self._lock = threading.Lock()

    @property
    def fired(self) -> bool:
        return self.fired_on is not None

    def next_write_fails(self, what: str) -> bool:
        with self._lock:
            self.writes_seen += 1
            if self.writes_seen == self.fail_at and self.fired_on is None:
                self.fired_on = what
                return True
            return False

    def message(self) -> str:
        return f"{self._marker}: write #{self.fail_at} failed ({self.fired_on or ''})"


@contextlib.contextmanager
def failing_write(
    client: Any, fail_at: int, *, when: When = "before", error: ErrorKind = "internal"
) -> Iterator[CountingPlan]:
    """Within the block, the ``fail_at``-th write through ``client`` fails (once)."""
    plan = CountingPlan(fail_at)
    target = BotocoreTarget(client, when=when, error=error)
    target.arm(plan)
    try:
        yield plan
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
    "CountingPlan",
    "RequestCounter",
    "failing_write",
    "is_write",
]
