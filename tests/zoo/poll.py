"""Broken stores for the POLL rules (wait_timeout_ms and long polling)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pytest_asm_contract._contract.model import Event, EventType
from reference_stores.memory import InMemorySessionStore


class PollReturnsEarly(InMemorySessionStore):
    """A long poll wakes on any append, to any session, and returns what matches then, even []."""

    BREAKS = ("POLL-1",)

    def get_events(
        self, session_id: str, *, wait_timeout_ms: int | None = None, **filters: Any
    ) -> list[Event]:
        with self._lock:
            found = super().get_events(session_id, **filters)
            if found or not wait_timeout_ms:
                return found
            self._appended.wait(wait_timeout_ms / 1000)
            return super().get_events(session_id, **filters)


class PollIgnoresFilters(InMemorySessionStore):
    """Once a long poll has had to wait, it returns the first events appended to the session,
    whatever their run_id and type."""

    BREAKS = ("POLL-1",)

    def get_events(
        self, session_id: str, *, wait_timeout_ms: int | None = None, **filters: Any
    ) -> list[Event]:
        with self._lock:
            found = super().get_events(session_id, **filters)
            if found or not wait_timeout_ms:
                return found
            seen = self.get_latest_sequence(session_id)
            deadline = time.monotonic() + wait_timeout_ms / 1000
            while (remaining := deadline - time.monotonic()) > 0:
                self._appended.wait(remaining)
                new = super().get_events(session_id, after=seen)
                if new:
                    return new
            return []


class LongPollNeverBlocks(InMemorySessionStore):
    """The store declares long_poll but ignores wait_timeout_ms: it never waits."""

    BREAKS = ("POLL-1",)
    capabilities = frozenset({"long_poll"})

    def get_events(
        self, session_id: str, *, wait_timeout_ms: int | None = None, **filters: Any
    ) -> list[Event]:
        return super().get_events(session_id, **filters)


class RejectsWaitTimeout(InMemorySessionStore):
    """get_events has no wait_timeout_ms keyword (the store offers no long polling), so callers
    that pass it get a raw TypeError."""

    BREAKS = ("POLL-0", "PORT-1")
    # get_events lacks the wait_timeout_ms keyword, which PORT-1 checks
    capabilities = frozenset()

    def get_events(  # type: ignore[override]
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        return super().get_events(
            session_id,
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
        )


class BlocksWithoutLongPoll(InMemorySessionStore):
    """The store waits for wait_timeout_ms but does not declare long_poll, so callers that rely on
    an immediate answer hang. (The kit waits 10 s before calling it blocked.)"""

    BREAKS = ("POLL-0",)
    capabilities = frozenset()
