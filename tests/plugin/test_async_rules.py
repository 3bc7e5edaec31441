"""The machinery behind ASYNC-1 and ASYNC-2: await points counted and cancelled without timing,
work handed to threads and tasks waited for, a held loop blamed on the call that held it, and
both checks skipped for a sync store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from pytest_asm_contract._concurrency.cancellation import Attempt, run_counted
from pytest_asm_contract._concurrency.heartbeat import Call, Heartbeat, Span, TimedStore, blame
from tests.verdicts import run_kit

GUARD_S = 60.0


class Steps:
    """A write of six await points: a thread, a bare yield, a timer inside a child task (the
    child's own point, and its parent's wait), a commit under ``asyncio.shield`` (the same two)."""

    def __init__(self) -> None:
        self.done: list[str] = []

    def _note(self, step: str) -> None:
        self.done.append(step)

    async def _commit(self) -> None:
        await asyncio.sleep(0)
        self._note("commit")

    async def write(self) -> str:
        await asyncio.to_thread(self._note, "thread")  # 1
        await asyncio.sleep(0)  # 2
        await asyncio.create_task(asyncio.sleep(0.001))  # 3 (the parent waits), 4 (the child)
        await asyncio.shield(self._commit())  # 5 (the parent waits), 6 (the commit's yield)
        return "written"


def _attempt(steps: Steps, cancel_at: int | None) -> Attempt:
    return asyncio.run(run_counted(steps.write, cancel_at, GUARD_S))


def test_each_await_point_is_counted_and_cancelled_at_the_same_place_every_run() -> None:
    whole = _attempt(Steps(), None)
    assert (whole.points, whole.cancelled_at_k, whole.result) == (6, False, "written")
    for k in range(1, 7):
        outcomes = set()
        for _ in range(3):
            steps = Steps()
            attempt = _attempt(steps, k)
            assert attempt.cancelled_at_k and attempt.cancelled and attempt.points == k
            outcomes.add(tuple(steps.done))
        # before point 1 nothing is sure to have run: the thread may not have started
        expected = {(), ("thread",)} if k == 1 else {("thread",)}
        # a commit under shield, once created, finishes: the check waits for it
        expected = {(*o, "commit") for o in expected} if k >= 5 else expected
        assert outcomes <= expected, (k, outcomes)
    assert not _attempt(Steps(), 7).cancelled_at_k


def test_work_a_cancelled_call_left_running_is_waited_for() -> None:
    finished: list[str] = []

    async def slow_commit() -> None:
        await asyncio.sleep(0.05)
        finished.append("task")

    def slow_write() -> None:
        time.sleep(0.05)
        finished.append("thread")

    async def write() -> None:
        asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.05)  # never awaited
        await asyncio.to_thread(slow_write)
        await asyncio.shield(slow_commit())

    attempt = asyncio.run(run_counted(write, 1, GUARD_S))
    assert attempt.cancelled and attempt.unsettled == 0
    assert finished in ([], ["thread"]), "a thread started before the cancellation is finished"
    finished.clear()
    attempt = asyncio.run(run_counted(write, 2, GUARD_S))
    assert attempt.cancelled and finished == ["thread", "task"]


class Blocking:
    async def held(self) -> None:
        time.sleep(0.15)  # a sync call inside async def

    async def yielding(self) -> None:
        await asyncio.sleep(0.02)


def _blamed(*calls: Callable[[Any], Any]) -> list[str]:
    async def main() -> list[str]:
        timed = TimedStore(Blocking())
        async with Heartbeat() as beat:
            for call in calls:
                await call(timed)
        return [label for label, _ in blame(beat.gaps, timed.calls)]

    return asyncio.run(main())


def test_the_heartbeat_blames_the_call_that_held_the_loop() -> None:
    # Only that much is certain: a loaded machine may stall the process during any call too
    # (the check confirms a blamed operation alone before it fails a store).
    assert "held" in _blamed(lambda s: s.yielding(), lambda s: s.held())


def test_a_gap_is_blamed_on_the_call_covering_most_of_it() -> None:
    calls = [Call("first", Span(0.0, 1.0)), Call("second", Span(1.0, 1.3))]
    gaps = [Span(0.95, 1.25), Span(0.5, 0.7), Span(2.0, 2.2), Span(1.2, 1.5)]
    assert blame(gaps, calls) == [("second", gaps[0]), ("first", gaps[1])]


def test_a_sync_store_skips_both_checks(pytester: pytest.Pytester) -> None:
    result, verdicts = run_kit(
        pytester,
        "--asm-store=reference_stores.memory:InMemorySessionStore",
        "--asm-rules=ASYNC-1,ASYNC-2",
        "-rs",
    )
    assert verdicts.status("ASYNC-1") == verdicts.status("ASYNC-2") == "skipped"
    result.stdout.fnmatch_lines(
        ["*the store's operations are not async def: ASYNC rules apply to async stores*"]
    )
