"""Ambiguous failures: the write happened, but the caller is told it failed and retries.

A client that gets ``storage_connection_failed`` or ``timeout`` back from a write cannot know
whether the write took effect; the only safe thing it can do is retry the same call, with the
same event ids, and the contract makes that safe: a retry stores nothing twice and hands back the
events as first stored (IDEM-1), even while the first attempt is still running (IDEM-4), and a
retried flush leaves one copy of everything (FLUSH-4).

Two ways to make a write fail ambiguously:

* :class:`AmbiguousStore` wraps any store object. For a seeded share of the write calls it
  either runs the call and then raises a retryable ``StoreError`` (the reply was lost), raises
  before running it (the request was lost), or starts the call in the background and raises
  ``timeout`` as soon as it has begun, so the retry races the first attempt.
* :class:`BackendAmbiguity` works below the store, through the fault hook of ``faults.py``
  (``asm_fault_target``): on a SQLAlchemy Engine it commits the transaction and then raises the
  driver's ``OperationalError`` as if the connection dropped before the reply; on a botocore
  client it lets a write request succeed and then raises ``ReadTimeoutError``. The store itself
  sees the failure and must report it as a ``StoreError``; the caller retries on any storage
  code, since it cannot tell a write that failed from one whose reply was lost.

:class:`RetryingClient` is the client: it retries a call until it succeeds (bounded) and records
it in the history as one call spanning all its attempts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import importlib
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pytest_asm_contract._concurrency.history import (
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
from pytest_asm_contract._faults.gate import BackendFault, FaultGate
from pytest_asm_contract._faults.injection import (
    HOOK,
    FaultHookError,
    chain_mentions,
    hook_targets,
    target_kind,
)

MARKER = "ambiguous failure injected by pytest-asm-contract"
#: A call is failed at most this many times, so every call completes within a few attempts.
MAX_INJECTED_PER_CALL = 2
MAX_ATTEMPTS = 2 * MAX_INJECTED_PER_CALL + 4
JOIN_GUARD_S = 300.0


class Ambiguity(enum.StrEnum):
    LOST_REPLY = "lost_reply"
    LOST_REQUEST = "lost_request"
    TIMED_OUT = "timed_out"


_context = threading.local()


def _current() -> tuple[str | None, int]:
    return getattr(_context, "key", None), getattr(_context, "attempt", 0)


@contextlib.contextmanager
def attempt_of(key: str, attempt: int) -> Iterator[None]:
    """Within the block, writes on this thread belong to attempt ``attempt`` of call ``key``."""
    previous = _current()
    _context.key, _context.attempt = key, attempt
    try:
        yield
    finally:
        _context.key, _context.attempt = previous


def _decide(seed: int, key: str, attempt: int, rate: float) -> random.Random | None:
    """The seeded choice for one attempt: a generator to draw the details from, or None."""
    if attempt > MAX_INJECTED_PER_CALL:
        return None
    rng = random.Random(f"{seed}:{key}:{attempt}")
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
        key, attempt = _current()
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
        rng = random.Random(f"{self.seed}:defer:{pending.key}:{pending.attempt}")
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


# -- below the store: through the fault hook ----------------------------------------------------
class _Target:
    def arm(self, decide: Callable[[], random.Random | None]) -> None:
        raise NotImplementedError

    def disarm(self) -> None:
        raise NotImplementedError


class _SqlAlchemyCommit(_Target):
    """Commit the transaction, then raise as if the connection dropped before the reply."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._event = importlib.import_module("sqlalchemy.event")
        self._listener: Callable[[Any], None] | None = None

    def arm(self, decide: Callable[[], random.Random | None]) -> None:
        error_type: type[Exception] = self._engine.dialect.loaded_dbapi.OperationalError

        def commit(connection: Any) -> None:
            if decide() is None:
                return
            connection.connection.dbapi_connection.commit()
            raise error_type(f"{MARKER}: the connection was lost after COMMIT was sent")

        self._listener = commit
        self._event.listen(self._engine, "commit", commit)

    def disarm(self) -> None:
        if self._listener is not None:
            self._event.remove(self._engine, "commit", self._listener)
            self._listener = None


class _BotocoreAfterCall(_Target):
    """Let a write request succeed, then raise a read timeout as if the reply never came."""

    EVENT = "after-call"
    READS = ("Get", "Head", "List", "Select", "Describe")

    def __init__(self, client: Any) -> None:
        self._client = client
        self._exceptions = importlib.import_module("botocore.exceptions")
        self._handler: Callable[..., None] | None = None
        self._unique_id = f"asm-ambiguous-{id(self):x}"

    def arm(self, decide: Callable[[], random.Random | None]) -> None:
        timeout_error: Any = self._exceptions.ReadTimeoutError

        def after_call(model: Any = None, http_response: Any = None, **kwargs: Any) -> None:
            name = getattr(model, "name", "") or ""
            if name.startswith(self.READS):
                return
            status = getattr(http_response, "status_code", 200)
            if status >= 300 or decide() is None:
                return
            raise timeout_error(endpoint_url=f"{MARKER} ({name} succeeded, the reply was lost)")

        self._handler = after_call
        self._client.meta.events.register(self.EVENT, after_call, unique_id=self._unique_id)

    def disarm(self) -> None:
        if self._handler is not None:
            self._client.meta.events.unregister(
                self.EVENT, self._handler, unique_id=self._unique_id
            )
            self._handler = None


class _GateAfterCommit(_Target):
    """Let the operation take effect, then raise as if the backend's reply never came."""

    def __init__(self, gate: FaultGate) -> None:
        self._gate = gate

    def arm(self, decide: Callable[[], random.Random | None]) -> None:
        def after_commit(what: str) -> None:
            if decide() is not None:
                raise BackendFault(f"{MARKER}: {what} took effect, the reply was lost")

        self._gate.set_after_commit(after_commit)

    def disarm(self) -> None:
        self._gate.set_after_commit(None)


def _adapt(target: object) -> _Target:
    if isinstance(target, FaultGate):
        return _GateAfterCommit(target)
    if target_kind(target, "ambiguous failures") == "sqlalchemy":
        return _SqlAlchemyCommit(target)
    return _BotocoreAfterCall(target)


class BackendAmbiguity:
    """Ambiguous failures below a store, at the write requests its fault hook's targets see.

    Each backend write (a SQL commit, an S3 write request) made on behalf of a client call
    (:func:`attempt_of`) fails after taking effect with seeded probability, at most
    ``MAX_INJECTED_PER_CALL`` times per call attempt key.
    """

    def __init__(self, targets: Sequence[object], seed: int, rate: float = 0.25) -> None:
        if not targets:
            raise FaultHookError(f"{HOOK}() returned no target")
        self._targets = [_adapt(target) for target in targets]
        self._seed = seed
        self._rate = rate
        self._lock = threading.Lock()
        self._seen: Counter[tuple[str, int]] = Counter()
        self._per_key: Counter[str] = Counter()
        self.injected = 0

    def _decide(self) -> random.Random | None:
        key, attempt = _current()
        if key is None:
            return None
        with self._lock:
            self._seen[(key, attempt)] += 1
            nth = self._seen[(key, attempt)]
            if self._per_key[key] >= MAX_INJECTED_PER_CALL:
                return None
            rng = random.Random(f"{self._seed}:{key}:{attempt}:{nth}")
            if rng.random() >= self._rate:
                return None
            self._per_key[key] += 1
            self.injected += 1
            return rng

    @contextlib.contextmanager
    def armed(self) -> Iterator[BackendAmbiguity]:
        armed: list[_Target] = []
        try:
            for target in self._targets:
                target.arm(self._decide)
                armed.append(target)
            yield self
        finally:
            for target in armed:
                target.disarm()


def backend_ambiguity(store: object, seed: int, rate: float = 0.25) -> BackendAmbiguity | None:
    """Ambiguous failures through ``store``'s fault hook, or None when it has none."""
    targets = hook_targets(store)
    return None if targets is None else BackendAmbiguity(targets, seed, rate)


def is_injected(error: BaseException | None) -> bool:
    """Whether ``error`` (or an exception it chains) is an ambiguous failure injected here."""
    return chain_mentions(error, MARKER)


STORAGE_RETRY = frozenset(STORAGE_CODES)

__all__ = [
    "STORAGE_RETRY",
    "Ambiguity",
    "AmbiguousStore",
    "BackendAmbiguity",
    "RetryingClient",
    "attempt_of",
    "backend_ambiguity",
    "is_injected",
]
