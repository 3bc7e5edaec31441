"""Concurrent tasks started on an async store's own event loop (ASYNC-3, ASYNC-4).

The thread-driven checks reach an async store as tasks only through the kit's facade, one task
per thread. The ASYNC checks start their tasks on the store's loop themselves, as an async service
does: :func:`run_on_loop` runs a check's coroutine there, :func:`together` releases many calls at
once behind an ``asyncio.Event``, and :func:`until_waiting` turns the loop until a task is
suspended, counting loop iterations instead of sleeping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest

from pytest_asm_contract._concurrency.async_bridge import AsyncStoreFacade
from pytest_asm_contract._concurrency.threads import RACING

T = TypeVar("T")

NOT_ASYNC = "the store's operations are not async def: ASYNC rules apply to async stores"
#: How long a check's tasks may run before the check calls the store hung. Only a hung store, or
#: one that blocks its loop, gets near it.
HANG_GUARD_S = 60.0
#: Loop iterations a task must stay suspended on one future before it counts as waiting.
SETTLE_TURNS = 10
#: Iterations after which a task still pending counts as waiting whatever it awaits.
MAX_TURNS = 10_000


def async_store(store: Any) -> AsyncStoreFacade:
    """The facade of the async store under test; skips the check for a sync store."""
    if not isinstance(store, AsyncStoreFacade):
        pytest.skip(NOT_ASYNC)
    return store


async def _guarded(work: Awaitable[T], guard: float) -> T:
    try:
        async with asyncio.timeout(guard):
            return await work
    except TimeoutError:
        raise AssertionError(
            f"the check's tasks had not finished after {guard:.0f}s (a hung store?)"
        ) from None


def run_on_loop(
    facade: AsyncStoreFacade, main: Callable[[Any], Awaitable[T]], guard: float = HANG_GUARD_S
) -> T:
    """``main(store)`` as a task on the async store's own loop; its result, or its exception.

    Waits in this thread with a guard of its own too: a store that blocks its loop also stops
    the loop's timeouts. While it runs, threads switch as often as in the threaded races, so a
    store whose tasks hand work to threads meets their races too.
    """
    loop: asyncio.AbstractEventLoop = facade.asm_loop_thread.run(asyncio.get_running_loop)
    with RACING.active():
        future = asyncio.run_coroutine_threadsafe(
            _guarded(main(facade.asm_async_store), guard), loop
        )
        try:
            return future.result(guard + 10)
        except concurrent.futures.TimeoutError:
            future.cancel()
    pytest.fail(
        f"the check's tasks had not finished after {guard:.0f}s and the store's event loop "
        "did not respond: an operation blocks the loop",
        pytrace=False,
    )


class TasksFailed(AssertionError):
    """One or more of the tasks released together raised; the first error is the cause."""


async def together(calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Each call in a task of its own, all released at once; the results in call order.

    Every task is created and runs up to the barrier before any of them calls the store, so they
    contend from their first await. Raises ``TasksFailed`` once all have ended if any raised.
    """
    go = asyncio.Event()

    async def start(call: Callable[[], Awaitable[T]]) -> T:
        await go.wait()
        return await call()

    tasks = [asyncio.create_task(start(call)) for call in calls]
    await asyncio.sleep(0)  # each task runs up to the barrier
    go.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, BaseException)]
    if errors:
        index, error = errors[0]
        raise TasksFailed(
            f"{len(errors)} of {len(tasks)} concurrent tasks failed; first (task {index}): "
            f"{type(error).__name__}: {error}"
        ) from error
    return [o for o in outcomes if not isinstance(o, BaseException)]


async def until_waiting(task: asyncio.Task[Any], settle: int = SETTLE_TURNS) -> int:
    """Turn the loop until ``task`` has been suspended on one future for ``settle`` iterations
    in a row (or is still pending after ``MAX_TURNS``); the iterations it took, or minus the
    iteration in which the task was found ended instead (-1: it ended before this task ran
    again).

    ``Task._fut_waiter`` is the future a task is suspended on (CPython); where it is missing,
    ``settle`` iterations with the task pending count as waiting.
    """
    waiter: object = None
    same = 0
    for turn in range(1, MAX_TURNS + 1):
        await asyncio.sleep(0)
        if task.done():
            return -turn
        current = getattr(task, "_fut_waiter", task)
        same = same + 1 if current is not None and current is waiter else 0
        waiter = current
        if same >= settle:
            return turn
    return MAX_TURNS


__all__ = [
    "HANG_GUARD_S",
    "MAX_TURNS",
    "NOT_ASYNC",
    "SETTLE_TURNS",
    "TasksFailed",
    "async_store",
    "run_on_loop",
    "together",
    "until_waiting",
]
