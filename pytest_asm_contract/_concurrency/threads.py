"""Running callables in threads released together, with hang guards instead of sleeps.

Every threaded check of the kit goes through :func:`run_threads`: the suite's races on one
session, the history workloads and the threads inside worker processes. A barrier releases the
threads together, so they contend from their first call; joins carry a generous guard that only
a deadlocked store reaches.

While the threads run, CPython switches between them far more often than it does by default
(:class:`SwitchInterval`): at the default 5 ms a thread finishes a short critical section long
before the interpreter interrupts it, so a store that forgot its lock would pass most runs.

Even then, threads released together need not overlap: CPython hands the GIL over only once a
waiting thread has been scheduled to ask for it, which on a loaded machine takes milliseconds,
so a fixed round of short calls can run one after another. Checks that must see a race repeat
their calls until enough of them really ran concurrently (:class:`Contention`).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

T = TypeVar("T")

#: Only a hung store reaches this; no check depends on how long anything takes.
HANG_GUARD_S = 300.0
#: How often (seconds) CPython switches threads while racing threads run: often enough that an
#: unguarded read-then-write of a few Python lines is interrupted in nearly every run.
RACE_SWITCH_INTERVAL_S = 1e-6


class SwitchInterval:
    """``sys.setswitchinterval`` for as long as any racing threads run, shared by overlapping runs.

    The interval is process-wide, and ``run_threads`` calls overlap (a workload's threads inside
    a check's threads, several checks under a thread-pool runner): the first run to enter sets
    it, the last one to leave restores the value found by the first, even when a run fails.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0.0

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(self.interval)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    sys.setswitchinterval(self._saved)


RACING = SwitchInterval(RACE_SWITCH_INTERVAL_S)


class ThreadsFailed(AssertionError):
    """A call raised in one or more threads; the first error is chained as the cause."""

    def __init__(self, message: str, errors: list[tuple[str, BaseException, str]]) -> None:
        super().__init__(message)
        self.errors = errors


class ThreadsHung(AssertionError):
    """Threads had not finished after the hang guard (a deadlock in the store?)."""


def run_threads(
    work: Mapping[str, Callable[[], T]],
    *,
    together: bool = True,
    guard: float = HANG_GUARD_S,
) -> dict[str, T]:
    """Run each callable in a thread of its own (named by its key); return the results by name.

    ``together``: a barrier releases every thread at once. Raises ``ThreadsHung`` when a thread
    outlives ``guard`` seconds and ``ThreadsFailed`` when any call raised.
    """
    barrier = threading.Barrier(len(work)) if together and work else None
    results: dict[str, T] = {}
    errors: list[tuple[str, BaseException, str]] = []
    lock = threading.Lock()

    def main(name: str, call: Callable[[], T]) -> None:
        try:
            if barrier is not None:
                barrier.wait(guard)
            result = call()
        except BaseException as error:
            if barrier is not None:
                barrier.abort()
            with lock:
                errors.append((name, error, traceback.format_exc(limit=8)))
            return
        with lock:
            results[name] = result

    threads = [
        threading.Thread(target=main, args=(name, call), name=f"asm-{name}", daemon=True)
        for name, call in work.items()
    ]
    with RACING.active():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(guard)
    hung = [thread.name for thread in threads if thread.is_alive()]
    if hung:
        raise ThreadsHung(
            f"{len(hung)} of {len(threads)} threads had not finished after {guard:.0f}s "
            f"(a deadlock in the store?): {', '.join(hung[:5])}"
        )
    real = [e for e in errors if not isinstance(e[1], threading.BrokenBarrierError)] or errors
    if real:
        name, error, _ = real[0]
        raise ThreadsFailed(
            f"{len(real)} of {len(threads)} concurrent threads failed; first ({name}): "
            f"{type(error).__name__}: {error}",
            real,
        ) from error
    return results


class Countdown:
    """Set once ``count`` parties have called :meth:`done`; readers keep reading until then."""

    def __init__(self, count: int) -> None:
        self._left = count
        self._lock = threading.Lock()
        self.finished = threading.Event()
        if count <= 0:
            self.finished.set()

    def done(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left <= 0:
                self.finished.set()


class Contention:
    """Counts the calls during which another call began: the calls that really ran concurrently.

    A race check wraps each store call in :meth:`call` and lets each thread make calls for as
    long as :meth:`turns` yields: at least one, then until ``budget`` calls were contended, or
    ``most`` calls were made (a bound for a store whose calls never overlap). How many calls
    that takes adapts to the machine's load; no clock is read. A call that began at the same
    moment as another may go uncounted, which only makes the threads go on a little longer.
    """

    def __init__(self, budget: int, most: int) -> None:
        self.budget = budget
        self.most = most
        # list.append and len() are atomic: counting takes no lock that would serialise calls
        self._begun: list[None] = []
        self._contended: list[None] = []

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, counted as contended if another call began before it returned."""
        self._begun.append(None)
        mine = len(self._begun)
        try:
            return fn()
        finally:
            if len(self._begun) > mine:
                self._contended.append(None)

    @property
    def calls(self) -> int:
        return len(self._begun)

    @property
    def contended(self) -> int:
        return len(self._contended)

    @property
    def met(self) -> bool:
        return self.contended >= self.budget or self.calls >= self.most

    def turns(self) -> Iterator[int]:
        """A thread's turns, 0, 1, 2, ...: the first always, the others until :attr:`met`."""
        turn = 0
        while turn == 0 or not self.met:
            yield turn
            turn += 1

    def __str__(self) -> str:
        return f"{self.contended} of {self.calls} calls overlapped another"


def run_indexed(count: int, work: Callable[[int], T], *, guard: float = HANG_GUARD_S) -> list[T]:
    """``work(0) .. work(count - 1)`` in threads released together; the results in index order."""
    results = run_threads({f"t{i}": functools.partial(work, i) for i in range(count)}, guard=guard)
    return [results[f"t{i}"] for i in range(count)]


__all__ = [
    "HANG_GUARD_S",
    "RACE_SWITCH_INTERVAL_S",
    "RACING",
    "Contention",
    "Countdown",
    "SwitchInterval",
    "ThreadsFailed",
    "ThreadsHung",
    "run_indexed",
    "run_threads",
]
