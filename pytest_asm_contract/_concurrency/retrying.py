"""Ambiguous failures above the store, and the client that retries them.

A client that gets ``storage_connection_failed`` or ``timeout`` back from a write cannot know
whether the write took effect; the only safe thing it can do is retry the same call, with the
same event ids, and the contract makes that safe: a retry stores nothing twice and hands back the
events as first stored (IDEM-1), even while the first attempt is still running (IDEM-4), and a
retried flush leaves one copy of everything (FLUSH-4).

:class:`AmbiguousStore` wraps any store object. For a seeded share of the write calls it either
runs the call and then raises a retryable ``StoreError`` (the reply was lost), raises before
running it (the request was lost), or starts the call in the background and raises ``timeout``
as soon as it has begun, so the retry races the first attempt. Below the store, the same
ambiguity comes from the fault layer's ``LostReplies`` policy on the store's own backend.

:class:`RetryingClient` is the client: it retries a call until it succeeds (bounded) and records
it in the history as one call spanning all its attempts.
"""

from __future__ import annotations

import dataclasses
import enum
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_asm_contract._concurrency.recording import (
    AttemptError,
    Call,
    Op,
    Recorder,
    describe_error,
)
from pytest_asm_contract._contract.errors import (
    RETRYABLE_CODES,
    STORAGE_CODES,
    ErrorCode,
    StoreError,
)
from pytest_asm_contract._contract.model import Event, ExecutionResult
from pytest_asm_contract._faults.policies import (
    AMBIGUITY_MARKER,
    MAX_INJECTED_PER_CALL,
    attempt_of,
    current_attempt,
    seeded_choice,
)

MARKER = AMBIGUITY_MARKER
MAX_ATTEMPTS = 2 * MAX_INJECTED_PER_CALL + 4
JOIN_GUARD_S = 300.0
#: The codes a client retries when failures below the store may hide a write that happened.
STORAGE_RETRY = frozenset(STORAGE_CODES)


class Ambiguity(enum.StrEnum):
    LOST_REPLY = "lost_reply"
    LOST_REQUEST = "lost_request"
    TIMED_OUT = "timed_out"


def _decide(seed: int, key: str, attempt: int, rate: float) -> random.Random | None:
    """The seeded choice for one attempt: a generator to draw the details from, or None."""
    if attempt > MAX_INJECTED_PER_CALL:
        return None
    rng = seeded_choice(seed, key, attempt)
    return rng if rng.random() < rate else None


def _retryable_error(rng: random.Random, what: str) -> StoreError:
    code = rng.choice(sorted(RETRYABLE_CODES))
    return StoreError(code, f"{MARKER}: {what}", {"injected": True})


class AmbiguousStore:
    """A store wrapper whose write calls sometimes fail ambiguously (see the module docstring).

    Which attempts fail is fixed by ``seed`` and the calling client's call key and attempt
    number (:func:`attempt_of`), never by timing. Calls made outside :func:`attempt_of` pass
    through untouched. Everything but the four write operations is passed through.
    """

    def __init__(
        self,
        store: Any,
        seed: int,
        rate: float = 0.35,
        modes: Sequence[Ambiguity] = tuple(Ambiguity),
    ) -> None:
        self._store = store
        self._seed = seed
        self._rate = rate
        self._modes = tuple(modes)
        self._lock = threading.Lock()
        self._background: list[threading.Thread] = []
        self.outcomes: dict[str, list[Any]] = defaultdict(list)
        self.injected: Counter[Ambiguity] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def append_event(self, event: Event) -> None:
        self._write("append_event", event)

    def append_event_with_sequence(self, event: Event) -> Event:
        result: Event = self._write("append_event_with_sequence", event)
        return result

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        result: list[Event] = self._write("append_events", events)
        return result

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        self._write("flush", result)

    def _write(self, name: str, argument: Any) -> Any:
        method = getattr(self._store, name)
        key, attempt = current_attempt()
        rng = None if key is None else _decide(self._seed, key, attempt, self._rate)
        if rng is None or key is None:
            return method(argument)
        mode = rng.choice(self._modes)
        with self._lock:
            self.injected[mode] += 1
        if mode is Ambiguity.LOST_REQUEST:
            raise _retryable_error(rng, f"{name} was not sent")
        if mode is Ambiguity.LOST_REPLY:
            method(argument)
            raise _retryable_error(rng, f"{name} ran, but its reply was lost")
        started = threading.Event()

        def first_attempt() -> None:
            started.set()
            try:
                outcome: Any = method(argument)
            except Exception as error:
                text, code = describe_error(error)
                outcome = AttemptError(code, text)
            with self._lock:
                self.outcomes[key].append(outcome)

        thread = threading.Thread(target=first_attempt, name=f"asm-timed-out-{key}", daemon=True)
        with self._lock:
            self._background.append(thread)
        thread.start()
        started.wait()
        raise StoreError(
            ErrorCode.TIMEOUT,
            f"{MARKER}: {name} timed out for the caller and is still running",
            {"injected": True},
        )

    def join(self) -> None:
        """Wait for the attempts that were left running (a hang guard only)."""
        with self._lock:
            threads = list(self._background)
        for thread in threads:
            thread.join(JOIN_GUARD_S)
        if any(t.is_alive() for t in threads):
            raise RuntimeError(
                f"an attempt left running by an injected timeout had not finished after "
                f"{JOIN_GUARD_S:.0f}s"
            )

    def attach(self, calls: Sequence[Call]) -> None:
        """Give each recorded call the outcomes of its attempts that outlived their timeout."""
        for call in calls:
            if call.key in self.outcomes:
                call.also = tuple(self.outcomes[call.key])


@dataclasses.dataclass
class _Pending:
    op: Op
    fn: Callable[[], Any]
    fields: dict[str, Any]
    key: str
    start: int
    attempt: int


class RetryingClient:
    """Makes each write like a careful client: retry the same call while the error allows it.

    ``retry_on`` is the set of codes that may hide a write that happened: the retryable codes for
    :class:`AmbiguousStore`, every storage code for :class:`BackendAmbiguity`. A seeded share of
    the failed calls is not retried at once but put off until the writer's phase ends
    (:meth:`settle`), as a pipeline with a retry queue does: by then other writers have stored
    many events, so the retry no longer lands right after the first attempt.
    """

    def __init__(
        self,
        retry_on: frozenset[ErrorCode] = RETRYABLE_CODES,
        seed: int = 0,
        defer_rate: float = 0.5,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.retry_on = retry_on
        self.seed = seed
        self.defer_rate = defer_rate
        self.max_attempts = max_attempts
        self.retries = 0
        self.deferred = 0
        self._lock = threading.Lock()
        self._pending: dict[str, list[_Pending]] = defaultdict(list)

    def __call__(
        self, recorder: Recorder, op: Op, fn: Callable[[], Any], fields: dict[str, Any]
    ) -> Any:
        key = str(fields.get("key") or f"{recorder.worker}-{len(recorder.calls)}")
        pending = _Pending(op, fn, fields, key, time.monotonic_ns(), 0)
        return self._attempt(recorder, pending, may_defer=True)

    def _attempt(self, recorder: Recorder, pending: _Pending, may_defer: bool) -> Any:
        while True:
            pending.attempt += 1
            try:
                with attempt_of(pending.key, pending.attempt):
                    result = pending.fn()
            except StoreError as error:
                if error.code in self.retry_on and pending.attempt < self.max_attempts:
                    with self._lock:
                        self.retries += 1
                    if may_defer and self._defer(pending):
                        with self._lock:
                            self.deferred += 1
                            self._pending[recorder.worker].append(pending)
                        return None
                    continue
                self._record(recorder, pending, error=error)
                return None
            except Exception as error:
                self._record(recorder, pending, error=error)
                return None
            self._record(recorder, pending, result=result)
            return result

    def _defer(self, pending: _Pending) -> bool:
        rng = seeded_choice(self.seed, "defer", pending.key, pending.attempt)
        return rng.random() < self.defer_rate

    def settle(self, recorder: Recorder) -> None:
        """Retry the calls this writer put off (called at the end of each phase)."""
        with self._lock:
            waiting = self._pending.pop(recorder.worker, [])
        for pending in waiting:
            self._attempt(recorder, pending, may_defer=False)

    @staticmethod
    def _record(
        recorder: Recorder,
        pending: _Pending,
        result: Any = None,
        error: BaseException | None = None,
    ) -> None:
        end = time.monotonic_ns()
        text, code = describe_error(error) if error is not None else (None, None)
        recorder.calls.append(
            Call(
                recorder.worker,
                pending.op,
                pending.start,
                end,
                result=result,
                error=text,
                error_code=code,
                attempts=pending.attempt,
                **pending.fields,
            )
        )


__all__ = [
    "MAX_ATTEMPTS",
    "STORAGE_RETRY",
    "Ambiguity",
    "AmbiguousStore",
    "RetryingClient",
]
