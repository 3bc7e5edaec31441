"""The asyncio counterparts of the sync SQL store's thread primitives, for the async store.

``AsyncSqlSessionStore`` runs ``SqlSessionStore``'s code inside SQLAlchemy's greenlet bridge, on
the loop's thread: there, a thread primitive that waits (a lock, a condition, a semaphore)
would block the whole loop, and with it the task that would release it. Each class here keeps
the interface of the one it replaces and waits on the loop instead, by ``await_only`` from
inside the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from pytest_asm_contract._contract.model import Event
from reference_stores.sql.combiner import MAX_ROUNDS_PER_LEADER

# DEP-1: only the async store, which names its extra when SQLAlchemy is missing, uses this module.
with contextlib.suppress(ImportError):
    from sqlalchemy.util import await_only


class LoopLock:
    """An ``asyncio.Lock`` used as a plain context manager from inside the greenlet bridge: the
    writers of one store queue on the loop instead of blocking it."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    def __enter__(self) -> None:
        await_only(self._lock.acquire())

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class LoopGate:
    """The async pool queues waiting tasks in order itself: no gate in front of it."""

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        yield


class LoopWaiter:
    """The long poll's wake-up (``notify.Waiter``'s interface) on the loop: a generation counter
    and the futures of the readers waiting for it to move. A cancelled or timed-out reader
    removes its own future, so nothing it leaves behind can swallow a later wake-up (ASYNC-4)."""

    def __init__(self) -> None:
        self._generation = 0
        self._waiting: set[asyncio.Future[None]] = set()

    def token(self) -> int:
        return self._generation

    def bump(self) -> None:
        self._generation += 1
        for future in self._waiting:
            if not future.done():
                future.set_result(None)

    def wait(self, token: int, timeout: float) -> None:
        await_only(self._wait(token, timeout))

    async def _wait(self, token: int, timeout: float) -> None:
        if self._generation != token:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.add(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiting.discard(future)


#: What a waiting caller is told when it is to lead the next group itself.
_LEAD = object()
_Entry = tuple[list[Event], "asyncio.Future[Any] | None"]


class LoopGroupCommit:
    """Group commit on the loop (the sync store's ``Combiner``, for tasks): concurrent appends
    of one store share one transaction, so a SQLite file's single writer commits many at once.

    The first caller leads: inside its own task it writes its batch and every batch queued so
    far in one transaction, a few rounds at most, then hands over to the oldest waiting caller.
    A failed group is retried batch by batch, so one bad batch cannot fail the others. A waiting
    caller that is cancelled leaves its batch to the leader (written whole, or not at all); a
    leader cancelled mid-write (its transaction rolled back whole) gives the batches it had not
    written back to the queue, and the next caller leads.
    """

    def __init__(self, run_group: Callable[[list[list[Event]]], list[list[Event]]]) -> None:
        self._run_group = run_group
        self._pending: list[_Entry] = []
        self._leading = False

    def submit(self, batch: list[Event]) -> list[Event]:
        """Called inside the caller's greenlet: wait for a leader, or lead."""
        while self._leading:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            entry: _Entry = (batch, future)
            self._pending.append(entry)
            try:
                outcome = await_only(asyncio.shield(future))
            except BaseException:  # cancelled while waiting
                if any(e is entry for e in self._pending):  # not taken: never written
                    self._pending = [e for e in self._pending if e is not entry]
                elif future.done() and _told_to_lead(future):
                    self._hand_over()  # it was to lead next: the next waiting caller does
                raise
            if outcome is not _LEAD:
                result: list[Event] = outcome
                return result
        return self._lead(batch)

    def _lead(self, batch: list[Event]) -> list[Event]:
        self._leading = True
        own: list[Any] = []  # the leader's result, or its error
        try:
            group: list[_Entry] = [(batch, None), *self._take()]
            for _ in range(MAX_ROUNDS_PER_LEADER):
                self._execute(group, own)
                group = self._take()
                if not group:
                    break
            else:
                self._pending[:0] = group  # a new leader takes them
        finally:
            self._leading = False
            self._hand_over()
        if isinstance(own[0], BaseException):
            raise own[0]
        written: list[Event] = own[0]
        return written

    def _hand_over(self) -> None:
        """The oldest waiting caller leads next."""
        if self._pending and not self._leading:
            _, future = self._pending.pop(0)
            if future is not None and not future.done():
                future.set_result(_LEAD)

    def _take(self) -> list[_Entry]:
        group, self._pending = self._pending, []
        return group

    def _execute(self, group: list[_Entry], own: list[Any]) -> None:
        unfinished = list(group)

        def finish(entry: _Entry, outcome: Any) -> None:
            unfinished.remove(entry)
            future = entry[1]
            if future is None:
                own.append(outcome)
            elif not future.done():
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

        try:
            try:
                results = self._run_group([b for b, _ in group])
            except Exception as error:
                if len(group) == 1:
                    finish(group[0], error)
                    return
                for entry in group:  # one batch may be the culprit: give each its own try
                    try:
                        finish(entry, self._run_group([entry[0]])[0])
                    except Exception as single_error:
                        finish(entry, single_error)
                return
            for entry, result in zip(group, results, strict=True):
                finish(entry, result)
        except BaseException:  # the leader was cancelled: what it did not write goes back
            self._pending[:0] = [e for e in unfinished if e[1] is not None]
            raise


def _told_to_lead(future: asyncio.Future[Any]) -> bool:
    return not future.cancelled() and future.exception() is None and future.result() is _LEAD


__all__ = ["LoopGate", "LoopGroupCommit", "LoopLock", "LoopWaiter"]
