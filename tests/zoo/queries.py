"""Broken QueryAPIs over the correct in-memory store: each makes one mistake of the QRY rules.

``KIND = "query"``: the kit runs them as ``--asm-store=reference_stores.memory:InMemorySessionStore
--asm-query=tests.zoo.queries:<name>``, so every failure is the query object's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pytest_asm_contract._contract.errors import StoreError
from pytest_asm_contract._contract.model import Event, Run, Session
from pytest_asm_contract._contract.query import (
    LIMIT_MAX,
    RUN_ORDERS,
    EventPage,
    RunPage,
    SessionExport,
    SessionPage,
    SessionStats,
    UsageSummary,
)
from pytest_asm_contract._contract.query_args import (
    EventSearch,
    Key,
    RunScope,
    RunSearch,
    SessionSearch,
)
from pytest_asm_contract._contract.usage import PricingTable, Rates, RunUsage, run_usage
from reference_stores.memory import InMemoryQueryAPI


class _Zoo(InMemoryQueryAPI):
    KIND = "query"


# -- cursors (QRY-3) -------------------------------------------------------------------------------
class _PositionCursor:
    """A cursor that is the number of records already returned (an OFFSET)."""

    def _read_cursor(self, cursor: object) -> Key | None:
        if cursor is None:
            return None
        return (int(str(cursor)), "")

    def page(self, matches: Any) -> tuple[list[Any], str | None]:
        ordered = sorted(matches, key=self.sort_key, reverse=self.descending)  # type: ignore[attr-defined]
        start = 0 if self.after is None else self.after[0]  # type: ignore[attr-defined]
        end = start + self.limit  # type: ignore[attr-defined]
        return ordered[start:end], str(end) if len(ordered) > end else None


@dataclasses.dataclass(frozen=True)
class _OffsetSessions(_PositionCursor, SessionSearch):
    pass


@dataclasses.dataclass(frozen=True)
class _OffsetRuns(_PositionCursor, RunSearch):
    pass


@dataclasses.dataclass(frozen=True)
class _OffsetEvents(_PositionCursor, EventSearch):
    pass


class OffsetCursor(_Zoo):
    """Cursors hold an OFFSET: a record added or removed before the position between two pages
    makes the next page skip or repeat a record (and any string of digits is taken)."""

    BREAKS = ("QRY-3",)
    session_search = _OffsetSessions
    run_search = _OffsetRuns
    event_search = _OffsetEvents


@dataclasses.dataclass(frozen=True)
class _OrderBlindRuns(RunSearch):
    """Reads a cursor issued for any order of runs as if it were issued for this one."""

    def _read_cursor(self, cursor: object) -> Key | None:
        for order in RUN_ORDERS:
            with contextlib.suppress(StoreError):
                return dataclasses.replace(self, order_by=order)._read_cursor_as_issued(cursor)
        return self._read_cursor_as_issued(cursor)

    def _read_cursor_as_issued(self, cursor: object) -> Key | None:
        return super()._read_cursor(cursor)


class CursorIgnoresOrder(_Zoo):
    """A runs cursor issued for one order is taken by a search in another order, which then
    pages from a position of the wrong kind (a timestamp read as a token count, say)."""

    BREAKS = ("QRY-3",)
    run_search = _OrderBlindRuns


@dataclasses.dataclass(frozen=True)
class _UnboundSessions(SessionSearch):
    def digest(self) -> str:
        return self.kind


class CursorIgnoresFilters(_Zoo):
    """A session cursor names its position but not the filters it was issued for: reused with
    other filters, it silently pages them from that position."""

    BREAKS = ("QRY-3",)
    session_search = _UnboundSessions


# -- orders (QRY-2) --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _IdAlwaysAscending(RunSearch):
    def page(self, matches: Any) -> tuple[list[Any], str | None]:
        # Ties keep ascending ids whatever the direction: sort by id first, then stably by value.
        by_id = sorted(matches, key=lambda r: r.id)
        ordered = sorted(by_id, key=lambda r: self.sort_key(r)[0], reverse=self.descending)
        ordered = [r for r in ordered if self.is_after_cursor(r)]
        page = ordered[: self.limit]
        return page, self.cursor_after(page[-1]) if len(ordered) > self.limit else None


class TiesBrokenAscendingInDescendingOrders(_Zoo):
    """Runs that tie in a descending order come in ascending id order, not descending."""

    BREAKS = ("QRY-2",)
    ALSO = ("QRY-3",)  # its pages then skip and repeat ties across a page boundary
    run_search = _IdAlwaysAscending


# -- filters (QRY-1, QRY-6) ------------------------------------------------------------------------
def _session_filter(
    rule: Callable[[SessionSearch, Session], bool], **cleared: Any
) -> type[SessionSearch]:
    @dataclasses.dataclass(frozen=True)
    class Search(SessionSearch):
        def matches(self, session: Session, providers: Callable[[str], set[str]]) -> bool:
            rest = dataclasses.replace(self, **cleared)
            return SessionSearch.matches(rest, session, providers) and rule(self, session)

    return Search


class CreatedAfterInclusive(_Zoo):
    """created_after keeps sessions created exactly at that moment (>= instead of >)."""

    BREAKS = ("QRY-1",)
    session_search = _session_filter(
        lambda s, session: s.created_after is None or session.created_at >= s.created_after,
        created_after=None,
    )


class TagsAnyOf(_Zoo):
    """tags matches sessions with any of the listed tags instead of all of them."""

    BREAKS = ("QRY-1",)
    session_search = _session_filter(
        lambda s, session: s.tags is None or bool(s.tags & set(session.tags)), tags=None
    )


class DeletedSessionsIncluded(_Zoo):
    """search_sessions returns soft-deleted sessions without include_deleted."""

    BREAKS = ("QRY-6",)
    session_search = _session_filter(lambda s, session: True, include_deleted=True)


# -- counts (QRY-4) --------------------------------------------------------------------------------
class TotalCountAfterLimit(_Zoo):
    """total_count is the size of the page, not the number of matches."""

    BREAKS = ("QRY-4",)

    def search_sessions(self, **arguments: Any) -> SessionPage:
        page = super().search_sessions(**arguments)
        return page.model_copy(update={"total_count": len(page.sessions)})


class CountEventsIgnoresSessions(_Zoo):
    """count_events counts the events of every session, whatever session_ids says."""

    BREAKS = ("QRY-4",)
    ALSO = ("QRY-6",)  # the check that a deleted session's events still count names its session

    def count_events(self, **filters: Any) -> int:
        if filters.get("session_ids") is not None:
            super().count_events(**filters)  # the arguments are still validated
        return super().count_events(**{**filters, "session_ids": None})


# -- cost (QRY-10) ---------------------------------------------------------------------------------
class CostIgnoresCostUsd(_Zoo):
    """A run's own cost_usd is ignored: every run is priced from the table (or unmapped)."""

    BREAKS = ("QRY-10",)

    def _priced(self, run: Run, table: PricingTable | None) -> RunUsage:
        return run_usage(run.model_copy(update={"cost_usd": None}), table)


class _ShortestPrefix(PricingTable):
    def rates_for(self, provider: str | None, model: str | None) -> Rates | None:
        pricing = self.providers.get(provider) if provider is not None else None
        if pricing is None or model is None or model in pricing.models:
            return super().rates_for(provider, model)
        prefixes = [key for key in pricing.models if model.startswith(key)]
        return pricing.models[min(prefixes, key=len)] if prefixes else pricing.default


class PrefixPicksShortestKey(_Zoo):
    """Rate resolution takes the shortest model key that prefixes the model, not the longest."""

    BREAKS = ("QRY-10",)

    def _priced(self, run: Run, table: PricingTable | None) -> RunUsage:
        shortest = None if table is None else _ShortestPrefix.model_validate(table.model_dump())
        return run_usage(run, shortest)


# -- validation, stats, usage (QRY-5, QRY-8, QRY-9) ------------------------------------------------
class LimitAboveMaximumCapped(_Zoo):
    """A session search with a limit above 1000 is silently capped instead of refused."""

    BREAKS = ("QRY-5",)

    def search_sessions(self, **arguments: Any) -> SessionPage:
        limit = arguments.get("limit")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > LIMIT_MAX:
            arguments["limit"] = LIMIT_MAX
        return super().search_sessions(**arguments)


class ProvidersUsedInRunOrder(_Zoo):
    """Stats list a provider once per run, in run order, instead of sorted and distinct."""

    BREAKS = ("QRY-8",)

    def get_session_stats(self, session_id: str) -> SessionStats:
        stats = super().get_session_stats(session_id)
        runs = self._store.list_runs(stats.session_id)
        used = [r.provider for r in runs if r.provider is not None]
        return stats.model_copy(update={"providers_used": used})


class UsageTotalIsInputPlusOutput(_Zoo):
    """The usage summary's total_tokens is input + output, ignoring a run's own total_tokens."""

    BREAKS = ("QRY-9",)
    ALSO = ("QRY-7",)  # its freshness check reads a new run's total_tokens in the summary

    def get_usage_summary(self, **filters: Any) -> UsageSummary:
        summary = super().get_usage_summary(**filters)
        by_provider = {
            name: figures.model_copy(
                update={"total_tokens": figures.total_input_tokens + figures.total_output_tokens}
            )
            for name, figures in summary.by_provider.items()
        }
        total = summary.total_input_tokens + summary.total_output_tokens
        return summary.model_copy(update={"total_tokens": total, "by_provider": by_provider})


@dataclasses.dataclass(frozen=True)
class _LooseProviderRuns(RunSearch):
    def matches(self, run: Run) -> bool:
        wanted = self.provider
        if wanted is None or run.provider is None:
            return super().matches(run)
        same = run.provider.strip().casefold() == wanted.strip().casefold()
        return same and dataclasses.replace(self, provider=None).matches(run)


class ProviderMatchedLoosely(_Zoo):
    """search_runs compares providers ignoring case and surrounding spaces (a case-insensitive,
    PAD SPACE collation): "A " finds the runs of "a"."""

    BREAKS = ("QRY-1",)
    run_search = _LooseProviderRuns


class SumsWrapAt64Bits(_Zoo):
    """The usage summary sums tokens in a 64-bit unsigned integer, which wraps past 2**64."""

    BREAKS = ("QRY-9",)

    def _usage(self, scope: RunScope) -> UsageSummary:
        summary = super()._usage(scope)
        wrapped = {
            name: summary.model_dump()[name] % 2**64
            for name in ("total_input_tokens", "total_output_tokens", "total_tokens")
        }
        return summary.model_copy(update=wrapped)


class ExportWithoutArtifacts(_Zoo):
    """export_session leaves the artifacts out even with include_artifacts=True."""

    BREAKS = ("QRY-8",)

    def _export(self, session_id: str, include_artifacts: bool) -> SessionExport:
        return super()._export(session_id, False)


# -- freshness (QRY-7) -----------------------------------------------------------------------------
class StaleCopy(_Zoo):
    """Searches copy the store's data when a paging starts (a call without a cursor) and serve
    the pages that follow a cursor from that copy: they miss every write that completed after
    the first page. The other queries read the store."""

    BREAKS = ("QRY-7",)

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._copy: tuple[list[Session], list[Run], list[Event]] | None = None
        self._call = threading.local()  # whether the running call follows a cursor, per thread

    def _state(self) -> tuple[list[Session], list[Run], list[Event]]:
        following = getattr(self._call, "following", None)
        if following is None:
            return super()._state()
        if not following or self._copy is None:
            self._copy = super()._state()
        return self._copy

    @contextlib.contextmanager
    def _search(self, arguments: dict[str, Any]) -> Iterator[None]:
        self._call.following = arguments.get("cursor") is not None
        try:
            yield
        finally:
            self._call.following = None

    def search_sessions(self, **arguments: Any) -> SessionPage:
        with self._search(arguments):
            return super().search_sessions(**arguments)

    def search_runs(self, **arguments: Any) -> RunPage:
        with self._search(arguments):
            return super().search_runs(**arguments)

    def search_events(self, **arguments: Any) -> EventPage:
        with self._search(arguments):
            return super().search_events(**arguments)
