"""A heartbeat on an event loop, and the store calls it watches (ASYNC-2).

:class:`Heartbeat` is a task that sleeps ``TICK_S`` at a time and notes every gap between two of
its wake-ups of ``BLOCKED_S`` or more: for that long the loop ran nothing else, so something held
it without yielding. :class:`TimedStore` stands in for the async store and records when each of
its calls started and ended, so that :func:`blame` can name the call a gap fell in. Only the clock
is read, never waited on: the heartbeat's sleeps are its own ticks.

:func:`held_operations` runs every operation beside the heartbeat (``PROBES``) and calls each
operation it blamed alone again, so that a machine that stalls the process once (a loaded CI
runner) is not taken for a store that holds the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any

from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
)

#: How often the heartbeat wakes.
TICK_S = 0.01
#: A gap between wake-ups this long means the loop was held (ASYNC-2's threshold).
BLOCKED_S = 0.1
#: Only a loop that never lets the heartbeat run again gets near it.
LAST_BEAT_GUARD_S = 60.0


@dataclasses.dataclass(frozen=True)
class Span:
    """A stretch of time on ``time.monotonic()``'s clock."""

    start: float
    end: float

    def overlap(self, other: Span) -> float:
        return max(0.0, min(self.end, other.end) - max(self.start, other.start))

    @property
    def ms(self) -> int:
        return round((self.end - self.start) * 1000)


@dataclasses.dataclass(frozen=True)
class Call:
    label: str
    span: Span


class Heartbeat:
    """``async with Heartbeat() as beat:`` beats on the running loop for the block;
    ``beat.gaps`` are the stretches of ``BLOCKED_S`` or more between two wake-ups."""

    def __init__(self) -> None:
        self.gaps: list[Span] = []
        self._woke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            if now - last >= BLOCKED_S:
                self.gaps.append(Span(last, now))
            last = now
            self._woke.set()

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat())
        await self._next_beat()
        return self

    async def _next_beat(self) -> None:
        self._woke.clear()
        await asyncio.wait_for(self._woke.wait(), LAST_BEAT_GUARD_S)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._task is not None
        try:
            if kind is None:
                await self._next_beat()  # a gap that ends with the last call is noted too
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class TimedStore:
    """The async store's operations, each call recorded in ``calls`` with its label (the
    operation's name, or the one given as ``asm_label``)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: list[Call] = []

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        operation = getattr(self._store, name)

        async def timed(*args: Any, asm_label: str | None = None, **kwargs: Any) -> Any:
            start = time.monotonic()
            try:
                return await operation(*args, **kwargs)
            finally:
                self.calls.append(Call(asm_label or name, Span(start, time.monotonic())))

        return timed


def blame(gaps: list[Span], calls: list[Call]) -> list[tuple[str, Span]]:
    """Each gap with the call it fell in: the call that covers most of it, at least half (a gap
    between calls, in the check's own code, names none)."""
    found: list[tuple[str, Span]] = []
    for gap in gaps:
        best = max(calls, key=lambda call: call.span.overlap(gap), default=None)
        if best is not None and best.span.overlap(gap) * 2 >= gap.end - gap.start:
            found.append((best.label, gap))
    return found


# -- the workload --------------------------------------------------------------------------------
#: Rounds of every operation beside the heartbeat, and repeats of an operation it blamed.
ROUNDS = 3
REPEATS = 3
#: A long poll that times out: long enough that a wait holding the loop shows as a gap.
LONG_POLL_MS = 200
LONG_POLL = f"get_events(wait_timeout_ms={LONG_POLL_MS})"
_tags = itertools.count(1)

Probe = Callable[[Any, str], Awaitable[object]]
Blamed = list[tuple[str, Span]]


def _events(session_id: str, count: int) -> list[Event]:
    return [
        Event(type=EventType.MESSAGE_SENT, session_id=session_id, data={"i": i})
        for i in range(count)
    ]


async def _session(store: Any, tag: str, events: int = 0, run: bool = False) -> str:
    """A saved session (with a running run and events): what the probed call reads."""
    session_id = f"ses-beat-{tag}"
    await store.save_session(Session(id=session_id, agent_id="agent-1"))
    if run:
        await store.save_run(
            Run(id=f"run-beat-{tag}", session_id=session_id, status=RunStatus.RUNNING)
        )
    if events:
        await store.append_events(_events(session_id, events))
    return session_id


async def _then(first: Awaitable[str], then: Callable[[str], Awaitable[object]]) -> object:
    return await then(await first)


async def _flush(store: Any, tag: str) -> None:
    session = Session(id=f"ses-beat-{tag}", agent_id="agent-1")
    run = Run(id=f"run-beat-{tag}", session_id=session.id, status=RunStatus.COMPLETED)
    await store.flush(ExecutionResult(session=session, run=run, events=_events(session.id, 4)))


async def _batch(store: Any, tag: str) -> None:
    first, second = await _session(store, f"{tag}-a"), await _session(store, f"{tag}-b")
    await store.append_events([*_events(first, 3), *_events(second, 3)])


def _new_event(store: Any, operation: str) -> Callable[[str], Awaitable[object]]:
    return lambda session_id: getattr(store, operation)(_events(session_id, 1)[0])


#: Each operation's call, after what it needs: the labels the heartbeat's gaps are blamed on.
PROBES: dict[str, Probe] = {
    "save_session": lambda s, t: s.save_session(Session(id=f"ses-beat-{t}", agent_id="agent-1")),
    "get_session": lambda s, t: _then(_session(s, t), s.get_session),
    "list_sessions": lambda s, t: s.list_sessions(limit=20),
    "delete_session": lambda s, t: _then(_session(s, t, 3, True), s.delete_session),
    "save_run": lambda s, t: _then(
        _session(s, t), lambda sid: s.save_run(Run(session_id=sid, status=RunStatus.RUNNING))
    ),
    "get_run": lambda s, t: _then(_session(s, t, run=True), lambda _: s.get_run(f"run-beat-{t}")),
    "list_runs": lambda s, t: _then(_session(s, t, run=True), s.list_runs),
    "get_active_run": lambda s, t: _then(_session(s, t, run=True), s.get_active_run),
    "append_event": lambda s, t: _then(_session(s, t), _new_event(s, "append_event")),
    "append_event_with_sequence": lambda s, t: _then(
        _session(s, t), _new_event(s, "append_event_with_sequence")
    ),
    "append_events": _batch,
    "flush": _flush,
    "get_events": lambda s, t: _then(_session(s, t, 4), s.get_events),
    "get_latest_sequence": lambda s, t: _then(_session(s, t, 2), s.get_latest_sequence),
    LONG_POLL: lambda s, t: _then(
        _session(s, t),
        lambda sid: s.get_events(sid, wait_timeout_ms=LONG_POLL_MS, asm_label=LONG_POLL),
    ),
}


async def watch(store: Any, labels: list[str]) -> Blamed:
    """Run the probes of ``labels`` one after another beside a heartbeat; each gap in it with
    the call it fell in."""
    timed = TimedStore(store)
    async with Heartbeat() as beat:
        for label in labels:
            await PROBES[label](timed, f"{next(_tags)}")
    return blame(beat.gaps, timed.calls)


def held_operations(
    run: Callable[[Callable[[], Awaitable[Blamed]]], Blamed], store: Any, long_poll: bool
) -> list[str]:
    """A line for each operation that held the loop in the workload and again in most of its
    repeats alone, with the gaps measured; ``run`` awaits a coroutine on the store's loop."""
    labels = [label for label in PROBES if label != LONG_POLL]
    labels += [LONG_POLL] if long_poll else []
    suspects: dict[str, list[Span]] = {}
    for label, gap in run(functools.partial(watch, store, labels * ROUNDS)):
        suspects.setdefault(label, []).append(gap)
    lines: list[str] = []
    for label, gaps in suspects.items():
        again = [run(functools.partial(watch, store, [label])) for _ in range(REPEATS)]
        held = [[g for name, g in found if name == label] for found in again]
        if sum(1 for g in held if g) * 2 <= REPEATS:
            continue  # not again in most repeats: the machine, not the store
        alone = ", ".join(f"{max(g.ms for g in gs)} ms" if gs else "none" for gs in held)
        lines.append(
            f"  {label}: heartbeat gaps of {', '.join(f'{g.ms} ms' for g in gaps)} in the "
            f"workload; called alone {REPEATS} times: {alone}"
        )
    return lines


__all__ = [
    "BLOCKED_S",
    "LONG_POLL",
    "PROBES",
    "REPEATS",
    "ROUNDS",
    "TICK_S",
    "Call",
    "Heartbeat",
    "Span",
    "TimedStore",
    "blame",
    "held_operations",
    "watch",
]
