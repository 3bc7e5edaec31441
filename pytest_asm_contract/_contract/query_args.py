"""The QueryAPI's arguments, validated (QRY-5), and its cursors (QRY-3), for every implementation.

Each search validates its arguments into one frozen object (``SessionSearch``, ``RunSearch``,
``EventSearch``) that knows its filters (``matches``), its order (``sort_key``, ``descending``)
and its cursor: a cursor names the position after the last record of a page (the keyset: the
order's value and the id) and is bound to the search's kind, order and filters by a digest, so
that a cursor used with other filters or another order, or altered, raises ``invalid_cursor``
instead of silently paging something else. Cursors are opaque strings:
``base64url(json) + "." + checksum``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pytest_asm_contract._contract.errors import ErrorCode, StoreError, validation_error
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from pytest_asm_contract._contract.query import (
    DEFAULT_EVENT_LIMIT,
    DEFAULT_RUN_LIMIT,
    DEFAULT_SESSION_LIMIT,
    EVENT_ORDERS,
    RUN_ORDERS,
    SESSION_ORDERS,
)
from pytest_asm_contract._contract.query_checks import (
    check_flag,
    check_limit,
    check_order,
    check_pricing_table,
    check_text,
    check_time,
    every_of,
    member_of,
    one_or_many,
)
from pytest_asm_contract._contract.usage import token_totals
from pytest_asm_contract._contract.validation import check_id

T = TypeVar("T")
#: One position in an order: the order's value (a timestamp, a number) and the record's id.
Key = tuple[Any, str]


# -- cursors ------------------------------------------------------------------------------------
def _invalid_cursor(why: str) -> StoreError:
    return StoreError(ErrorCode.INVALID_CURSOR, f"invalid cursor: {why}")


def _checksum(payload: bytes) -> str:
    return hashlib.sha256(b"asm-query-cursor\0" + payload).hexdigest()[:20]


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _encode_value(value: Any) -> Any:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"t"} and isinstance(value["t"], str):
        moment = datetime.fromisoformat(value["t"])
        if moment.utcoffset() is None:
            raise ValueError("a naive timestamp")
        return moment
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"unexpected key value {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Search:
    """What the three searches share: the kind, the order, the limit and the cursor's key."""

    kind: str
    order_by: str
    limit: int
    after: Key | None

    def filters(self) -> dict[str, Any]:  # pragma: no cover - each search has its own
        raise NotImplementedError

    def digest(self) -> str:
        """The kind, order and filters, as a cursor is bound to them."""
        text = json.dumps(
            [self.kind, self.order_by, self.filters()], sort_keys=True, default=_canonical
        )
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def ordered_by_time(self) -> bool:
        return self.order_by not in ("sequence_asc", "token_usage_desc")

    @property
    def descending(self) -> bool:
        return self.order_by.endswith("_desc")

    def sort_key(self, record: Any) -> Key:  # pragma: no cover - each search has its own
        raise NotImplementedError

    def cursor_after(self, record: Any) -> str:
        """The cursor of the page that ends with ``record``."""
        value, record_id = self.sort_key(record)
        payload = json.dumps(
            {
                "k": self.kind,
                "o": self.order_by,
                "f": self.digest(),
                "a": [_encode_value(value), record_id],
            },
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _checksum(payload)

    def _read_cursor(self, cursor: object) -> Key | None:
        if cursor is None:
            return None
        if not isinstance(cursor, str) or "." not in cursor:
            raise _invalid_cursor(f"{cursor!r:.80} is not a cursor this QueryAPI issued")
        body, _, checksum = cursor.rpartition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise _invalid_cursor("not a cursor this QueryAPI issued") from None
        if _checksum(payload) != checksum:
            raise _invalid_cursor("the cursor was altered")
        try:
            data = json.loads(payload)
            kind, order, digest, (value, record_id) = data["k"], data["o"], data["f"], data["a"]
            key: Key = (_decode_value(value), check_text(record_id, "cursor"))
        except (ValueError, KeyError, TypeError, StoreError):
            raise _invalid_cursor("not a cursor this QueryAPI issued") from None
        if isinstance(key[0], datetime) is not self.ordered_by_time or isinstance(key[0], str):
            raise _invalid_cursor("the cursor's position does not fit its order")
        if kind != self.kind:
            raise _invalid_cursor(f"the cursor pages {kind}, not {self.kind}")
        if order != self.order_by:
            raise _invalid_cursor(
                f"the cursor was issued for order_by={order!r}, not {self.order_by!r}"
            )
        if digest != self.digest():
            raise _invalid_cursor("the cursor was issued for other filters")
        return key

    def is_after_cursor(self, record: Any) -> bool:
        if self.after is None:
            return True
        key = self.sort_key(record)
        return key < self.after if self.descending else key > self.after

    def page(self, matches: Sequence[T]) -> tuple[list[T], str | None]:
        """The page of ``matches`` (every match, in any order) after the cursor, and its cursor."""
        ordered = sorted(
            (m for m in matches if self.is_after_cursor(m)),
            key=self.sort_key,
            reverse=self.descending,
        )
        page = ordered[: self.limit]
        cursor = self.cursor_after(page[-1]) if len(ordered) > self.limit else None
        return page, cursor


def _time_filters(after: datetime | None, before: datetime | None, moment: datetime) -> bool:
    return (after is None or moment > after) and (before is None or moment < before)


@dataclasses.dataclass(frozen=True)
class SessionSearch(Search):
    agent_id: str | None = None
    statuses: frozenset[SessionStatus] | None = None
    provider: str | None = None
    tags: frozenset[str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    include_deleted: bool = False

    @classmethod
    def of(
        cls,
        *,
        agent_id: object = None,
        status: object = None,
        provider: object = None,
        tags: object = None,
        created_after: object = None,
        created_before: object = None,
        include_deleted: object = False,
        order_by: object = "updated_at_desc",
        limit: object = DEFAULT_SESSION_LIMIT,
        cursor: object = None,
    ) -> SessionSearch:
        search = cls(
            kind="sessions",
            order_by=check_order(order_by, SESSION_ORDERS),
            limit=check_limit(limit, DEFAULT_SESSION_LIMIT),
            after=None,
            agent_id=None if agent_id is None else check_id(agent_id, "agent_id"),
            statuses=one_or_many(status, "status", member_of(SessionStatus)),
            provider=None if provider is None else check_text(provider, "provider"),
            tags=every_of(tags, "tags", check_text),
            created_after=check_time(created_after, "created_after"),
            created_before=check_time(created_before, "created_before"),
            include_deleted=check_flag(include_deleted, "include_deleted"),
        )
        return dataclasses.replace(search, after=search._read_cursor(cursor))

    def filters(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "status": sorted(self.statuses or ()),
            "provider": self.provider,
            "tags": sorted(self.tags or ()),
            "created": [self.created_after, self.created_before],
            "deleted": self.include_deleted,
        }

    def matches(self, session: Session, providers: Callable[[str], set[str]]) -> bool:
        """Whether ``session`` matches; ``providers(session_id)`` are its runs' providers."""
        return (
            (self.include_deleted or session.deleted_at is None)
            and (self.agent_id is None or session.agent_id == self.agent_id)
            and (self.statuses is None or session.status in self.statuses)
            and (self.tags is None or self.tags <= set(session.tags))
            and _time_filters(self.created_after, self.created_before, session.created_at)
            and (self.provider is None or self.provider in providers(session.id))
        )

    def sort_key(self, record: Session) -> Key:
        moment = record.updated_at if self.order_by == "updated_at_desc" else record.created_at
        return (moment, record.id)


def run_tokens(run: Run) -> int:
    """A run's total tokens (section 4), what ``min_tokens`` and ``token_usage_desc`` read."""
    return token_totals(run.token_usage).total_tokens


@dataclasses.dataclass(frozen=True)
class RunSearch(Search):
    session_id: str | None = None
    provider: str | None = None
    statuses: frozenset[RunStatus] | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    min_tokens: int | None = None

    @classmethod
    def of(
        cls,
        *,
        session_id: object = None,
        provider: object = None,
        status: object = None,
        started_after: object = None,
        started_before: object = None,
        min_tokens: object = None,
        order_by: object = "started_at_desc",
        limit: object = DEFAULT_RUN_LIMIT,
        cursor: object = None,
    ) -> RunSearch:
        if min_tokens is not None and (
            isinstance(min_tokens, bool) or not isinstance(min_tokens, int) or min_tokens < 0
        ):
            raise validation_error(
                f"min_tokens must be an int >= 0, got {min_tokens!r}", field="min_tokens"
            )
        search = cls(
            kind="runs",
            order_by=check_order(order_by, RUN_ORDERS),
            limit=check_limit(limit, DEFAULT_RUN_LIMIT),
            after=None,
            session_id=None if session_id is None else check_id(session_id, "session_id"),
            provider=None if provider is None else check_text(provider, "provider"),
            statuses=one_or_many(status, "status", member_of(RunStatus)),
            started_after=check_time(started_after, "started_after"),
            started_before=check_time(started_before, "started_before"),
            min_tokens=min_tokens,
        )
        return dataclasses.replace(search, after=search._read_cursor(cursor))

    def filters(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "provider": self.provider,
            "status": sorted(self.statuses or ()),
            "started": [self.started_after, self.started_before],
            "min_tokens": self.min_tokens,
        }

    def matches(self, run: Run) -> bool:
        return (
            (self.session_id is None or run.session_id == self.session_id)
            and (self.provider is None or run.provider == self.provider)
            and (self.statuses is None or run.status in self.statuses)
            and _time_filters(self.started_after, self.started_before, run.started_at)
            and (self.min_tokens is None or run_tokens(run) >= self.min_tokens)
        )

    def sort_key(self, record: Run) -> Key:
        if self.order_by == "token_usage_desc":
            return (run_tokens(record), record.id)
        return (record.started_at, record.id)


@dataclasses.dataclass(frozen=True)
class RunScope:
    """The runs a usage or cost summary covers (QRY-9, QRY-10): ``since``/``until`` bound
    ``started_at``; ``agent_id`` selects through the run's session."""

    session_id: str | None = None
    agent_id: str | None = None
    provider: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(
        cls,
        *,
        session_id: object = None,
        agent_id: object = None,
        provider: object = None,
        since: object = None,
        until: object = None,
    ) -> RunScope:
        return cls(
            session_id=None if session_id is None else check_id(session_id, "session_id"),
            agent_id=None if agent_id is None else check_id(agent_id, "agent_id"),
            provider=None if provider is None else check_text(provider, "provider"),
            since=check_time(since, "since"),
            until=check_time(until, "until"),
        )

    def matches(self, run: Run, agent_of: Callable[[str], str | None]) -> bool:
        """Whether ``run`` is covered; ``agent_of(session_id)`` is its session's agent."""
        return (
            (self.session_id is None or run.session_id == self.session_id)
            and (self.provider is None or run.provider == self.provider)
            and (self.since is None or run.started_at >= self.since)
            and (self.until is None or run.started_at < self.until)
            and (self.agent_id is None or agent_of(run.session_id) == self.agent_id)
        )


@dataclasses.dataclass(frozen=True)
class EventFilters:
    """The filters search_events and count_events share."""

    session_ids: frozenset[str] | None = None
    run_ids: frozenset[str] | None = None
    types: frozenset[EventType] | None = None
    providers: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    correlation_id: str | None = None

    @classmethod
    def of(
        cls,
        *,
        session_ids: object = None,
        run_ids: object = None,
        types: object = None,
        providers: object = None,
        since: object = None,
        until: object = None,
        correlation_id: object = None,
    ) -> EventFilters:
        return cls(
            session_ids=every_of(session_ids, "session_ids", check_id),
            run_ids=every_of(run_ids, "run_ids", check_id),
            types=one_or_many(types, "types", member_of(EventType)),
            providers=every_of(providers, "providers", check_text),
            since=check_time(since, "since"),
            until=check_time(until, "until"),
            correlation_id=None
            if correlation_id is None
            else check_text(correlation_id, "correlation_id"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_ids": sorted(self.session_ids or ()),
            "run_ids": sorted(self.run_ids or ()),
            "types": sorted(self.types or ()),
            "providers": sorted(self.providers or ()),
            "time": [self.since, self.until],
            "correlation_id": self.correlation_id,
        }

    def matches(self, event: Event) -> bool:
        return (
            (self.session_ids is None or event.session_id in self.session_ids)
            and (self.run_ids is None or event.run_id in self.run_ids)
            and (self.types is None or event.type in self.types)
            and (self.providers is None or event.provider in self.providers)
            and (self.since is None or event.timestamp >= self.since)
            and (self.until is None or event.timestamp < self.until)
            and (self.correlation_id is None or event.correlation_id == self.correlation_id)
        )


@dataclasses.dataclass(frozen=True)
class EventSearch(Search):
    where: EventFilters = EventFilters()

    @classmethod
    def of(
        cls,
        *,
        where: EventFilters,
        order_by: object = "sequence_asc",
        limit: object = DEFAULT_EVENT_LIMIT,
        cursor: object = None,
    ) -> EventSearch:
        """``where`` is ``EventFilters.of(...)``, which count_events validates alone."""
        search = cls(
            kind="events",
            order_by=check_order(order_by, EVENT_ORDERS),
            limit=check_limit(limit, DEFAULT_EVENT_LIMIT),
            after=None,
            where=where,
        )
        return dataclasses.replace(search, after=search._read_cursor(cursor))

    def filters(self) -> dict[str, Any]:
        return self.where.as_dict()

    def matches(self, event: Event) -> bool:
        return self.where.matches(event)

    def sort_key(self, record: Event) -> Key:
        if self.order_by == "sequence_asc":
            return (record.sequence_number or 0, record.id)
        return (record.timestamp, record.id)


__all__ = [
    "EventFilters",
    "EventSearch",
    "Key",
    "RunScope",
    "RunSearch",
    "Search",
    "SessionSearch",
    "check_flag",
    "check_limit",
    "check_order",
    "check_pricing_table",
    "check_time",
    "run_tokens",
]
