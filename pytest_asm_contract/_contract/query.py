"""The QueryAPI port (query-maintenance.md section 2): search across sessions, stats, usage,
cost and export, as a plain object built from the store it serves.

A QueryAPI owns no thread, cache or connection of its own (the v0.8 "module-backed ref"): it
reads the store's backend and sees exactly what the store sees. Every method is synchronous and
takes keyword arguments, every filter defaults to None (no filter), and every failure is a
``StoreError`` (a cursor that is not one this object issued for these filters and this order:
``invalid_cursor``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol, get_args, runtime_checkable

from pydantic import Field, StrictInt, StrictStr

from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    Id,
    JsonObject,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    UtcDatetime,
    _Frozen,
    _new_id,
    utc_now,
)
from pytest_asm_contract._contract.usage import PricingTable, TokenTotals

SessionOrder = Literal["updated_at_desc", "created_at_asc", "created_at_desc"]
RunOrder = Literal["started_at_desc", "started_at_asc", "token_usage_desc"]
EventOrder = Literal["sequence_asc", "timestamp_asc", "timestamp_desc"]
SESSION_ORDERS: tuple[str, ...] = get_args(SessionOrder)
RUN_ORDERS: tuple[str, ...] = get_args(RunOrder)
EVENT_ORDERS: tuple[str, ...] = get_args(EventOrder)

#: ``limit`` is an int in 1..LIMIT_MAX (QRY-5).
LIMIT_MAX = 1000
DEFAULT_SESSION_LIMIT = 50
DEFAULT_RUN_LIMIT = 50
DEFAULT_EVENT_LIMIT = 100

Count = StrictInt


class SessionPage(_Frozen):
    sessions: list[Session]
    #: None exactly on the page that holds the last match (QRY-3).
    cursor: StrictStr | None
    #: Every match, whatever the limit and cursor (QRY-4).
    total_count: Count


class RunPage(_Frozen):
    runs: list[Run]
    cursor: StrictStr | None


class EventPage(_Frozen):
    events: list[Event]
    cursor: StrictStr | None


class SessionStats(_Frozen):
    session_id: Id
    event_count: Count
    run_count: Count
    #: Summed over the session's runs (``usage.token_totals``).
    token_totals: TokenTotals
    #: Sorted, distinct, runs without a provider left out.
    providers_used: list[StrictStr]
    first_event_at: UtcDatetime | None
    last_event_at: UtcDatetime | None
    #: Run status value -> count, only the statuses present.
    status_counts: dict[StrictStr, Count]


class UsageFigures(_Frozen):
    total_input_tokens: Count = 0
    total_output_tokens: Count = 0
    total_tokens: Count = 0
    run_count: Count = 0


class UsageSummary(UsageFigures):
    #: Provider (runs without one: ``usage.UNKNOWN``) -> the same four figures.
    by_provider: dict[StrictStr, UsageFigures] = Field(default_factory=dict)


class CostSummary(_Frozen):
    #: Sum over the priced runs (``cost_usd`` set, or rates resolved).
    total_cost_usd: float = 0.0
    #: The priced runs.
    run_count: Count = 0
    by_provider: dict[StrictStr, float] = Field(default_factory=dict)
    by_model: dict[StrictStr, float] = Field(default_factory=dict)
    #: Runs with neither cost_usd nor rates.
    unmapped_runs: Count = 0


class ArtifactMeta(_Frozen):
    """Artifact metadata, as the artifact registry keeps it (query-maintenance.md section 5)."""

    id: Id = Field(default_factory=lambda: _new_id("art_"))
    session_id: Id
    run_id: Id | None = None
    key: StrictStr
    content_type: StrictStr | None = None
    byte_size: Count | None = Field(default=None, ge=0)
    checksum_sha256: StrictStr | None = None
    storage_backend: StrictStr | None = None
    storage_ref: StrictStr | None = None
    metadata: JsonObject = Field(default_factory=dict)
    created_at: UtcDatetime = Field(default_factory=utc_now)
    deleted_at: UtcDatetime | None = None


class SessionExport(_Frozen):
    session: Session
    #: In RUN-2 order.
    runs: list[Run]
    #: In EVT-2 order.
    events: list[Event]
    #: With ``include_artifacts``: the session's artifact metadata in REG-2 order; else [].
    artifacts: list[ArtifactMeta] = Field(default_factory=list)


@runtime_checkable
class QueryAPI(Protocol):
    """Read-only queries over one store's backend (rules QRY-1..QRY-10)."""

    def search_sessions(
        self,
        *,
        agent_id: str | None = None,
        status: SessionStatus | str | Sequence[SessionStatus | str] | None = None,
        provider: str | None = None,
        tags: Sequence[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
        order_by: str = "updated_at_desc",
        limit: int = DEFAULT_SESSION_LIMIT,
        cursor: str | None = None,
    ) -> SessionPage: ...

    def get_session_stats(self, session_id: str) -> SessionStats: ...

    def search_runs(
        self,
        *,
        session_id: str | None = None,
        provider: str | None = None,
        status: RunStatus | str | Sequence[RunStatus | str] | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        min_tokens: int | None = None,
        order_by: str = "started_at_desc",
        limit: int = DEFAULT_RUN_LIMIT,
        cursor: str | None = None,
    ) -> RunPage: ...

    def get_usage_summary(
        self,
        *,
        session_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> UsageSummary: ...

    def get_cost_summary(
        self,
        *,
        session_id: str | None = None,
        agent_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        pricing_table: PricingTable | None = None,
    ) -> CostSummary: ...

    def search_events(
        self,
        *,
        session_ids: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
        types: EventType | str | Sequence[EventType | str] | None = None,
        providers: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str | None = None,
        order_by: str = "sequence_asc",
        limit: int = DEFAULT_EVENT_LIMIT,
        cursor: str | None = None,
    ) -> EventPage: ...

    def count_events(
        self,
        *,
        session_ids: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
        types: EventType | str | Sequence[EventType | str] | None = None,
        providers: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str | None = None,
    ) -> int: ...

    def export_session(
        self, session_id: str, *, include_artifacts: bool = False
    ) -> SessionExport: ...


#: The QueryAPI's operations, as the port names them.
QUERY_OPERATIONS: tuple[str, ...] = (
    "search_sessions",
    "get_session_stats",
    "search_runs",
    "get_usage_summary",
    "get_cost_summary",
    "search_events",
    "count_events",
    "export_session",
)

__all__ = [
    "DEFAULT_EVENT_LIMIT",
    "DEFAULT_RUN_LIMIT",
    "DEFAULT_SESSION_LIMIT",
    "EVENT_ORDERS",
    "LIMIT_MAX",
    "QUERY_OPERATIONS",
    "RUN_ORDERS",
    "SESSION_ORDERS",
    "ArtifactMeta",
    "CostSummary",
    "EventOrder",
    "EventPage",
    "QueryAPI",
    "RunOrder",
    "RunPage",
    "SessionExport",
    "SessionOrder",
    "SessionPage",
    "SessionStats",
    "UsageFigures",
    "UsageSummary",
]
