"""The QueryAPI over an in-memory session store: a plain object that reads the store's dicts.

``InMemoryQueryAPI(store)`` holds the store and nothing else (no thread, cache or copy), takes
the store's lock for each query so that it sees one consistent state, and returns copies, as the
store's own reads do. Paging is keyset paging over the sorted matches (``query_args``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, Run, Session
from pytest_asm_contract._contract.query import (
    DEFAULT_EVENT_LIMIT,
    DEFAULT_RUN_LIMIT,
    DEFAULT_SESSION_LIMIT,
    ArtifactMeta,
    CostSummary,
    EventPage,
    RunPage,
    SessionExport,
    SessionPage,
    SessionStats,
    UsageFigures,
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
from pytest_asm_contract._contract.registry import registry_order
from pytest_asm_contract._contract.usage import (
    UNKNOWN,
    PricingTable,
    RunUsage,
    TokenTotals,
    run_usage,
)
from pytest_asm_contract._contract.validation import check_id


class _MemoryBackend(Protocol):
    """What the QueryAPI reads of ``InMemorySessionStore`` (named by shape: the store's module
    offers this class, so this module does not import it)."""

    _lock: threading.RLock
    _sessions: dict[str, Session]
    _runs: dict[str, Run]
    _events: dict[str, list[Event]]
    _artifact_meta: dict[str, ArtifactMeta]

    def list_runs(self, session_id: str) -> list[Run]: ...

    def get_events(self, session_id: str) -> list[Event]: ...


class InMemoryQueryAPI:
    """Queries over one ``InMemorySessionStore`` (rules QRY-1..QRY-10)."""

    #: How each search validates, filters, orders and pages (``query_args``).
    session_search: type[SessionSearch] = SessionSearch
    run_search: type[RunSearch] = RunSearch
    event_search: type[EventSearch] = EventSearch

    def __init__(self, store: _MemoryBackend) -> None:
        self._store = store

    # -- what the store holds, read under its lock ---------------------------------------------
    def _state(self) -> tuple[list[Session], list[Run], list[Event]]:
        store = self._store
        with store._lock:
            sessions = list(store._sessions.values())
            runs = list(store._runs.values())
            events = [e for log in store._events.values() for e in log]
        return sessions, runs, events

    def _session(self, session_id: object) -> Session:
        checked = check_id(session_id, "session_id")
        with self._store._lock:
            session = self._store._sessions.get(checked)
        if session is None:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND, f"no session {checked!r}", {"session_id": checked}
            )
        return session

    # -- searches -------------------------------------------------------------------------------
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
        search = self.session_search.of(
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
        sessions, runs, _ = self._state()
        providers: dict[str, set[str]] = {}
        for run in runs:
            if run.provider is not None:
                providers.setdefault(run.session_id, set()).add(run.provider)
        matches = [s for s in sessions if search.matches(s, lambda i: providers.get(i, set()))]
        page, next_cursor = search.page(matches)
        return SessionPage(sessions=_copies(page), cursor=next_cursor, total_count=len(matches))

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
        search = self.run_search.of(
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
        _, runs, _ = self._state()
        page, next_cursor = search.page([r for r in runs if search.matches(r)])
        return RunPage(runs=_copies(page), cursor=next_cursor)

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
        search = self.event_search.of(
            order_by=order_by,
            limit=limit,
            cursor=cursor,
            where=EventFilters.of(
                session_ids=session_ids,
                run_ids=run_ids,
                types=types,
                providers=providers,
                since=since,
                until=until,
                correlation_id=correlation_id,
            ),
        )
        _, _, events = self._state()
        page, next_cursor = search.page([e for e in events if search.matches(e)])
        return EventPage(events=_copies(page), cursor=next_cursor)

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
        where = EventFilters.of(
            session_ids=session_ids,
            run_ids=run_ids,
            types=types,
            providers=providers,
            since=since,
            until=until,
            correlation_id=correlation_id,
        )
        _, _, events = self._state()
        return sum(1 for e in events if where.matches(e))

    # -- one session ----------------------------------------------------------------------------
    def get_session_stats(self, session_id: str) -> SessionStats:
        with self._store._lock:  # one state for every figure
            session = self._session(session_id)
            mine = [r for r in self._store._runs.values() if r.session_id == session.id]
            events = list(self._store._events.get(session.id, []))
        times = [e.timestamp for e in events]
        return SessionStats(
            session_id=session.id,
            event_count=len(events),
            run_count=len(mine),
            token_totals=sum((run_usage(r).tokens for r in mine), TokenTotals()),
            providers_used=sorted({r.provider for r in mine if r.provider is not None}),
            first_event_at=min(times, default=None),
            last_event_at=max(times, default=None),
            status_counts=dict(Counter(r.status.value for r in mine)),
        )

    def export_session(self, session_id: str, *, include_artifacts: bool = False) -> SessionExport:
        check_flag(include_artifacts, "include_artifacts")
        with self._store._lock:  # the session, its runs, events and artifacts as of one moment
            session = self._session(session_id)
            runs = self._store.list_runs(session.id)
            events = self._store.get_events(session.id)
            artifacts = [
                a for a in self._store._artifact_meta.values() if a.session_id == session.id
            ]
        return SessionExport(
            session=session.model_copy(deep=True),
            runs=runs,
            events=events,
            artifacts=sorted(artifacts, key=registry_order) if include_artifacts else [],
        )

    # -- aggregates -----------------------------------------------------------------------------
    def _runs_in(self, scope: RunScope) -> list[Run]:
        with self._store._lock:
            agents = {s.id: s.agent_id for s in self._store._sessions.values()}
            runs = list(self._store._runs.values())
        return [r for r in runs if scope.matches(r, agents.get)]

    def get_usage_summary(
        self,
        *,
        session_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> UsageSummary:
        scope = RunScope.of(session_id=session_id, provider=provider, since=since, until=until)
        runs = self._runs_in(scope)
        by_provider: dict[str, list[Run]] = {}
        for run in runs:
            by_provider.setdefault(run.provider or UNKNOWN, []).append(run)
        return UsageSummary(
            **_figures(runs).model_dump(),
            by_provider={name: _figures(group) for name, group in by_provider.items()},
        )

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
        runs = self._runs_in(scope)
        total, priced, unmapped = 0.0, 0, 0
        by_provider: dict[str, float] = {}
        by_model: dict[str, float] = {}
        for run in runs:
            usage = self._priced(run, table)
            if usage.cost_usd is None:
                unmapped += 1
                continue
            priced += 1
            total += usage.cost_usd
            name, model = usage.provider or UNKNOWN, usage.model or UNKNOWN
            by_provider[name] = by_provider.get(name, 0.0) + usage.cost_usd
            by_model[model] = by_model.get(model, 0.0) + usage.cost_usd
        return CostSummary(
            total_cost_usd=total,
            run_count=priced,
            by_provider=by_provider,
            by_model=by_model,
            unmapped_runs=unmapped,
        )

    def _priced(self, run: Run, table: PricingTable | None) -> RunUsage:
        return run_usage(run, table)


def _figures(runs: Iterable[Run]) -> UsageFigures:
    tokens, count = TokenTotals(), 0
    for run in runs:
        tokens += run_usage(run).tokens
        count += 1
    return UsageFigures(
        total_input_tokens=tokens.input_tokens,
        total_output_tokens=tokens.output_tokens,
        total_tokens=tokens.total_tokens,
        run_count=count,
    )


def _copies(records: list[Any]) -> list[Any]:
    return [r.model_copy(deep=True) for r in records]


__all__ = ["InMemoryQueryAPI"]
