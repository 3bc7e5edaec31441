"""The QueryAPI's public methods, once for every reference implementation.

Each method takes the port's keyword arguments, validates them into one object (``query_args``:
a search with its filters, order, limit and cursor; an ``EventFilters``; a ``RunScope``) and
hands that to the implementation's hook (``_search_sessions``, ...). An implementation then
holds only what differs: how it reads its backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pytest_asm_contract._contract.query import (
    DEFAULT_EVENT_LIMIT,
    DEFAULT_RUN_LIMIT,
    DEFAULT_SESSION_LIMIT,
    CostSummary,
    EventPage,
    RunPage,
    SessionExport,
    SessionPage,
    SessionStats,
    UsageSummary,
)
from pytest_asm_contract._contract.query_args import (
    EventFilters,
    EventSearch,
    RunScope,
    RunSearch,
    SessionSearch,
    check_flag,
    check_pricing_table,
)
from pytest_asm_contract._contract.usage import PricingTable
from pytest_asm_contract._contract.validation import check_id


class QueryFront:
    """The eight queries of the QueryAPI port (QRY-1..QRY-10), validated, over hooks."""

    #: How each search validates, filters, orders and pages (``query_args``).
    session_search: type[SessionSearch] = SessionSearch
    run_search: type[RunSearch] = RunSearch
    event_search: type[EventSearch] = EventSearch

    # -- the hooks an implementation provides --------------------------------------------------
    def _search_sessions(self, search: SessionSearch) -> SessionPage:
        raise NotImplementedError

    def _search_runs(self, search: RunSearch) -> RunPage:
        raise NotImplementedError

    def _search_events(self, search: EventSearch) -> EventPage:
        raise NotImplementedError

    def _count_events(self, filters: EventFilters) -> int:
        raise NotImplementedError

    def _session_stats(self, session_id: str) -> SessionStats:
        raise NotImplementedError

    def _export(self, session_id: str, include_artifacts: bool) -> SessionExport:
        raise NotImplementedError

    def _usage(self, scope: RunScope) -> UsageSummary:
        raise NotImplementedError

    def _cost(self, scope: RunScope, table: PricingTable | None) -> CostSummary:
        raise NotImplementedError

    # -- the port -------------------------------------------------------------------------------
    def search_sessions(
        self,
        *,
        agent_id: str | None = None,
        status: Any = None,
        provider: str | None = None,
        tags: list[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
        order_by: str = "updated_at_desc",
        limit: int = DEFAULT_SESSION_LIMIT,
        cursor: str | None = None,
    ) -> SessionPage:
        return self._search_sessions(
            self.session_search.of(
                agent_id=agent_id,
                status=status,
                provider=provider,
                tags=tags,
                created_after=created_after,
                created_before=created_before,
                include_deleted=include_deleted,
                order_by=order_by,
                limit=limit,
                cursor=cursor,
            )
        )

    def search_runs(
        self,
        *,
        session_id: str | None = None,
        provider: str | None = None,
        status: Any = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        min_tokens: int | None = None,
        order_by: str = "started_at_desc",
        limit: int = DEFAULT_RUN_LIMIT,
        cursor: str | None = None,
    ) -> RunPage:
        return self._search_runs(
            self.run_search.of(
                session_id=session_id,
                provider=provider,
                status=status,
                started_after=started_after,
                started_before=started_before,
                min_tokens=min_tokens,
                order_by=order_by,
                limit=limit,
                cursor=cursor,
            )
        )

    def search_events(
        self,
        *,
        session_ids: list[str] | None = None,
        run_ids: list[str] | None = None,
        types: Any = None,
        providers: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str | None = None,
        order_by: str = "sequence_asc",
        limit: int = DEFAULT_EVENT_LIMIT,
        cursor: str | None = None,
    ) -> EventPage:
        where = EventFilters.of(
            session_ids=session_ids,
            run_ids=run_ids,
            types=types,
            providers=providers,
            since=since,
            until=until,
            correlation_id=correlation_id,
        )
        search = self.event_search.of(order_by=order_by, limit=limit, cursor=cursor, where=where)
        return self._search_events(search)

    def count_events(
        self,
        *,
        session_ids: list[str] | None = None,
        run_ids: list[str] | None = None,
        types: Any = None,
        providers: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str | None = None,
    ) -> int:
        return self._count_events(
            EventFilters.of(
                session_ids=session_ids,
                run_ids=run_ids,
                types=types,
                providers=providers,
                since=since,
                until=until,
                correlation_id=correlation_id,
            )
        )

    def get_session_stats(self, session_id: str) -> SessionStats:
        return self._session_stats(check_id(session_id, "session_id"))

    def export_session(self, session_id: str, *, include_artifacts: bool = False) -> SessionExport:
        checked = check_id(session_id, "session_id")
        return self._export(checked, check_flag(include_artifacts, "include_artifacts"))

    def get_usage_summary(
        self,
        *,
        session_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> UsageSummary:
        scope = RunScope.of(session_id=session_id, provider=provider, since=since, until=until)
        return self._usage(scope)

    def get_cost_summary(
        self,
        *,
        session_id: str | None = None,
        agent_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        pricing_table: Any = None,
    ) -> CostSummary:
        table = check_pricing_table(pricing_table)
        scope = RunScope.of(
            session_id=session_id, agent_id=agent_id, provider=provider, since=since, until=until
        )
        return self._cost(scope, table)


__all__ = ["QueryFront"]
