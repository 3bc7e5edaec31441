"""The QueryAPI over an in-memory session store: a plain object that reads the store's dicts.

``InMemoryQueryAPI(store)`` holds the store and nothing else (no thread, cache or copy), takes
the store's lock for each query so that it sees one consistent state, and returns copies, as the
store's own reads do. Paging is keyset paging over the sorted matches (``query_args``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, Run, Session
from pytest_asm_contract._contract.query import (
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
)
from pytest_asm_contract._contract.registry import registry_order
from pytest_asm_contract._contract.usage import (
    UNKNOWN,
    PricingTable,
    RunUsage,
    TokenTotals,
    run_usage,
)
from reference_stores.query_front import QueryFront


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


class InMemoryQueryAPI(QueryFront):
    """Queries over one ``InMemorySessionStore`` (rules QRY-1..QRY-10)."""

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

    def _session(self, session_id: str) -> Session:
        with self._store._lock:
            session = self._store._sessions.get(session_id)
        if session is None:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND,
                f"no session {session_id!r}",
                {"session_id": session_id},
            )
        return session

    # -- searches -------------------------------------------------------------------------------
    def _search_sessions(self, search: SessionSearch) -> SessionPage:
        sessions, runs, _ = self._state()
        providers: dict[str, set[str]] = {}
        for run in runs:
            if run.provider is not None:
                providers.setdefault(run.session_id, set()).add(run.provider)
        matches = [s for s in sessions if search.matches(s, lambda i: providers.get(i, set()))]
        page, next_cursor = search.page(matches)
        return SessionPage(sessions=_copies(page), cursor=next_cursor, total_count=len(matches))

    def _search_runs(self, search: RunSearch) -> RunPage:
        _, runs, _ = self._state()
        page, next_cursor = search.page([r for r in runs if search.matches(r)])
        return RunPage(runs=_copies(page), cursor=next_cursor)

    def _search_events(self, search: EventSearch) -> EventPage:
        _, _, events = self._state()
        page, next_cursor = search.page([e for e in events if search.matches(e)])
        return EventPage(events=_copies(page), cursor=next_cursor)

    def _count_events(self, filters: EventFilters) -> int:
        _, _, events = self._state()
        return sum(1 for e in events if filters.matches(e))

    # -- one session ----------------------------------------------------------------------------
    def _session_stats(self, session_id: str) -> SessionStats:
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

    def _export(self, session_id: str, include_artifacts: bool) -> SessionExport:
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

    def _usage(self, scope: RunScope) -> UsageSummary:
        runs = self._runs_in(scope)
        by_provider: dict[str, list[Run]] = {}
        for run in runs:
            by_provider.setdefault(run.provider or UNKNOWN, []).append(run)
        return UsageSummary(
            **_figures(runs).model_dump(),
            by_provider={name: _figures(group) for name, group in by_provider.items()},
        )

    def _cost(self, scope: RunScope, table: PricingTable | None) -> CostSummary:
        total, priced, unmapped = 0.0, 0, 0
        by_provider: dict[str, float] = {}
        by_model: dict[str, float] = {}
        for run in self._runs_in(scope):
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
