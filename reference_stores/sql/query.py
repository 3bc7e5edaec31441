"""``SqlQueryAPI``: the QueryAPI port over a ``SqlSessionStore``'s database (rules QRY-1..QRY-10).

A plain object bound to the store: it owns no connection, thread or cache, and runs every query
through the store's own plumbing (its engine, retries and error mapping), so it sees exactly what
the store sees. Filtering, ordering, paging and the sums all happen in SQL:

* pages are keyset pages: ``WHERE (key, id) > (cursor's key, cursor's id) ORDER BY key, id
  LIMIT n + 1`` on the indexes of migration ``0002_query_indexes``, so page 1,000 costs what
  page 1 does; cursors are the kit's (``query_args``: bound to the search's filters and order);
* a page and its ``total_count``, a session's stats, an export each read in one read
  transaction (a snapshot), so their figures agree with each other;
* token counts are read from the JSON text with each dialect's JSON functions
  (``query_sql``); cost summaries sum ``cost_usd`` and tokens per (provider, model) in SQL and
  price the token sums in Python, where the pricing table resolves its rates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pytest_asm_contract._contract.errors import ErrorCode, StoreError, validation_error
from pytest_asm_contract._contract.model import Event, Run, Session
from pytest_asm_contract._contract.query import (
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
    Search,
    SessionSearch,
)
from pytest_asm_contract._contract.usage import UNKNOWN, PricingTable, TokenTotals
from reference_stores.query_front import QueryFront
from reference_stores.sql import codec
from reference_stores.sql.query_sql import Expressions
from reference_stores.sql.store import SqlSessionStore
from reference_stores.sql.summaries import CostSums, added, decoded_string, figures

try:
    import sqlalchemy as sa
except ImportError:  # DEP-1: building a store without SQLAlchemy already failed
    sa = None  # type: ignore[assignment]

R = TypeVar("R", Session, Run, Event)
#: Filters as SQL conditions, or None when no row can match (a value the backend cannot hold).
Where = list[Any] | None
#: A filter combination: each set filter's name and its list length (0: a single value).
Shape = tuple[tuple[str, int], ...]


class SqlQueryAPI(QueryFront):
    """Queries over one ``SqlSessionStore`` (SQLite, PostgreSQL, MariaDB)."""

    def __init__(self, store: SqlSessionStore) -> None:
        if not isinstance(store, SqlSessionStore):
            raise validation_error(
                f"SqlQueryAPI serves a SqlSessionStore, got {type(store).__name__}", field="store"
            )
        self._store = store
        self._t = store._t
        self._x = Expressions(store._dialect)
        self._limits = store._limits
        # statements built once per filter shape (see _event_statements)
        self._event_shapes: dict[Shape, tuple[list[Any], Any]] = {}

    def __repr__(self) -> str:
        return f"SqlQueryAPI({self._store!r})"

    # -- plumbing -------------------------------------------------------------------------------
    def _read(self, operation: str, fn: Callable[[sa.Connection], Any]) -> Any:
        return self._store._read(operation, fn, consistent=True)

    def _storable(self, values: frozenset[str] | None) -> list[str] | None:
        """The values a column can hold (the others match no row), or None for no filter."""
        return None if values is None else [v for v in values if self._limits.storable(v)]

    def _micros(self, moment: datetime) -> int:
        return codec.to_micros(moment)

    def _page(
        self,
        operation: str,
        table: sa.Table,
        where: Where,
        key: Any,
        search: Search,
        decode: Callable[[Mapping[Any, Any]], R],
        *,
        count: bool = False,
        params: dict[str, Any] | None = None,
    ) -> tuple[list[R], str | None, int]:
        """The page of rows matching ``where`` after ``search``'s cursor, its cursor and (with
        ``count``) the number of every match."""
        if where is None:
            return [], None, 0
        conditions = list(where)
        if search.after is not None:
            value, record_id = search.after
            position = self._micros(value) if isinstance(value, datetime) else value
            conditions.append(
                self._x.after(key, table.c.id, position, record_id, search.descending)
            )
        order = (key.desc(), table.c.id.desc()) if search.descending else (key, table.c.id)
        query = sa.select(table).where(*conditions).order_by(*order).limit(search.limit + 1)
        counting = sa.select(sa.func.count()).select_from(table).where(*where)

        def read(connection: sa.Connection) -> tuple[Sequence[Any], int]:
            rows = connection.execute(query, params).mappings().all()
            return rows, int(connection.execute(counting, params).scalar_one()) if count else 0

        rows, total = self._read(operation, read)
        records = [decode(row) for row in rows[: search.limit]]
        cursor = search.cursor_after(records[-1]) if len(rows) > search.limit else None
        return records, cursor, total

    # -- searches -------------------------------------------------------------------------------
    def _search_sessions(self, search: SessionSearch) -> SessionPage:
        t = self._t.sessions
        key = t.c.updated_at if search.order_by == "updated_at_desc" else t.c.created_at
        where = self._session_filters(search)
        sessions, next_cursor, total = self._page(
            "search_sessions", t, where, key, search, codec.session_from_row, count=True
        )
        return SessionPage(sessions=sessions, cursor=next_cursor, total_count=total)

    def _session_filters(self, search: SessionSearch) -> Where:
        t, runs = self._t.sessions, self._t.runs
        where: list[Any] = []
        if not search.include_deleted:
            where.append(t.c.deleted_at.is_(None))
        if search.agent_id is not None:
            if not self._limits.storable(search.agent_id):
                return None
            where.append(t.c.agent_id == search.agent_id)
        if search.statuses is not None:
            where.append(t.c.status.in_(sorted(s.value for s in search.statuses)))
        if search.tags is not None:
            if not all(self._limits.storable(tag) for tag in search.tags):
                return None
            where.append(self._x.has_tags(t.c.tags, search.tags))
        if search.created_after is not None:
            where.append(t.c.created_at > self._micros(search.created_after))
        if search.created_before is not None:
            where.append(t.c.created_at < self._micros(search.created_before))
        if search.provider is not None:
            if not self._limits.storable(search.provider):
                return None
            where.append(
                sa.exists().where(
                    runs.c.session_id == t.c.id, self._x.exact(runs.c.provider) == search.provider
                )
            )
        return where

    def _search_runs(self, search: RunSearch) -> RunPage:
        t = self._t.runs
        total_tokens = self._x.total_tokens(t.c.token_usage)
        key = total_tokens if search.order_by == "token_usage_desc" else t.c.started_at
        where = self._run_filters(search, total_tokens)
        runs, next_cursor, _ = self._page("search_runs", t, where, key, search, codec.run_from_row)
        return RunPage(runs=runs, cursor=next_cursor)

    def _run_filters(self, search: RunSearch, total_tokens: Any) -> Where:
        t = self._t.runs
        if not (
            self._limits.storable(search.session_id) and self._limits.storable(search.provider)
        ):
            return None
        where: list[Any] = []
        if search.session_id is not None:
            where.append(t.c.session_id == search.session_id)
        if search.provider is not None:
            where.append(self._x.exact(t.c.provider) == search.provider)
        if search.statuses is not None:
            where.append(t.c.status.in_(sorted(s.value for s in search.statuses)))
        if search.started_after is not None:
            where.append(t.c.started_at > self._micros(search.started_after))
        if search.started_before is not None:
            where.append(t.c.started_at < self._micros(search.started_before))
        if search.min_tokens is not None:
            where.append(total_tokens >= search.min_tokens)
        return where

    def _event_values(self, filters: EventFilters) -> dict[str, Any] | None:
        """The filters' values as the columns hold them (lists sorted), or None when a value
        no row can hold leaves nothing to match."""
        values: dict[str, Any] = {}
        for name, given in (
            ("session_id", filters.session_ids),
            ("run_id", filters.run_ids),
            ("provider", filters.providers),
        ):
            storable = self._storable(given)
            if storable is not None:
                if not storable:
                    return None
                values[name] = sorted(storable)
        if filters.types is not None:
            values["type"] = sorted(kind.value for kind in filters.types)
        if filters.since is not None:
            values["since"] = self._micros(filters.since)
        if filters.until is not None:
            values["until"] = self._micros(filters.until)
        if filters.correlation_id is not None:
            if not self._limits.storable(filters.correlation_id):
                return None
            values["correlation_id"] = filters.correlation_id
        return values

    def _event_conditions(self, shape: Shape) -> list[Any]:
        """The WHERE of the events matching filters of this shape (each filter's name and list
        length), with bound parameters: built once per shape, then reused."""
        t = self._t.events
        columns = {
            "session_id": t.c.session_id,
            "run_id": t.c.run_id,
            "provider": self._x.exact(t.c.provider),
            "type": t.c.type,
            "correlation_id": self._x.exact(t.c.correlation_id),
        }
        where: list[Any] = []
        for name, length in shape:
            if name == "since":
                where.append(t.c.timestamp >= sa.bindparam("since"))
            elif name == "until":
                where.append(t.c.timestamp < sa.bindparam("until"))
            elif length == 1:  # "=" spares the expanding IN's work on every call
                where.append(columns[name] == sa.bindparam(name))
            elif length > 1:
                where.append(columns[name].in_(sa.bindparam(name, expanding=True)))
            else:
                where.append(columns[name] == sa.bindparam(name))
        return where

    def _event_statements(self, shape: Shape) -> tuple[list[Any], Any]:
        """The conditions and the count_events statement of a filter shape, built once: the
        same statement objects let SQLAlchemy's compiled cache hit."""
        built = self._event_shapes.get(shape)
        if built is None:
            conditions = self._event_conditions(shape)
            count = sa.select(sa.func.count()).select_from(self._t.events).where(*conditions)
            built = self._event_shapes[shape] = (conditions, count)
        return built

    def _event_filters(self, filters: EventFilters) -> tuple[list[Any], Any, dict[str, Any]] | None:
        """The events' WHERE conditions, the count_events statement and their parameters, or
        None when nothing matches."""
        values = self._event_values(filters)
        if values is None:
            return None
        conditions, count = self._event_statements(_shape(values))
        params = {
            name: value[0] if isinstance(value, list) and len(value) == 1 else value
            for name, value in values.items()
        }
        return conditions, count, params

    def _search_events(self, search: EventSearch) -> EventPage:
        t = self._t.events
        key = t.c.sequence_number if search.order_by == "sequence_asc" else t.c.timestamp
        bound = self._event_filters(search.where)
        where = None if bound is None else bound[0]
        events, next_cursor, _ = self._page(
            "search_events",
            t,
            where,
            key,
            search,
            codec.event_from_row,
            params=None if bound is None else bound[2],
        )
        return EventPage(events=events, cursor=next_cursor)

    def _count_events(self, filters: EventFilters) -> int:
        bound = self._event_filters(filters)
        if bound is None:
            return 0
        _, query, params = bound
        count = self._store._read("count_events", lambda c: c.execute(query, params).scalar_one())
        return int(count)

    # -- one session ----------------------------------------------------------------------------
    def _session(self, connection: sa.Connection, session_id: str) -> Session:
        t = self._t.sessions
        row = None
        if self._limits.storable(session_id):
            row = connection.execute(sa.select(t).where(t.c.id == session_id)).mappings().first()
        if row is None:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND,
                f"no session {session_id!r}",
                {"session_id": session_id},
            )
        return codec.session_from_row(row)

    def _session_stats(self, checked: str) -> SessionStats:
        events, runs = self._t.events, self._t.runs
        event_figures = sa.select(
            sa.func.count(), sa.func.min(events.c.timestamp), sa.func.max(events.c.timestamp)
        ).where(events.c.session_id == checked)
        provider = self._x.exact(runs.c.provider)  # MariaDB would group 'a' with 'a '
        run_groups = (
            sa.select(
                runs.c.status,
                provider,
                sa.func.count(),
                *self._x.token_sums(runs.c.token_usage),
            )
            .where(runs.c.session_id == checked)
            .group_by(runs.c.status, provider)
        )

        def read(connection: sa.Connection) -> tuple[Any, Sequence[Any]]:
            self._session(connection, checked)
            return connection.execute(event_figures).one(), connection.execute(run_groups).all()

        (event_count, first, last), groups = self._read("get_session_stats", read)
        status_counts: dict[str, int] = {}
        tokens, providers = TokenTotals(), set()
        for status, provider, count, *sums in groups:
            status_counts[status] = status_counts.get(status, 0) + int(count)
            tokens += self._token_totals(sums)
            if provider is not None:
                providers.add(provider)
        return SessionStats(
            session_id=checked,
            event_count=int(event_count),
            run_count=sum(status_counts.values()),
            token_totals=tokens,
            providers_used=sorted(providers),
            first_event_at=None if first is None else codec.from_micros(int(first)),
            last_event_at=None if last is None else codec.from_micros(int(last)),
            status_counts=status_counts,
        )

    def _export(self, checked: str, include_artifacts: bool) -> SessionExport:
        runs, events = self._t.runs, self._t.events
        run_rows = (
            sa.select(runs)
            .where(runs.c.session_id == checked)
            .order_by(runs.c.started_at, runs.c.id)
        )
        event_rows = (
            sa.select(events)
            .where(events.c.session_id == checked)
            .order_by(events.c.sequence_number)
        )

        registry = self._t.artifact_registry
        artifact_rows = (
            sa.select(registry)
            .where(registry.c.session_id == checked)
            .order_by(registry.c.created_at, registry.c.id)
        )

        def read(connection: sa.Connection) -> SessionExport:
            session = self._session(connection, checked)
            return SessionExport(
                session=session,
                runs=[codec.run_from_row(r) for r in connection.execute(run_rows).mappings()],
                events=[codec.event_from_row(r) for r in connection.execute(event_rows).mappings()],
                artifacts=[
                    codec.artifact_meta_from_row(r)
                    for r in connection.execute(artifact_rows).mappings()
                ]
                if include_artifacts
                else [],
            )

        export: SessionExport = self._read("export_session", read)
        return export

    # -- aggregates -----------------------------------------------------------------------------
    def _token_totals(self, sums: Sequence[Any]) -> TokenTotals:
        inputs, outputs, cache_read, cache_creation, total = self._x.token_figures(sums)
        return TokenTotals(
            input_tokens=inputs,
            output_tokens=outputs,
            cache_read_tokens=cache_read,
            cache_creation_tokens=cache_creation,
            total_tokens=total,
        )

    def _scope(self, scope: RunScope) -> Where:
        runs, sessions = self._t.runs, self._t.sessions
        if not all(
            self._limits.storable(v) for v in (scope.session_id, scope.agent_id, scope.provider)
        ):
            return None
        where: list[Any] = []
        if scope.session_id is not None:
            where.append(runs.c.session_id == scope.session_id)
        if scope.provider is not None:
            where.append(self._x.exact(runs.c.provider) == scope.provider)
        if scope.since is not None:
            where.append(runs.c.started_at >= self._micros(scope.since))
        if scope.until is not None:
            where.append(runs.c.started_at < self._micros(scope.until))
        if scope.agent_id is not None:
            agents_sessions = sa.select(sessions.c.id).where(sessions.c.agent_id == scope.agent_id)
            where.append(runs.c.session_id.in_(agents_sessions))
        return where

    def _usage(self, scope: RunScope) -> UsageSummary:
        where = self._scope(scope)
        if where is None:
            return UsageSummary()
        runs = self._t.runs
        by_name = self._x.exact(runs.c.provider)
        query = (
            sa.select(by_name, sa.func.count(), *self._x.token_sums(runs.c.token_usage))
            .where(*where)
            .group_by(by_name)
        )
        groups = self._store._read("get_usage_summary", lambda c: c.execute(query).all())
        by_provider: dict[str, UsageFigures] = {}
        overall = UsageFigures()
        for provider_name, count, *sums in groups:
            group = figures(int(count), self._token_totals(sums))
            name = provider_name or UNKNOWN
            by_provider[name] = added(by_provider.get(name, UsageFigures()), group)
            overall = added(overall, group)
        return UsageSummary(**overall.model_dump(), by_provider=by_provider)

    def _cost(self, scope: RunScope, table: PricingTable | None) -> CostSummary:
        where = self._scope(scope)
        if where is None:
            return CostSummary()
        runs = self._t.runs
        costed = runs.c.cost_usd.is_not(None)
        by_name, model = (
            self._x.exact(runs.c.provider),
            self._x.exact(self._x.string_json(runs.c.provider_metadata, "model")),
        )
        uncosted_tokens = self._x.token_sums(runs.c.token_usage, only=sa.not_(costed))
        query = (
            sa.select(
                by_name,
                model,
                sa.func.sum(sa.case((costed, sa.cast(runs.c.cost_usd, sa.Float)), else_=sa.null())),
                sa.func.sum(sa.case((costed, 1), else_=0)),
                sa.func.sum(sa.case((costed, 0), else_=1)),
                *uncosted_tokens,
            )
            .where(*where)
            .group_by(by_name, model)
        )
        groups = self._store._read("get_cost_summary", lambda c: c.execute(query).all())
        summary = CostSums()
        for provider_name, model_json, cost, priced, unpriced, *sums in groups:
            model_name = decoded_string(model_json)
            summary.add(provider_name, model_name, float(cost or 0.0), int(priced))
            if int(unpriced):
                tokens = self._token_totals(sums)
                summary.price(provider_name, model_name, int(unpriced), tokens, table)
        return summary.result()


def _shape(values: Mapping[str, Any]) -> Shape:
    """Which filters are set, and how many values each list holds (1 is bound as a scalar)."""
    return tuple(
        (name, len(value) if isinstance(value, list) else 0) for name, value in values.items()
    )


__all__ = ["SqlQueryAPI"]
