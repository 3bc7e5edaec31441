"""Cancelling an async store's call at its k-th await point, deterministically (ASYNC-1).

An await point is one suspension of the call: each time its coroutine, or the coroutine of a task
it started, yields to the event loop, on a future or with a bare yield (``asyncio.sleep(0)``).
:func:`run_counted` runs the call as a task whose coroutine is stepped through a counting wrapper;
at the k-th suspension the wrapper cancels the call's task right there, before the loop runs
anything else, so the point never depends on timing. (Polling ``Task._fut_waiter`` from another
task would not do: a bare yield leaves it None, and a future a worker thread completes may be
done, and the task moved on, before the poller looks.)

Cancelling an await does not stop work already handed to a thread (``run_in_executor``,
``asyncio.to_thread``) or to a task the call started (``asyncio.shield``): the write may complete
after the cancelled task has ended. So while the call runs, the loop's ``run_in_executor`` and
task factory are wrapped to track that work, and :func:`run_counted` returns once all of it has
finished, or, for thread work not started yet, will never start (as when the cancellation of its
future reaches the executor first).
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

#: How long the tasks a cancelled call started may keep running before the check reads the
#: state anyway: a task that outlives it is taken for a background task of the store.
SETTLE_GUARD_S = 10.0


@dataclasses.dataclass
class Attempt:
    """How one run of a call ended."""

    #: Await points the call reached (when cancelled: the point it was cancelled at).
    points: int
    #: Whether the cancellation was delivered (the call reached point k).
    cancelled_at_k: bool
    #: The call's task ended cancelled (CancelledError reached the caller).
    cancelled: bool = False
    result: object = None
    error: BaseException | None = None
    #: Tasks the call started that were still running when the state was read.
    unsettled: int = 0

    @property
    def ending(self) -> str:
        if self.cancelled:
            return "raised CancelledError"
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {self.error}"
        return "returned normally"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _ThreadWork:
    """One function the call handed to ``run_in_executor``: started, or dropped unstarted."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._state = "waiting"
        self.over: asyncio.Future[None] = loop.create_future()
        self.future: asyncio.Future[Any] | None = None

    def run(self, func: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            if self._state == "dropped":
                return None  # nobody waits for it: its future was cancelled before it started
            self._state = "running"
        try:
            return func(*args)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed since (a hung call)
                self._loop.call_soon_threadsafe(_resolve, self.over)

    def drop_unless_started(self) -> None:
        """Called once its future is cancelled: unstarted work never starts, as when the
        future's cancellation reaches the executor before a thread picks the work up."""
        with self._lock:
            if self._state == "waiting":
                self._state = "dropped"
                _resolve(self.over)


class _Tracker:
    """The call's task, the tasks it started (its family) and the thread work they handed
    out; counts their suspensions and cancels the call's task at the k-th."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cancel_at: int | None) -> None:
        self.loop = loop
        self.cancel_at = cancel_at
        self.points = 0
        self.reached = False
        self.reached_points = 0
        self.root: asyncio.Task[Any] | None = None
        self.family: set[asyncio.Task[Any]] = set()
        self.thread_work: list[_ThreadWork] = []

    def suspended(self) -> None:
        root = self.root
        if root is None or root.done():
            return  # a task the call started, still running after the call ended
        self.points += 1
        if self.points == self.cancel_at:
            self.reached = True
            self.reached_points = self.points
            # From inside the step: the task cancels the future it is about to wait on (or, after
            # a bare yield, is woken with CancelledError), as a cancel() while it waited would.
            root.cancel()

    def in_call(self) -> bool:
        current = asyncio.current_task(self.loop)
        return current is not None and current in self.family and not self.root_done()

    def root_done(self) -> bool:
        return self.root is None or self.root.done()

    def task_factory(self, previous: Any) -> Callable[..., asyncio.Task[Any]]:
        def create(
            loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
        ) -> asyncio.Task[Any]:
            counted = self.in_call()
            if counted:
                coro = _Counted(coro, self)
            if previous is not None:
                task: asyncio.Task[Any] = previous(loop, coro, **kwargs)
            else:
                task = asyncio.Task(coro, loop=loop, **kwargs)
            if counted:
                self.family.add(task)
            return task

        return create

    def run_in_executor(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def run_in_executor(executor: Any, func: Callable[..., Any], *args: Any) -> Any:
            if not self.in_call():
                return original(executor, func, *args)
            work = _ThreadWork(self.loop)
            work.future = original(executor, work.run, func, *args)
            self.thread_work.append(work)
            return work.future

        return run_in_executor


class _Counted(collections.abc.Coroutine[Any, Any, Any]):
    """``coro`` as it is, counting each suspension: what the task steps instead of it.

    A proxy rather than an ``async def`` around it, so that a task cancelled before its first
    step throws into ``coro`` itself, as it would without the proxy (and ``coro`` is closed)."""

    def __init__(self, coro: Coroutine[Any, Any, Any], tracker: _Tracker) -> None:
        self._coro, self._tracker = coro, tracker

    def send(self, value: Any) -> Any:
        yielded = self._coro.send(value)
        self._tracker.suspended()
        return yielded

    def throw(self, *error: Any) -> Any:
        yielded = self._coro.throw(*error)
        self._tracker.suspended()
        return yielded

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield from self._coro.__await__())


async def _awaited(call: Callable[[], Awaitable[Any]]) -> Any:
    return await call()


async def _settle(tracker: _Tracker, guard: float) -> int:
    """Wait for the call's tasks and thread work; the tasks still running after ``guard``."""
    loop = tracker.loop
    deadline = loop.time() + guard
    while True:
        for work in tracker.thread_work:
            if work.future is not None and work.future.cancelled():
                work.drop_unless_started()
        pending: list[asyncio.Future[Any]] = [t for t in tracker.family if not t.done()]
        pending += [w.over for w in tracker.thread_work if not w.over.done()]
        remaining = deadline - loop.time()
        if not pending or remaining <= 0:
            return sum(1 for t in tracker.family if not t.done())
        await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)


async def run_counted(
    call: Callable[[], Awaitable[Any]], cancel_at: int | None, guard: float
) -> Attempt:
    """Run ``call()`` on this loop, cancelled at its ``cancel_at``-th await point (never when
    None); how it ended, once the work it started has settled. Raises ``AssertionError`` when
    the call has not ended after ``guard`` seconds."""
    loop = asyncio.get_running_loop()
    tracker = _Tracker(loop, cancel_at)
    previous = loop.get_task_factory()
    loop.set_task_factory(tracker.task_factory(previous))
    tracked = tracker.run_in_executor(loop.run_in_executor)
    try:  # an instance attribute shadows the method
        loop.run_in_executor = tracked  # type: ignore[method-assign,assignment]
        shadowed = True
    except AttributeError:  # a loop written in C (uvloop): its thread work is not waited for
        shadowed = False
    try:
        root = loop.create_task(_Counted(_awaited(call), tracker))
        tracker.root = root
        tracker.family.add(root)
        done, _ = await asyncio.wait({root}, timeout=guard)
        if not done:
            where = f" after cancelling it at await point {cancel_at}" if tracker.reached else ""
            raise AssertionError(f"the call had not ended {guard:.0f}s{where} (a hung store?)")
        attempt = Attempt(tracker.reached_points or tracker.points, tracker.reached)
        if root.cancelled():
            attempt.cancelled = True
        elif (error := root.exception()) is not None:
            attempt.error = error
        else:
            attempt.result = root.result()
        attempt.unsettled = await _settle(tracker, min(guard, SETTLE_GUARD_S))
        return attempt
    finally:
        if shadowed:
            del loop.run_in_executor  # the loop's own method again
        loop.set_task_factory(previous)


__all__ = ["SETTLE_GUARD_S", "Attempt", "run_counted"]
