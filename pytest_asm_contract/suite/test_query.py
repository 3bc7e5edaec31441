"""QRY-1..QRY-7: the QueryAPI's searches, cursors and counts, checked against what the session
store holds."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.query import LIMIT_MAX
from pytest_asm_contract.suite._builders import a_run, a_session, an_event, at, expect_error, ids_of
from pytest_asm_contract.suite._query_data import (
    EVENT_FILTERS,
    EVERY_ORDER,
    KIND_ORDERS,
    KINDS,
    NAIVE,
    ORDERS,
    PRICING,
    RUN_FILTERS,
    SESSION_FILTERS,
    _found,
    _in_order,
    _odd_token_runs,
    _paged_ids,
    _pages,
    _search,
    _snapshot,
    _soft_deleted,
    _tampered,
    _world,
)


class TestQuery:
    # -- QRY-1: filters -----------------------------------------------------------------------
    @rule("QRY-1")
    @pytest.mark.parametrize(
        ("kind", "filters", "expected"),
        [pytest.param("sessions", *p.values, id=f"sessions-{p.id}") for p in SESSION_FILTERS]
        + [pytest.param("runs", *p.values, id=f"runs-{p.id}") for p in RUN_FILTERS]
        + [pytest.param("events", *p.values, id=f"events-{p.id}") for p in EVENT_FILTERS],
    )
    def test_filters_select_exactly_the_matching_records(
        self, asm_store: Any, asm_query: Any, kind: str, filters: dict[str, Any], expected: str
    ) -> None:
        _world(asm_store)
        found = _found(asm_query, kind, limit=LIMIT_MAX, **filters)
        assert sorted(found) == sorted(expected.split()), (
            f"search_{kind}({filters}) must return exactly the records that pass every filter "
            "(AND; a list means any of; tags all of; after/before/until strict, since inclusive)"
        )

    @rule("QRY-1")
    @pytest.mark.parametrize(
        ("min_tokens", "expected"),
        [(0, "u1 u2 u3 u4 u5"), (1, "u1 u4 u5"), (7, "u1 u4"), (8, "u4"), (51, "")],
    )
    def test_min_tokens_reads_the_total_as_section_4_says(
        self, asm_store: Any, asm_query: Any, min_tokens: int, expected: str
    ) -> None:
        _odd_token_runs(asm_store)
        found = _found(asm_query, "runs", min_tokens=min_tokens)
        assert sorted(found) == expected.split(), (
            "a run's total tokens are total_tokens when it is an int >= 0 (0 included), else "
            "input + output, each counting only when an int >= 0"
        )

    @rule("QRY-1")
    def test_text_filters_compare_every_character(self, asm_store: Any, asm_query: Any) -> None:
        """Tags, providers and correlation ids equal only when every character does: no case
        folding, no trailing-space padding (a PAD SPACE collation), no accent folding."""
        spellings = ("a", "a ", "A", "\u00e1", " a")
        for n, text in enumerate(spellings):
            asm_store.save_session(a_session(id=f"s{n}", tags=[text]))
            asm_store.save_run(a_run(f"s{n}", id=f"r{n}", provider=text))
            asm_store.append_event(
                an_event(f"s{n}", id=f"e{n}", provider=text, correlation_id=text)
            )
        for n, text in enumerate(spellings):
            found = {
                "tags": _found(asm_query, "sessions", tags=[text]),
                "provider (sessions)": _found(asm_query, "sessions", provider=text),
                "provider (runs)": _found(asm_query, "runs", provider=text),
                "providers": _found(asm_query, "events", providers=[text]),
                "correlation_id": _found(asm_query, "events", correlation_id=text),
            }
            wanted = {
                "tags": [f"s{n}"],
                "provider (sessions)": [f"s{n}"],
                "provider (runs)": [f"r{n}"],
                "providers": [f"e{n}"],
                "correlation_id": [f"e{n}"],
            }
            assert found == wanted, f"searching for {text!r} must find its own records only"

    # -- QRY-2: orders ------------------------------------------------------------------------
    @rule("QRY-2")
    @pytest.mark.parametrize(("kind", "order"), EVERY_ORDER)
    def test_orders_are_total_with_ties_broken_by_id(
        self, asm_store: Any, asm_query: Any, kind: str, order: str
    ) -> None:
        expected = _in_order(getattr(_world(asm_store), kind), order)
        assert _found(asm_query, kind, order_by=order, limit=LIMIT_MAX) == expected, (
            f"search_{kind}(order_by={order!r}) must break ties by id in the order's direction"
        )

    @rule("QRY-2")
    @pytest.mark.parametrize(
        ("kind", "order"),
        [("sessions", "updated_at_desc"), ("runs", "started_at_desc"), ("events", "sequence_asc")],
    )
    def test_default_orders(self, asm_store: Any, asm_query: Any, kind: str, order: str) -> None:
        expected = _in_order(getattr(_world(asm_store), kind), order)
        assert _found(asm_query, kind) == expected, f"search_{kind} orders by {order} by default"

    # -- QRY-3: cursors -----------------------------------------------------------------------
    @rule("QRY-3")
    @pytest.mark.parametrize(("kind", "order"), EVERY_ORDER)
    def test_following_the_cursor_yields_every_match_once_in_order(
        self, asm_store: Any, asm_query: Any, kind: str, order: str
    ) -> None:
        expected = _in_order(getattr(_world(asm_store), kind), order)
        for limit in (1, 2, 3):
            pages = _pages(asm_query, kind, order_by=order, limit=limit)
            call = f"search_{kind}(order_by={order!r}, limit={limit})"
            assert _paged_ids(pages, kind) == expected, (
                f"{call}: following the cursor must return every match exactly once, in order"
            )
            assert all(len(getattr(p, kind)) <= limit for p in pages), f"{call}: page too long"
            assert getattr(pages[-1], kind), (
                f"{call}: the cursor must be None on the page holding the last match (a full "
                "page too), not one empty page later"
            )

    @rule("QRY-3")
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("cursor", ["not-a-cursor", ""], ids=["malformed", "empty"])
    def test_malformed_cursor_raises_invalid_cursor(
        self, asm_store: Any, asm_query: Any, kind: str, cursor: str
    ) -> None:
        _world(asm_store)
        with expect_error(ErrorCode.INVALID_CURSOR):
            _search(asm_query, kind, cursor=cursor, limit=2)

    @rule("QRY-3")
    @pytest.mark.parametrize("kind", KINDS)
    def test_tampered_cursor_raises_invalid_cursor(
        self, asm_store: Any, asm_query: Any, kind: str
    ) -> None:
        _world(asm_store)
        cursor = _search(asm_query, kind, limit=1).cursor
        assert isinstance(cursor, str) and cursor, "a cursor is a non-empty string"
        for tampered in _tampered(cursor):
            with expect_error(ErrorCode.INVALID_CURSOR):
                _search(asm_query, kind, cursor=tampered, limit=1)

    @rule("QRY-3")
    @pytest.mark.parametrize(
        ("kind", "issued_for", "other"),
        [
            ("sessions", {"agent_id": "alpha"}, {"agent_id": "beta"}),
            ("sessions", {"agent_id": "alpha"}, {}),
            ("sessions", {"agent_id": "alpha"}, {"agent_id": "alpha", "tags": ["x"]}),
            ("runs", {"provider": "anthropic"}, {"provider": "openai"}),
            ("runs", {"provider": "anthropic"}, {"provider": "anthropic", "min_tokens": 1}),
            ("events", {"session_ids": ["s-a"]}, {"session_ids": ["s-b"]}),
            ("events", {"session_ids": ["s-a"]}, {}),
        ],
    )
    def test_cursor_reused_with_other_filters_raises_invalid_cursor(
        self,
        asm_store: Any,
        asm_query: Any,
        kind: str,
        issued_for: dict[str, Any],
        other: dict[str, Any],
    ) -> None:
        _world(asm_store)
        cursor = _search(asm_query, kind, limit=1, **issued_for).cursor
        assert cursor is not None, f"search_{kind}({issued_for}, limit=1) has more than one match"
        with expect_error(ErrorCode.INVALID_CURSOR):
            _search(asm_query, kind, cursor=cursor, limit=1, **other)

    @rule("QRY-3")
    @pytest.mark.parametrize("kind", KINDS)
    def test_cursor_reused_with_another_order_raises_invalid_cursor(
        self, asm_store: Any, asm_query: Any, kind: str
    ) -> None:
        _world(asm_store)
        for order in ORDERS[kind]:
            cursor = _search(asm_query, kind, order_by=order, limit=1).cursor
            for other in [o for o in ORDERS[kind] if o != order]:
                with expect_error(ErrorCode.INVALID_CURSOR):
                    _search(asm_query, kind, order_by=other, cursor=cursor, limit=1)

    @rule("QRY-3")
    @pytest.mark.parametrize("change", ["insert", "delete"])
    @pytest.mark.parametrize("kind", KINDS)
    def test_cursor_keeps_its_place_when_records_before_it_change(
        self, asm_store: Any, asm_query: Any, kind: str, change: str
    ) -> None:
        # order, page size, and a session whose records of this kind are all on the first page
        order, limit, doomed = {
            "sessions": ("created_at_asc", 2, "s-e"),
            "runs": ("started_at_desc", 2, "s-d"),
            "events": ("sequence_asc", 3, "s-d"),
        }[kind]
        expected = _in_order(getattr(_world(asm_store), kind), order)
        first = _search(asm_query, kind, order_by=order, limit=limit)
        assert ids_of(getattr(first, kind)) == expected[:limit] and first.cursor is not None
        if change == "delete":
            asm_store.delete_session(doomed)
        elif kind == "sessions":  # s-0 ties with s-a, the cursor's record, and sorts before it
            for sid, second in (("s-0", 10), ("s-00", 0)):
                asm_store.save_session(a_session(id=sid, created_at=at(second)))
        elif kind == "runs":
            for rid, second in (("r-new1", 125), ("r-new2", 200)):
                asm_store.save_run(a_run("s-a", id=rid, started_at=at(second)))
        else:  # sequence 1, and an id below every other first event's
            asm_store.save_session(a_session(id="s-new"))
            asm_store.append_event(an_event("s-new", id="e-00"))
        rest = _paged_ids(_pages(asm_query, kind, first.cursor, order_by=order, limit=limit), kind)
        seen = expected[:limit] + rest
        assert len(set(seen)) == len(seen), (
            f"a record came back twice after records before the cursor were {change}ed: {seen} "
            "(a cursor must be a keyset position, not an offset)"
        )
        assert [i for i in rest if i in expected] == expected[limit:], (
            f"after records before the cursor were {change}ed, following it must still return "
            "every remaining match exactly once, in order"
        )

    # -- QRY-4: counts ------------------------------------------------------------------------
    @rule("QRY-4")
    @pytest.mark.parametrize(
        ("filters", "count"),
        [({}, 5), ({"agent_id": "alpha"}, 3), ({"tags": ["x"], "provider": "openai"}, 1)],
    )
    def test_total_count_ignores_limit_and_cursor(
        self, asm_store: Any, asm_query: Any, filters: dict[str, Any], count: int
    ) -> None:
        _world(asm_store)
        for limit in (1, 2, LIMIT_MAX):
            pages = _pages(asm_query, "sessions", limit=limit, **filters)
            assert [p.total_count for p in pages] == [count] * len(pages), (
                f"total_count must count every match, on every page (limit={limit})"
            )

    @rule("QRY-4")
    @pytest.mark.parametrize(
        "filters",
        [
            pytest.param({}, id="none"),
            pytest.param({"session_ids": ["s-a", "s-b"]}, id="session_ids"),
            pytest.param({"types": ["message_sent", "run_started"]}, id="types"),
            pytest.param({"providers": ["anthropic"], "since": at(205)}, id="providers-since"),
            pytest.param({"run_ids": ["r2", "r4"], "until": at(215)}, id="run_ids-until"),
            pytest.param({"correlation_id": "c-none"}, id="no-match"),
        ],
    )
    def test_count_events_equals_what_paging_yields(
        self, asm_store: Any, asm_query: Any, filters: dict[str, Any]
    ) -> None:
        _world(asm_store)
        paged = _paged_ids(_pages(asm_query, "events", limit=2, **filters), "events")
        assert asm_query.count_events(**filters) == len(paged), (
            f"count_events({filters}) must equal the number of events paging search_events yields"
        )

    # -- QRY-5: validation --------------------------------------------------------------------
    @rule("QRY-5")
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("limit", [0, 1001, -1, "5", True, 2.0], ids=repr)
    def test_limit_outside_1_to_1000_or_not_an_int_raises_validation_error(
        self, asm_store: Any, asm_query: Any, kind: str, limit: Any
    ) -> None:
        _world(asm_store)
        with expect_error(ErrorCode.VALIDATION_ERROR):
            _search(asm_query, kind, limit=limit)

    @rule("QRY-5")
    @pytest.mark.parametrize("kind", KINDS)
    def test_limits_1_and_1000_are_accepted(
        self, asm_store: Any, asm_query: Any, kind: str
    ) -> None:
        everything = getattr(_world(asm_store), kind)
        assert len(_found(asm_query, kind, limit=1)) == 1
        assert len(_found(asm_query, kind, limit=LIMIT_MAX)) == len(everything)

    @rule("QRY-5")
    @pytest.mark.parametrize(
        ("method", "kwargs"),
        [
            pytest.param("search_sessions", {"order_by": "name_asc"}, id="sessions-order"),
            pytest.param(
                "search_sessions", {"order_by": "started_at_desc"}, id="runs-order-on-sessions"
            ),
            pytest.param("search_runs", {"order_by": "updated_at_desc"}, id="runs-order"),
            pytest.param("search_events", {"order_by": "sequence_desc"}, id="events-order"),
            pytest.param("search_sessions", {"status": "sleeping"}, id="session-status"),
            pytest.param(
                "search_sessions", {"status": ["active", "sleeping"]}, id="session-status-list"
            ),
            pytest.param("search_runs", {"status": "paused"}, id="run-status"),
            pytest.param("search_runs", {"status": ["completed", "done"]}, id="run-status-list"),
            pytest.param("search_events", {"types": "no_such_type"}, id="event-type"),
            pytest.param("count_events", {"types": ["message_sent", "nope"]}, id="event-type-list"),
            pytest.param("search_sessions", {"created_after": NAIVE}, id="naive-created_after"),
            pytest.param("search_sessions", {"created_before": NAIVE}, id="naive-created_before"),
            pytest.param("search_runs", {"started_after": NAIVE}, id="naive-started_after"),
            pytest.param("search_runs", {"started_before": NAIVE}, id="naive-started_before"),
            pytest.param("search_events", {"since": NAIVE}, id="naive-events-since"),
            pytest.param("count_events", {"until": NAIVE}, id="naive-count-until"),
            pytest.param("get_usage_summary", {"since": NAIVE}, id="naive-usage-since"),
            pytest.param("get_cost_summary", {"until": NAIVE}, id="naive-cost-until"),
            pytest.param("search_sessions", {"status": []}, id="empty-session-status"),
            pytest.param("search_runs", {"status": []}, id="empty-run-status"),
            pytest.param("search_events", {"types": []}, id="empty-types"),
            pytest.param("search_events", {"session_ids": []}, id="empty-session_ids"),
            pytest.param("search_events", {"run_ids": []}, id="empty-run_ids"),
            pytest.param("count_events", {"providers": []}, id="empty-providers"),
            pytest.param("search_events", {"session_ids": ["s-a", 7]}, id="int-in-session_ids"),
            pytest.param("count_events", {"run_ids": [None]}, id="none-in-run_ids"),
            pytest.param("search_runs", {"session_id": 7}, id="int-session_id"),
        ],
    )
    def test_invalid_arguments_raise_validation_error(
        self, asm_store: Any, asm_query: Any, method: str, kwargs: dict[str, Any]
    ) -> None:
        _world(asm_store)
        with expect_error(ErrorCode.VALIDATION_ERROR):
            getattr(asm_query, method)(**kwargs)

    # -- QRY-6: soft-deleted sessions ---------------------------------------------------------
    @rule("QRY-6")
    def test_soft_deleted_sessions_are_left_out_of_search_sessions(
        self, asm_store: Any, asm_query: Any
    ) -> None:
        _world(asm_store)
        _soft_deleted(asm_store)
        for filters in ({}, {"include_deleted": False}, {"agent_id": "alpha", "tags": ["x"]}):
            page = asm_query.search_sessions(**filters)
            assert "s-gone" not in ids_of(page.sessions), (
                f"search_sessions({filters}) must leave out soft-deleted sessions"
            )
        assert asm_query.search_sessions().total_count == 5, "and total_count must not count them"

    @rule("QRY-6")
    def test_include_deleted_returns_soft_deleted_sessions(
        self, asm_store: Any, asm_query: Any
    ) -> None:
        _world(asm_store)
        gone = _soft_deleted(asm_store)
        page = asm_query.search_sessions(include_deleted=True)
        assert (page.sessions[0], page.total_count) == (gone, 6), (
            "include_deleted=True returns soft-deleted sessions too, in order and counted"
        )
        alpha = asm_query.search_sessions(include_deleted=True, agent_id="alpha", tags=["x"])
        assert ids_of(alpha.sessions) == ["s-gone", "s-b", "s-a"]

    @rule("QRY-6")
    def test_other_queries_ignore_deleted_at(self, asm_store: Any, asm_query: Any) -> None:
        _world(asm_store)
        _soft_deleted(asm_store)
        assert ids_of(asm_query.search_runs(session_id="s-gone").runs) == ["r-gone"]
        assert "r-gone" in _found(asm_query, "runs", provider="anthropic")
        assert ids_of(asm_query.search_events(session_ids=["s-gone"]).events) == ["e-gone"]
        assert asm_query.count_events(session_ids=["s-gone"]) == 1
        stats = asm_query.get_session_stats("s-gone")
        assert (stats.run_count, stats.event_count) == (1, 1)
        assert asm_query.get_usage_summary(session_id="s-gone").total_tokens == 3
        # Reached, priced or not: how a run is priced is QRY-10's.
        alphas = {s.id for s in asm_store.list_sessions(agent_id="alpha")} | {"s-gone"}
        runs = sum(len(asm_store.list_runs(session_id)) for session_id in alphas)
        cost = asm_query.get_cost_summary(agent_id="alpha")
        assert cost.run_count + cost.unmapped_runs == runs, (
            "the cost summary's agent_id filter must reach the runs of soft-deleted sessions"
        )

    # -- QRY-7: records, freshness, no side effects -------------------------------------------
    @rule("QRY-7")
    def test_records_equal_the_stores_own_reads(self, asm_store: Any, asm_query: Any) -> None:
        world = _world(asm_store)
        sessions = asm_query.search_sessions(limit=LIMIT_MAX).sessions
        assert sessions and sessions == [asm_store.get_session(s.id) for s in sessions], (
            "sessions must come back equal field for field to what get_session returns"
        )
        runs = asm_query.search_runs(limit=LIMIT_MAX).runs
        assert runs and runs == [asm_store.get_run(r.id) for r in runs], (
            "runs must come back equal field for field to what get_run returns"
        )
        stored = {e.id: e for s in world.sessions for e in asm_store.get_events(s.id)}
        events = asm_query.search_events(limit=LIMIT_MAX).events
        assert events and events == [stored.get(e.id) for e in events], (
            "events must come back as get_events returns them, sequence numbers included"
        )

    @rule("QRY-7")
    def test_queries_reflect_the_latest_writes(self, asm_store: Any, asm_query: Any) -> None:
        session = a_session(id="s-1", created_at=at(0), updated_at=at(0))
        asm_store.save_session(session)
        assert asm_query.search_sessions().sessions == [session]
        changed = session.model_copy(update={"tags": ["done"], "updated_at": at(5)})
        asm_store.save_session(changed)
        assert asm_query.search_sessions(tags=["done"]).sessions == [changed]
        run = a_run(session, id="r-1", provider="openai", token_usage={"total_tokens": 10})
        asm_store.save_run(run)
        assert asm_query.search_sessions(provider="openai").sessions == [changed]
        bigger = run.model_copy(update={"token_usage": {"total_tokens": 99}})
        asm_store.save_run(bigger)
        assert asm_query.search_runs(min_tokens=50).runs == [bigger]
        assert asm_query.get_usage_summary().total_tokens == 99
        event = asm_store.append_event_with_sequence(an_event(session, run))
        assert asm_query.search_events().events == [event]
        assert asm_query.get_session_stats("s-1").event_count == 1
        asm_store.delete_session("s-1")
        assert asm_query.search_sessions(include_deleted=True).total_count == 0
        assert (asm_query.search_runs().runs, asm_query.count_events()) == ([], 0)

    @rule("QRY-7")
    def test_queries_change_nothing(self, asm_store: Any, asm_query: Any) -> None:
        session_ids = ids_of(_world(asm_store).sessions)
        before = _snapshot(asm_store, session_ids)
        for kind, order in KIND_ORDERS:
            _pages(asm_query, kind, order_by=order, limit=2)
        asm_query.search_sessions(include_deleted=True, tags=["x"], provider="openai")
        asm_query.search_runs(min_tokens=1, status=["completed"])
        asm_query.count_events(types=["message_sent"])
        for sid in session_ids:
            asm_query.get_session_stats(sid)
            asm_query.export_session(sid)
        asm_query.get_usage_summary(since=at(0))
        asm_query.get_cost_summary(pricing_table=PRICING)
        assert _snapshot(asm_store, session_ids) == before, "a query changed the store"


__all__ = ["TestQuery"]
