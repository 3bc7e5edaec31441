"""ASYNC-4: long polls cooperate with the event loop. A waiting ``get_events(...,
wait_timeout_ms=...)`` leaves the loop to other tasks, is woken by an append another task makes on
the same loop, and a cancelled poll leaves no waiter behind.

Every task runs on the async store's own loop. A poll counts as waiting once it has stayed
suspended on one future while the loop turned (``until_waiting``): no sleep decides anything. The
polls' timeouts and the guards only bound how long a broken store holds the check; a correct store
returns as soon as the append commits.
"""

from __future__ import annotations

import asyncio
import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.plans import derive_seed
from pytest_asm_contract._concurrency.tasks import (
    SETTLE_TURNS,
    async_store,
    run_on_loop,
    until_waiting,
)
from pytest_asm_contract._contract.model import Event, Session
from pytest_asm_contract.suite._builders import a_session, an_event, some_events

#: The polls' timeout: far beyond the moment a correct store returns, so only a poll that was
#: never woken (or that blocked the loop) reaches it.
WAIT_MS = 10_000
#: How long the check waits for a poll or a cancelled poll to end.
GUARD_S = 30.0
#: Loop iterations a poll waits, round by round, before it is cancelled: a store that awaits a
#: round trip or two before registering its waiter is cancelled while waiting in later rounds.
CANCEL_SETTLES = (SETTLE_TURNS, 100, 1000)


def _rng(seed: int, check: str) -> random.Random:
    return random.Random(derive_seed(seed, "async-poll", check))


def _poll(store: Any, session: Session, after: int) -> asyncio.Task[list[Event]]:
    return asyncio.create_task(store.get_events(session.id, after=after, wait_timeout_ms=WAIT_MS))


def _call(session: Session, after: int) -> str:
    return f"get_events({session.id!r}, after={after}, wait_timeout_ms={WAIT_MS})"


async def _settled(task: asyncio.Task[list[Event]]) -> list[Event] | str:
    """The poll's result, or what it did instead, as text."""
    await asyncio.wait({task}, timeout=GUARD_S)
    if not task.done():
        task.cancel()
        return f"had not returned {GUARD_S:.0f}s later"
    if task.cancelled():
        return "was cancelled"
    if (error := task.exception()) is not None:
        return f"raised {type(error).__name__}: {error}"
    return task.result()


async def _append(store: Any, session: Session) -> Event:
    """One event appended by a task of its own (not the poller, not the check)."""
    appended: Event = await asyncio.create_task(store.append_event_with_sequence(an_event(session)))
    return appended


def _did(found: list[Event] | str) -> str:
    return found if isinstance(found, str) else f"returned {found!r:.200}"


def _woken(found: list[Event] | str, appended: Event, elapsed: float) -> str:
    """Why the poll did not return exactly the appended event ("" when it did)."""
    if found == [appended]:
        return ""
    if isinstance(found, str):
        return found
    if not found:
        return (
            f"returned [] after {elapsed:.1f}s (its timeout is {WAIT_MS / 1000:.0f}s): the "
            f"append of #{appended.sequence_number} by another task did not wake it"
        )
    return f"returned {[(e.id, e.sequence_number) for e in found][:3]}, not [#{appended.id}]"


@contextmanager
def _loop_errors(loop: asyncio.AbstractEventLoop) -> Iterator[list[str]]:
    """What the loop's exception handler receives meanwhile (a task's exception never
    retrieved, a callback that raised), instead of a log line nobody reads."""
    caught: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(
        lambda _, context: caught.append(f"{context.get('message')} ({context.get('exception')!r})")
    )
    try:
        yield caught
    finally:
        loop.set_exception_handler(previous)


class TestAsyncPoll:
    @rule("ASYNC-4", capability="long_poll")
    def test_a_waiting_poll_lets_other_tasks_run_and_wake_it(self, asm_store: Any) -> None:
        session = a_session()

        async def main(store: Any) -> str:
            loop = asyncio.get_running_loop()
            await store.save_session(session)
            await store.append_events(some_events(session, 2))
            started = loop.time()
            poll = _poll(store, session, 2)
            turns = await until_waiting(poll)  # this task's heartbeat: it runs while poll waits
            if turns < 0:
                found, elapsed = await _settled(poll), loop.time() - started
                if -turns == 1 and elapsed >= 1:  # the heartbeat never ran while it was pending
                    return (
                        f"{_call(session, 2)} started as a task held the event loop for "
                        f"{elapsed:.1f}s: no other task ran until it {_did(found)}; a long poll "
                        "must wait on the loop (await), not block it"
                    )
                return (
                    f"{_call(session, 2)} started as a task ended after {elapsed:.1f}s with "
                    f"nothing appended: it {_did(found)}"
                )
            appended = await _append(store, session)
            problem = _woken(await _settled(poll), appended, loop.time() - started)
            return f"{_call(session, 2)}, waiting as a task, {problem}" if problem else ""

        problem = run_on_loop(async_store(asm_store), main)

        if problem:
            pytest.fail(f"ASYNC-4: {problem}", pytrace=False)

    @rule("ASYNC-4", capability="long_poll")
    def test_a_cancelled_poll_leaves_no_waiter_behind(self, asm_store: Any, asm_seed: int) -> None:
        rng = _rng(asm_seed, "cancel")
        session = a_session()
        settles = [settle + rng.randrange(SETTLE_TURNS) for settle in CANCEL_SETTLES]

        async def main(store: Any) -> str:
            loop = asyncio.get_running_loop()
            await store.save_session(session)
            with _loop_errors(loop) as errors:
                latest = 0
                for number, settle in enumerate(settles):
                    problem = await _cancel_then_poll(store, session, latest, settle)
                    if isinstance(problem, str):
                        return f"round {number} (cancelled after {settle} loop turns): {problem}"
                    latest = problem
                gc.collect()  # a task dropped with its exception unread reports it when collected
                await asyncio.sleep(0)
            if errors:
                return (
                    f"the event loop's exception handler got {len(errors)} error(s) around the "
                    f"cancelled polls; first: {errors[0]!r:.300}"
                )
            return ""

        problem = run_on_loop(async_store(asm_store), main)

        if problem:
            pytest.fail(f"ASYNC-4: {problem}", pytrace=False)

    @rule("ASYNC-4", capability="long_poll")
    def test_polls_on_several_sessions_wake_on_their_own_appends(
        self, asm_store: Any, asm_seed: int
    ) -> None:
        rng = _rng(asm_seed, "sessions")
        sessions = [a_session() for _ in range(rng.randint(3, 5))]
        order = rng.sample(range(len(sessions)), len(sessions))

        async def main(store: Any) -> str:
            loop = asyncio.get_running_loop()
            for session in sessions:
                await store.save_session(session)
            started = loop.time()
            polls = [_poll(store, session, 0) for session in sessions]
            for index, poll in enumerate(polls):
                if await until_waiting(poll) < 0:
                    found = await _settled(poll)
                    return (
                        f"the poll of session {index} ended with nothing appended: it {_did(found)}"
                    )
            for position, index in enumerate(order):
                appended = await _append(store, sessions[index])
                problem = _woken(await _settled(polls[index]), appended, loop.time() - started)
                if problem:
                    return f"the poll of session {index} ({_call(sessions[index], 0)}) {problem}"
                for other in order[position + 1 :]:
                    if polls[other].done():
                        found = await _settled(polls[other])
                        return (
                            f"the append to session {index} ended the poll of session {other}, "
                            f"which got nothing: it {_did(found)}"
                        )
            return ""

        problem = run_on_loop(async_store(asm_store), main)

        if problem:
            pytest.fail(
                f"ASYNC-4: concurrent polls on {len(sessions)} sessions: {problem}", pytrace=False
            )


async def _cancel_then_poll(store: Any, session: Session, latest: int, settle: int) -> int | str:
    """Cancel a waiting poll, then poll again and append: the new poll must get the event. The
    new latest number, or what went wrong."""
    loop = asyncio.get_running_loop()
    cancelled = _poll(store, session, latest)
    if await until_waiting(cancelled, settle) < 0:
        found = await _settled(cancelled)
        return f"{_call(session, latest)} ended with nothing appended: it {_did(found)}"
    cancelled.cancel()
    outcome = await _settled(cancelled)
    if outcome != "was cancelled":
        return (
            f"{_call(session, latest)}, cancelled while waiting, {_did(outcome)} instead of "
            "ending with CancelledError"
        )
    started = loop.time()
    poll = _poll(store, session, latest)
    if await until_waiting(poll) < 0:
        found = await _settled(poll)
        return f"a poll after the cancelled one ended with nothing appended: it {_did(found)}"
    appended = await _append(store, session)
    problem = _woken(await _settled(poll), appended, loop.time() - started)
    if problem:
        return (
            f"a poll started after a waiting poll was cancelled {problem} (the cancelled poll "
            "left a waiter behind that took the wake-up?)"
        )
    return appended.sequence_number or 0


__all__ = ["TestAsyncPoll"]
