"""An event loop the kit owns, running in a daemon thread of its own, for one async store.

Async drivers bind their connections to the loop they were opened on, so an async store lives
on one loop from its construction to its ``close()``. :class:`LoopThread` runs that loop;
:meth:`LoopThread.run` hands it a call from any other thread and waits for the result. Calls
from several threads at once become concurrent tasks on the one loop, which is how an async
service calls its store.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from pytest_asm_contract._concurrency.threads import HANG_GUARD_S

T = TypeVar("T")
P = ParamSpec("P")


class LoopClosed(RuntimeError):
    """A call reached a loop that was already stopped (the store was closed)."""


async def _invoke(call: Callable[[], T | Awaitable[T]]) -> T:
    """``call()`` on the loop, awaited when it returns an awaitable."""
    result = call()
    if inspect.isawaitable(result):
        return await result
    return result


def _settle(outcome: Future[T], task: asyncio.Task[T]) -> None:
    if task.cancelled():  # the loop wound down under a call (the store closed meanwhile)
        outcome.set_exception(CancelledError())
    elif (error := task.exception()) is not None:
        outcome.set_exception(error)
    else:
        outcome.set_result(task.result())


class DaemonThreads(ThreadPoolExecutor):
    """The loop's default executor (``asyncio.to_thread``): as many calls at once as asyncio's
    own default, each in a daemon thread.

    asyncio's default pool joins its threads when the interpreter exits, so one call a broken
    store left blocked (a long poll of ten minutes whose caller gave up) would hold the kit's
    process that long after the run; the kit's own threads are daemons for the same reason.
    """

    def __init__(self, name: str) -> None:
        super().__init__(thread_name_prefix=name)
        self._name = name
        self._slots = threading.BoundedSemaphore(min(32, (os.cpu_count() or 1) + 4))

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()

        def work() -> None:
            with self._slots:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:
                    future.set_exception(error)
                else:
                    future.set_result(result)

        threading.Thread(target=work, name=f"{self._name}-call", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to join: calls still running finish (or not) in their daemon threads."""


class LoopThread:
    """One event loop running forever in a daemon thread, until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._loop.set_default_executor(DaemonThreads(f"{name}-to-thread"))
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._wind_down()

    def _wind_down(self) -> None:
        """Most of what ``asyncio.run`` does on its way out: cancel what is left (a task the store
        forgot, a call whose caller gave up), finish async generators, close the loop.

        Unlike ``asyncio.run`` it does not wait for the default executor's threads (they are
        daemons, :class:`DaemonThreads`): a call the store left blocked in a thread cannot hold
        up the kit, just as a sync store's abandoned call in a kit thread does not.
        """
        loop = self._loop
        try:
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def run(self, call: Callable[[], T | Awaitable[T]]) -> T:
        """``call()`` as a task on the loop (awaited if it returns an awaitable), from another
        thread; its result, or the exception it raised, unchanged.

        The task runs in a copy of the calling thread's context (``contextvars``), as a task
        created by the caller would: what the caller set for the call reaches the store's
        coroutine and, through ``asyncio.to_thread``, its worker threads.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"{self.name}: a call from the loop's own thread would deadlock")
        outcome: Future[T] = Future()

        def start() -> None:  # on the loop, in the caller's context, which the task copies
            if outcome.set_running_or_notify_cancel():
                task = self._loop.create_task(_invoke(call))
                task.add_done_callback(functools.partial(_settle, outcome))

        try:
            self._loop.call_soon_threadsafe(start, context=contextvars.copy_context())
        except RuntimeError:  # the loop is closed
            raise LoopClosed(f"{self.name}: the store was closed, its event loop stopped") from None
        return outcome.result()

    def stop(self) -> None:
        """Stop the loop, let it wind down in its thread and join that thread. The join carries
        the kit's hang guard: only a store whose leftover tasks ignore cancellation reaches it."""
        if self._thread is threading.current_thread():
            raise RuntimeError(f"{self.name}: the loop cannot stop itself from its own thread")
        # a loop closed in between has nothing left to stop
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(HANG_GUARD_S)


__all__ = ["DaemonThreads", "LoopClosed", "LoopThread"]
