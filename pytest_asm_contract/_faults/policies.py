"""The two fault policies: fail the k-th write (FLUSH-3), or lose replies (ambiguous failures).

Both work over the same targets (``targets.py``): a target asks its policy before each write and
after each write took effect, and raises its backend's own error when the policy answers with a
message. A policy never raises itself and never waits, so it cannot change a store's timing.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Literal, TypeVar

from pytest_asm_contract._faults.protocols import Policy

#: Every injected failure says this, so a test can tell it from a real one in a cause chain.
FAULT_MARKER = "fault injected by pytest-asm-contract"
AMBIGUITY_MARKER = "ambiguous failure injected by pytest-asm-contract"
#: A call is failed at most this many times, so every call completes within a few attempts.
MAX_INJECTED_PER_CALL = 2
#: How many writes an outage fails: more than any store retries, few enough that one retrying
#: without end still completes (and is then checked as a store that got through).
OUTAGE_WRITES = 100

When = Literal["before", "after"]
P = TypeVar("P", bound=Policy)


class FailNthWrite:
    """Fail the ``fail_at``-th write seen from now on: once, or as an outage.

    ``when="before"``: the write never reaches the backend (FLUSH-3: nothing of the operation
    may then be visible). ``when="after"``: the write took effect and its reply is lost.
    ``outage=True``: that write and every later one fail (up to ``OUTAGE_WRITES``), as when the
    backend is gone: a store's own retries cannot complete the operation, so it must surface.
    """

    def __init__(self, fail_at: int, *, when: When = "before", outage: bool = False) -> None:
        if fail_at < 1:
            raise ValueError("fail_at counts from 1")
        self.fail_at = fail_at
        self.when: When = when
        self.outage = outage
        self.writes_seen = 0
        self.failed = 0
        self.fired_on: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def counting(cls) -> FailNthWrite:
        """A policy that only counts the writes it is asked about."""
        return cls(2**62)

    @property
    def fired(self) -> bool:
        return self.fired_on is not None

    def _count(self, what: str) -> str | None:
        with self._lock:
            self.writes_seen += 1
            if self.writes_seen < self.fail_at:
                return None
            if self.fired_on is not None and not (self.outage and self.failed < OUTAGE_WRITES):
                return None
            if self.fired_on is None:
                self.fired_on = what
            self.failed += 1
            number = self.writes_seen
        return f"{FAULT_MARKER}: write #{number} failed ({what[:80]})"

    def before_write(self, what: str) -> str | None:
        return self._count(what) if self.when == "before" else None

    def after_write(self, what: str) -> str | None:
        return self._count(what) if self.when == "after" else None


class Relay:
    """Hands each question to the policy of the moment; with none, every write passes.

    For targets that stay armed across several steps of a check (the driver targets, whose
    sqlite3 connections are only seen when opened while armed): each step swaps the policy.
    """

    def __init__(self) -> None:
        self._policy: Policy | None = None

    @contextlib.contextmanager
    def using(self, policy: P) -> Iterator[P]:
        """Within the block, ``policy`` answers."""
        previous, self._policy = self._policy, policy
        try:
            yield policy
        finally:
            self._policy = previous

    def before_write(self, what: str) -> str | None:
        policy = self._policy
        return None if policy is None else policy.before_write(what)

    def after_write(self, what: str) -> str | None:
        policy = self._policy
        return None if policy is None else policy.after_write(what)


# -- which client call a write belongs to ----------------------------------------------------
#: A context variable, not a thread-local: an async store's writes run in tasks (and threads)
#: that copy the calling context, so they still belong to the client call that made them.
_attempt: contextvars.ContextVar[tuple[str | None, int]] = contextvars.ContextVar(
    "asm_attempt", default=(None, 0)
)


def current_attempt() -> tuple[str | None, int]:
    """The client call (its key) and attempt number the running code works for."""
    return _attempt.get()


@contextlib.contextmanager
def attempt_of(key: str, attempt: int) -> Iterator[None]:
    """Within the block, writes made in this context belong to attempt ``attempt`` of ``key``."""
    token = _attempt.set((key, attempt))
    try:
        yield
    finally:
        _attempt.reset(token)


def seeded_choice(seed: int, *parts: object) -> random.Random:
    """A generator fixed by the run's seed and the parts that name one decision."""
    return random.Random(":".join(map(str, (seed, *parts))))


class LostReplies:
    """Lose the replies of writes that took effect, for a seeded share of the client's calls.

    Each write made on behalf of a client call (:func:`attempt_of`) loses its reply with
    probability ``rate``, decided by the seed, the call's key, its attempt and the write's
    position in it, never by timing; at most ``MAX_INJECTED_PER_CALL`` times per call.
    Writes outside any call pass untouched.
    """

    def __init__(self, seed: int, rate: float = 0.25) -> None:
        self._seed = seed
        self._rate = rate
        self._lock = threading.Lock()
        self._seen: Counter[tuple[str, int]] = Counter()
        self._per_key: Counter[str] = Counter()
        self.injected = 0

    def before_write(self, what: str) -> str | None:
        return None

    def after_write(self, what: str) -> str | None:
        key, attempt = current_attempt()
        if key is None:
            return None
        with self._lock:
            self._seen[(key, attempt)] += 1
            nth = self._seen[(key, attempt)]
            if self._per_key[key] >= MAX_INJECTED_PER_CALL:
                return None
            if seeded_choice(self._seed, key, attempt, nth).random() >= self._rate:
                return None
            self._per_key[key] += 1
            self.injected += 1
        return f"{AMBIGUITY_MARKER}: {what[:80]} took effect, the reply was lost"


def chain_mentions(error: BaseException | None, marker: str) -> bool:
    """Whether ``error``, or an exception it chains, says ``marker``."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if marker in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def is_injected(error: BaseException | None) -> bool:
    """Whether ``error`` (or an exception it chains) is a write failed by ``FailNthWrite``."""
    return chain_mentions(error, FAULT_MARKER)


__all__ = [
    "AMBIGUITY_MARKER",
    "FAULT_MARKER",
    "MAX_INJECTED_PER_CALL",
    "FailNthWrite",
    "LostReplies",
    "Relay",
    "When",
    "attempt_of",
    "chain_mentions",
    "current_attempt",
    "is_injected",
    "seeded_choice",
]
