"""A broken async long poll (ASYNC-4): its waiters live on the event loop, and a cancelled poll
leaves its waiter behind.

``CancelledWaiterSwallowsWakeup`` keeps every other rule: every operation of the correct sync
store runs in a worker thread as in ``AsyncThreadFacade``, and its long polls are woken as POLL-1
says, as long as none is cancelled.

A long poll waiting in ``threading.Event.wait`` inside ``async def`` is not in the zoo: it holds
the loop, so the append that would wake it can never run there; the thread-driven POLL-1 checks
then hang until the poll's timeout, and ASYNC-2 (a blocked loop) fails as well.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pytest_asm_contract import Event, EventType, ExecutionResult
from tests.zoo.async_stores import AsyncThreadFacade


class CancelledWaiterSwallowsWakeup(AsyncThreadFacade):
    """Long polls wait on the loop in a queue of waiters per session: an append wakes the first
    waiter, and each woken poll hands the wake-up on to the next (no thundering herd). A poll that
    times out leaves the queue, but only ``TimeoutError`` is handled: a cancelled poll stays
    queued, the wake-up handed to it goes nowhere, and the polls queued behind it sleep until
    their timeout."""

    BREAKS = ("ASYNC-4",)

    def __init__(self) -> None:
        super().__init__()
        self._waiters: dict[str, deque[asyncio.Event]] = {}

    def _wake(self, session_ids: Iterable[str]) -> None:
        for session_id in set(session_ids):
            queue = self._waiters.pop(session_id, None)
            if queue:
                queue.popleft().set()

    @staticmethod
    def _pass_on(queue: deque[asyncio.Event]) -> None:
        if queue:
            queue.popleft().set()

    def _leave(self, queue: deque[asyncio.Event], waiter: asyncio.Event) -> None:
        if waiter in queue:
            queue.remove(waiter)
        elif waiter.is_set():  # it was handed a wake-up it will not pass on otherwise
            self._pass_on(queue)

    async def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> list[Event]:
        read = functools.partial(
            super().get_events,
            session_id,
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
        )
        if not wait_timeout_ms or wait_timeout_ms <= 0:
            return await read()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_timeout_ms / 1000
        while True:
            # queued before the read, so an append committed after the read still wakes it
            queue = self._waiters.setdefault(session_id, deque())
            waiter = asyncio.Event()
            queue.append(waiter)
            found = await read()
            if found:
                self._leave(queue, waiter)
                return found
            try:
                await asyncio.wait_for(waiter.wait(), deadline - loop.time())
            except TimeoutError:  # the mistake: a CancelledError leaves the waiter queued
                self._leave(queue, waiter)
                return []
            self._pass_on(queue)

    async def append_event(self, event: Event) -> None:
        await super().append_event(event)
        self._wake([event.session_id])

    async def append_event_with_sequence(self, event: Event) -> Event:
        stored = await super().append_event_with_sequence(event)
        self._wake([stored.session_id])
        return stored

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        stored = await super().append_events(events)
        self._wake(e.session_id for e in stored)
        return stored

    async def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        await super().flush(result)
        flushed = result if isinstance(result, ExecutionResult) else ExecutionResult(**result)
        self._wake([flushed.session.id])
