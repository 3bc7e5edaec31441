"""Broken stores for the EVT rules: wrong filters, wrong order, shared mutable events."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, EventType, Run
from pytest_asm_contract._contract.validation import EventQuery, as_event, as_run, check_id
from reference_stores.memory import InMemorySessionStore


class _QueryStore(InMemorySessionStore):
    """The in-memory store with get_events built on ``query_class``; mutants swap in a subclass
    of EventQuery with one mistake, or override ``_hand_out``."""

    query_class: type[EventQuery] = EventQuery

    def get_events(
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
        check_id(session_id, "session_id")
        query = self.query_class.of(
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,
        )
        deadline = time.monotonic() + (query.wait_timeout_ms or 0) / 1000
        with self._lock:
            while True:
                found = query.apply(self._events.get(session_id, ()))
                remaining = deadline - time.monotonic()
                if found or query.limit == 0 or remaining <= 0:
                    return self._hand_out(found)
                self._appended.wait(remaining)

    def _hand_out(self, found: list[Event]) -> list[Event]:
        return [event.model_copy(deep=True) for event in found]


@dataclasses.dataclass(frozen=True)
class _StrictSince(EventQuery):
    def matches(self, event: Event) -> bool:
        if self.since is not None and event.timestamp == self.since:
            return False
        return super().matches(event)


class SinceStrict(_QueryStore):
    """since keeps timestamps > since instead of >= since (two of the original stores did)."""

    BREAKS = ("EVT-3",)
    query_class = _StrictSince


@dataclasses.dataclass(frozen=True)
class _InclusiveAfter(EventQuery):
    def matches(self, event: Event) -> bool:
        if self.after is not None and event.sequence_number == self.after:
            return dataclasses.replace(self, after=None).matches(event)
        return super().matches(event)


class AfterInclusive(_QueryStore):
    """after keeps sequence >= after instead of > after, so a tailing cursor re-reads an event."""

    BREAKS = ("EVT-3",)
    # tailing with after=cursor returns the cursor's event again
    ALSO = ("POLL-1", "SEQ-5")
    query_class = _InclusiveAfter


@dataclasses.dataclass(frozen=True)
class _InclusiveBefore(EventQuery):
    def matches(self, event: Event) -> bool:
        if self.before is not None and event.sequence_number == self.before:
            return dataclasses.replace(self, before=None).matches(event)
        return super().matches(event)


class BeforeInclusive(_QueryStore):
    """before keeps sequence <= before instead of < before."""

    BREAKS = ("EVT-3",)
    query_class = _InclusiveBefore


@dataclasses.dataclass(frozen=True)
class _LimitFirst(EventQuery):
    def apply(self, events: Iterable[Event]) -> list[Event]:
        window = list(events)[: self.limit] if self.limit is not None else list(events)
        return [event for event in window if self.matches(event)]


class LimitBeforeFilters(_QueryStore):
    """limit is applied to the session's events before the other filters (LIMIT in an inner
    query), so a filtered read returns fewer events than it should."""

    BREAKS = ("EVT-3",)
    # readers that page with after and limit get wrong slices, which the history checker reads
    # as whichever reader rule the slice breaks (a stale read, part of a batch or of a flush)
    ALSO = ("BATCH-5", "CONC-2", "FLUSH-5", "SEQ-5")
    query_class = _LimitFirst


@dataclasses.dataclass(frozen=True)
class _ZeroIsUnlimited(EventQuery):
    def apply(self, events: Iterable[Event]) -> list[Event]:
        if self.limit == 0:
            return dataclasses.replace(self, limit=None).apply(events)
        return super().apply(events)


class LimitZeroMeansAll(_QueryStore):
    """get_events treats limit=0 as 'no limit' (a falsy check: ``if limit:``)."""

    BREAKS = ("EVT-3",)
    query_class = _ZeroIsUnlimited


@dataclasses.dataclass(frozen=True)
class _NaiveSinceAsUtc(EventQuery):
    @classmethod
    def of(cls, **filters: Any) -> EventQuery:
        since = filters.get("since")
        if isinstance(since, datetime) and since.utcoffset() is None:
            filters["since"] = since.replace(tzinfo=UTC)
        return super().of(**filters)


class NaiveSinceAccepted(_QueryStore):
    """A naive since is silently read as UTC instead of being rejected with validation_error."""

    BREAKS = ("EVT-3",)
    query_class = _NaiveSinceAsUtc


@dataclasses.dataclass(frozen=True)
class _TimestampOrder(EventQuery):
    def apply(self, events: Iterable[Event]) -> list[Event]:
        return super().apply(sorted(events, key=lambda e: (e.timestamp, e.id)))


class OrderedByTimestamp(_QueryStore):
    """get_events orders by (timestamp, id) instead of by sequence number."""

    BREAKS = ("EVT-2",)
    # logs read in timestamp order look renumbered to readers
    ALSO = ("BATCH-5", "CONC-1", "CONC-2", "FLUSH-1", "SEQ-1", "SEQ-5")
    query_class = _TimestampOrder


class StoredEventsHandedOut(_QueryStore):
    """get_events returns the stored event objects themselves, so a caller that changes a returned
    event's data dict changes the store."""

    BREAKS = ("EVT-4",)

    def _hand_out(self, found: list[Event]) -> list[Event]:
        return found


class AppendEventSkipsIdempotency(InMemorySessionStore):
    """append_event (the fire-and-forget path) stores every call as a new event, without the
    duplicate-id check that append_event_with_sequence does."""

    BREAKS = ("EVT-1", "EVT-4")
    # a repeated id appended with append_event is stored again; the ambiguous-failure history
    # (IDEM-1+IDEM-4+FLUSH-4) catches it whenever its seed retries an append_event
    ALSO = ("IDEM-1", "SEQ-2", "IDEM-4", "FLUSH-4")

    def append_event(self, event: Event) -> None:
        checked = as_event(event)
        with self._lock:
            log = self._events.setdefault(checked.session_id, [])
            stored = checked.model_copy(update={"sequence_number": len(log) + 1}, deep=True)
            log.append(stored)
            self._event_ids.setdefault(stored.id, stored)
            self._appended.notify_all()


class EventIntegrityNotKept(InMemorySessionStore):
    """Declares referential_integrity and checks it for runs, but appends events to a session
    that was never saved."""

    BREAKS = ("EVT-1",)
    capabilities = frozenset({"long_poll", "referential_integrity"})

    def save_run(self, run: Run) -> None:
        checked = as_run(run)
        with self._lock:
            if checked.session_id not in self._sessions:
                raise StoreError(ErrorCode.SESSION_NOT_FOUND, f"no session {checked.session_id!r}")
            super().save_run(checked)
