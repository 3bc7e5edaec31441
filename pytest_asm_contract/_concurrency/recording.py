"""Recording concurrent store calls: what each client saw, and when.

A *history* is every call that threads (and processes) made on a store during a workload: the
operation, its input, its result or exception, and when it started and ended
(``time.monotonic_ns()``, which is system-wide, so calls recorded in different processes on one
machine compare), plus the state the store was left in. ``checking.py`` judges it.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, Run, Session

T = TypeVar("T")


class Op(enum.StrEnum):
    """The store operations a history records."""

    APPEND = "append_event_with_sequence"
    APPEND_QUIET = "append_event"
    BATCH = "append_events"
    FLUSH = "flush"
    READ = "get_events"
    LATEST = "get_latest_sequence"
    GET_RUN = "get_run"
    GET_SESSION = "get_session"
    # maintenance beside the clients (MNT-7)
    PRUNE = "prune_session_events"
    HARD_DELETE = "hard_delete_expired_sessions"

    @property
    def writes(self) -> bool:
        return self in WRITES


WRITES = frozenset({Op.APPEND, Op.APPEND_QUIET, Op.BATCH, Op.FLUSH})


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptError:
    """An attempt of a retried call that raised after the caller had stopped waiting for it."""

    code: str | None
    text: str


@dataclasses.dataclass(slots=True)
class Call:
    """One store call as a client saw it.

    ``fresh`` holds the ids this call introduces (by the workload's plan); a deliberate repeat of
    a stored id is in ``events`` but not in ``fresh``. Callers racing on one new id all list it
    in ``fresh``. ``also`` holds the results of earlier attempts of a retried call that returned
    after the caller had given up on them (they must agree with ``result``).
    """

    worker: str
    op: Op
    start: int
    end: int
    events: tuple[Event, ...] = ()
    fresh: frozenset[str] = frozenset()
    session_id: str | None = None
    after: int | None = None
    limit: int | None = None
    run_id: str | None = None
    flushed_session: Session | None = None
    flushed_run: Run | None = None
    result: Any = None
    error: str | None = None
    error_code: str | None = None
    attempts: int = 1
    also: tuple[Any, ...] = ()
    label: str = ""
    key: str = ""
    index: int = -1

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def absent(self) -> bool:
        """A ``get_run``/``get_session`` that found nothing: an observation, not a failure."""
        return self.error_code in (ErrorCode.RUN_NOT_FOUND, ErrorCode.SESSION_NOT_FOUND) and (
            self.op in (Op.GET_RUN, Op.GET_SESSION)
        )

    @property
    def failed(self) -> bool:
        return self.error is not None and not self.absent

    @property
    def retried(self) -> bool:
        """A retried call may have taken effect more than once (a flush re-saves its records)."""
        return self.attempts > 1 or bool(self.also)


def describe_error(error: BaseException) -> tuple[str, str | None]:
    """A one-line description of ``error`` and its contract code (None for a raw exception)."""
    if isinstance(error, StoreError):
        return f"StoreError({error.code.value}): {error.message}", error.code.value
    return f"{type(error).__module__}.{type(error).__name__}: {error}", None


class Recorder:
    """Records the calls of one thread (no locking: give each thread its own recorder)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.calls: list[Call] = []

    def call(self, op: Op, fn: Callable[[], T], **fields: Any) -> T | None:
        """Run ``fn`` as one ``op`` call and record it; return its result (None if it raised)."""
        start = time.monotonic_ns()
        try:
            result = fn()
        except Exception as error:
            end = time.monotonic_ns()
            text, code = describe_error(error)
            self.calls.append(
                Call(self.worker, op, start, end, error=text, error_code=code, **fields)
            )
            return None
        end = time.monotonic_ns()
        self.calls.append(Call(self.worker, op, start, end, result=result, **fields))
        return result


@dataclasses.dataclass
class History:
    """The calls of one workload and the state the store was left in."""

    calls: list[Call]
    final_events: dict[str, list[Event]]
    final_sessions: dict[str, Session | None] = dataclasses.field(default_factory=dict)
    final_runs: dict[str, Run | None] = dataclasses.field(default_factory=dict)
    initial_sessions: dict[str, Session] = dataclasses.field(default_factory=dict)
    seed: int = 0
    description: str = ""
    final_errors: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.calls.sort(key=lambda c: (c.start, c.end, c.worker))
        for index, call in enumerate(self.calls):
            call.index = index

    @property
    def origin(self) -> int:
        return min((c.start for c in self.calls), default=0)


def merge(recorders: Iterable[Recorder | Sequence[Call]]) -> list[Call]:
    """The calls of several recorders (or lists of calls from other processes) in one list."""
    return list(
        itertools.chain.from_iterable(r.calls if isinstance(r, Recorder) else r for r in recorders)
    )


__all__ = [
    "WRITES",
    "AttemptError",
    "Call",
    "History",
    "Op",
    "Recorder",
    "describe_error",
    "merge",
]
