"""The oracle's own reading of the QueryAPI (query-maintenance.md sections 2 and 4).

Written from the spec text alone over the plain state a correct store holds (its sessions, runs
and numbered events), sharing nothing with the argument checks, cursors and token arithmetic that
stores use (``_contract/query_args.py``, ``query_checks.py``, ``usage.py``): a mistake there must
not hide the same mistake in a store. Searches return every match in order; paging is the
machine's business. Tokens and cost come from :mod:`.usage_model`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from pytest_asm_contract._contract.model import Event, Run, Session
from pytest_asm_contract._machine import usage_model

UNKNOWN = "unknown"

#: What each order sorts by before the id, and whether downwards (ties by id the same way).
ORDERS: dict[str, tuple[str, bool]] = {
    "updated_at_desc": ("updated_at", True),
    "created_at_asc": ("created_at", False),
    "created_at_desc": ("created_at", True),
    "started_at_desc": ("started_at", True),
    "started_at_asc": ("started_at", False),
    "token_usage_desc": ("total_tokens", True),
    "sequence_asc": ("sequence_number", False),
    "timestamp_asc": ("timestamp", False),
    "timestamp_desc": ("timestamp", True),
}


def _values(wanted: Any) -> set[str] | None:
    """One value or a list of them (any of), as plain strings; None: no filter."""
    if wanted is None:
        return None
    items = [wanted] if isinstance(wanted, str) else list(wanted)
    return {item.value if isinstance(item, enum.Enum) else item for item in items}


def _within(
    value: datetime,
    *,
    after: datetime | None = None,
    before: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> bool:
    """after and before strict, since inclusive, until exclusive."""
    return (
        (after is None or value > after)
        and (before is None or value < before)
        and (since is None or value >= since)
        and (until is None or value < until)
    )


def total_tokens(run: Run) -> int:
    return usage_model.tokens(run.token_usage)["total_tokens"]


def _ordered(records: Iterable[Any], order_by: str) -> list[Any]:
    field, descending = ORDERS[order_by]

    def key(record: Any) -> tuple[Any, str]:
        value = total_tokens(record) if field == "total_tokens" else getattr(record, field)
        return (value, record.id)

    return sorted(records, key=key, reverse=descending)


class QueryModel:
    """The store's state as the port wrote it, and what each query returns over it."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.runs: dict[str, Run] = {}
        self.logs: dict[str, list[Event]] = {}  # per session, numbered 1, 2, ... in order

    # -- writes (what a correct store holds afterwards) -------------------------------------
    def save_session(self, session: Session) -> None:
        self.sessions[session.id] = session

    def save_run(self, run: Run) -> None:
        self.runs[run.id] = run

    def append_events(self, events: Iterable[Event]) -> list[Event]:
        stored = []
        for event in events:
            log = self.logs.setdefault(event.session_id, [])
            log.append(event.model_copy(update={"sequence_number": len(log) + 1}))
            stored.append(log[-1])
        return stored

    def delete_session(self, session_id: str) -> None:
        """The session, its runs, its events and its counter go (SES-4)."""
        self.sessions.pop(session_id, None)
        self.logs.pop(session_id, None)
        self.runs = {rid: r for rid, r in self.runs.items() if r.session_id != session_id}

    # -- searches (QRY-1, QRY-2, QRY-6): every match, in order ------------------------------
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
    ) -> list[Session]:
        statuses = _values(status)

        def matches(s: Session) -> bool:
            providers = {r.provider for r in self.runs.values() if r.session_id == s.id}
            return (
                (include_deleted or s.deleted_at is None)
                and (agent_id is None or s.agent_id == agent_id)
                and (statuses is None or s.status in statuses)
                and (provider is None or provider in providers)
                and (tags is None or set(tags) <= set(s.tags))
                and _within(s.created_at, after=created_after, before=created_before)
            )

        return _ordered(filter(matches, self.sessions.values()), order_by)

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
    ) -> list[Run]:
        statuses = _values(status)

        def matches(r: Run) -> bool:
            return (
                (session_id is None or r.session_id == session_id)
                and (provider is None or r.provider == provider)
                and (statuses is None or r.status in statuses)
                and _within(r.started_at, after=started_after, before=started_before)
                and (min_tokens is None or total_tokens(r) >= min_tokens)
            )

        return _ordered(filter(matches, self.runs.values()), order_by)

    def search_events(self, *, order_by: str = "sequence_asc", **filters: Any) -> list[Event]:
        return _ordered(self._events(**filters), order_by)

    def count_events(self, **filters: Any) -> int:
        return len(self._events(**filters))

    def _events(
        self,
        *,
        session_ids: list[str] | None = None,
        run_ids: list[str] | None = None,
        types: Any = None,
        providers: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str | None = None,
    ) -> list[Event]:
        wanted = _values(types)
        return [
            e
            for log in self.logs.values()
            for e in log
            if (session_ids is None or e.session_id in session_ids)
            and (run_ids is None or e.run_id in run_ids)
            and (wanted is None or e.type in wanted)
            and (providers is None or e.provider in providers)
            and _within(e.timestamp, since=since, until=until)
            and (correlation_id is None or e.correlation_id == correlation_id)
        ]

    # -- stats and export (QRY-8): None for an unknown session -------------------------------
    def session_runs(self, session_id: str) -> list[Run]:
        """In RUN-2 order: (started_at, id)."""
        return _ordered(
            (r for r in self.runs.values() if r.session_id == session_id), "started_at_asc"
        )

    def session_stats(self, session_id: str) -> dict[str, Any] | None:
        if session_id not in self.sessions:
            return None
        runs = self.session_runs(session_id)
        events = self.logs.get(session_id, [])
        totals = dict.fromkeys((*usage_model.COUNTED, "total_tokens"), 0)
        for run in runs:
            for key, count in usage_model.tokens(run.token_usage).items():
                totals[key] += count
        statuses: dict[str, int] = {}
        for run in runs:
            statuses[run.status.value] = statuses.get(run.status.value, 0) + 1
        stamps = [e.timestamp for e in events]
        return {
            "session_id": session_id,
            "event_count": len(events),
            "run_count": len(runs),
            "token_totals": totals,
            "providers_used": sorted({r.provider for r in runs if r.provider is not None}),
            "first_event_at": min(stamps, default=None),
            "last_event_at": max(stamps, default=None),
            "status_counts": statuses,
        }

    def export_session(self, session_id: str) -> dict[str, Any] | None:
        if session_id not in self.sessions:
            return None
        return {
            "session": self.sessions[session_id],
            "runs": self.session_runs(session_id),
            "events": list(self.logs.get(session_id, [])),
            "artifacts": [],
        }

    # -- usage and cost (QRY-9, QRY-10) ------------------------------------------------------
    def _runs_for(
        self,
        *,
        session_id: str | None = None,
        agent_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Run]:
        def agent_of(run: Run) -> str | None:
            session = self.sessions.get(run.session_id)
            return None if session is None else session.agent_id

        return [
            r
            for r in self.runs.values()
            if (session_id is None or r.session_id == session_id)
            and (agent_id is None or agent_of(r) == agent_id)
            and (provider is None or r.provider == provider)
            and _within(r.started_at, since=since, until=until)
        ]

    def usage_summary(self, **filters: Any) -> dict[str, Any]:
        def figures(runs: list[Run]) -> dict[str, int]:
            counted = [usage_model.tokens(r.token_usage) for r in runs]
            return {
                "total_input_tokens": sum(c["input_tokens"] for c in counted),
                "total_output_tokens": sum(c["output_tokens"] for c in counted),
                "total_tokens": sum(c["total_tokens"] for c in counted),
                "run_count": len(runs),
            }

        runs = self._runs_for(**filters)
        groups: dict[str, list[Run]] = {}
        for run in runs:
            groups.setdefault(UNKNOWN if run.provider is None else run.provider, []).append(run)
        return {**figures(runs), "by_provider": {k: figures(v) for k, v in groups.items()}}

    def cost_summary(
        self, *, pricing_table: Mapping[str, Mapping[str, Any]] | None = None, **filters: Any
    ) -> dict[str, Any]:
        """``pricing_table`` as :func:`.usage_model.rates` reads it."""
        priced: list[tuple[Run, float]] = []
        unmapped = 0
        for run in self._runs_for(**filters):
            cost = usage_model.cost(run.model_dump(), pricing_table)
            if cost is None:
                unmapped += 1
            else:
                priced.append((run, cost))

        def summed(name: Callable[[Run], object]) -> dict[str, float]:
            found: dict[str, float] = {}
            for run, cost in priced:
                key = name(run)
                key = key if isinstance(key, str) else UNKNOWN
                found[key] = found.get(key, 0.0) + cost
            return found

        return {
            "total_cost_usd": sum(cost for _, cost in priced),
            "run_count": len(priced),
            "by_provider": summed(lambda r: r.provider),
            "by_model": summed(lambda r: r.provider_metadata.get("model")),
            "unmapped_runs": unmapped,
        }


__all__ = ["ORDERS", "UNKNOWN", "QueryModel", "total_tokens"]
