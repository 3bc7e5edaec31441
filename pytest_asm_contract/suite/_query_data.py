"""The data the QueryAPI checks write through the store, and what they expect of it.

One data set whose ids, ties and exact boundaries make every filter and order visible, small
sets for odd token values, stats and cost, and helpers to page and compare; shared by
``test_query.py`` (searches, QRY-1..QRY-7) and ``test_query_aggregates.py`` (QRY-8..QRY-10).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from pytest_asm_contract._contract.model import Event, EventType, Run, Session, SessionStatus
from pytest_asm_contract._contract.query import EVENT_ORDERS, RUN_ORDERS, SESSION_ORDERS
from pytest_asm_contract._contract.usage import PricingTable, ProviderPricing, Rates
from pytest_asm_contract.suite._builders import (
    a_run,
    a_session,
    an_event,
    at,
    ids_of,
)

US = timedelta(microseconds=1)
NAIVE = datetime(2026, 1, 1, 12, 0, 0)  # no tzinfo on purpose
KINDS = ("sessions", "runs", "events")
ORDERS = {"sessions": SESSION_ORDERS, "runs": RUN_ORDERS, "events": EVENT_ORDERS}
KIND_ORDERS = [(kind, order) for kind in KINDS for order in ORDERS[kind]]
EVERY_ORDER = [pytest.param(k, o, id=f"{k}-{o}") for k, o in KIND_ORDERS]
RS, MS = EventType.RUN_STARTED, EventType.MESSAGE_SENT


def _usage(input_tokens: int, output_tokens: int, **more: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, **more}


# -- one data set whose ids, ties and boundaries make every filter and order visible ----------
#: id, agent, status, tags, created_at, updated_at (seconds after T0); saved in this order.
SESSIONS = (
    ("s-c", "beta", "active", ("y", "x", "z"), 20, 40),
    ("s-e", "alpha", "failed", ("z",), 5, 40),
    ("s-d", "beta", "paused", (), 30, 60),
    ("s-b", "alpha", "completed", ("x",), 20, 50),
    ("s-a", "alpha", "active", ("x", "y"), 10, 50),
)
#: id, session, provider, status, started_at, token_usage.
RUNS: tuple[tuple[str, str, str | None, str, int, dict[str, Any]], ...] = (
    ("r3", "s-b", "anthropic", "running", 110, _usage(100, 50)),
    ("r1", "s-a", "anthropic", "completed", 100, _usage(100, 50)),
    ("r6", "s-e", "google", "timeout", 90, {}),
    ("r2", "s-a", "openai", "failed", 110, _usage(10, 5, total_tokens=200)),
    ("r5", "s-d", "openai", "completed", 130, _usage(100, 200, cache_read_tokens=40)),
    ("r4", "s-c", None, "completed", 120, _usage(3, 4)),
)
#: Each run's (input, output, total) tokens as section 4 reads its token_usage.
TOKENS = {"r1": (100, 50, 150), "r2": (10, 5, 200), "r3": (100, 50, 150), "r4": (3, 4, 7)}
TOKENS |= {"r5": (100, 200, 300), "r6": (0, 0, 0)}
#: id, session, run, type, timestamp, provider, correlation_id; appended in this order.
EVENTS = (
    ("e-07", "s-a", "r1", RS, 200, "anthropic", "c1"),
    ("e-05", "s-b", "r3", RS, 200, "anthropic", "c1"),
    ("e-03", "s-a", "r1", MS, 210, "anthropic", "c1"),
    ("e-04", "s-c", "r4", MS, 205, None, None),
    ("e-09", "s-b", "r3", MS, 220, "anthropic", None),
    ("e-11", "s-a", "r2", EventType.MESSAGE_RECEIVED, 210, "openai", None),
    ("e-10", "s-c", "r4", EventType.TOOL_CALL_STARTED, 210, None, "c3"),
    ("e-02", "s-b", None, EventType.ERROR_OCCURRED, 215, None, "c2"),
    ("e-06", "s-d", "r5", MS, 240, "openai", None),
    ("e-01", "s-a", "r2", EventType.RUN_COMPLETED, 230, "openai", "c2"),
)


@dataclasses.dataclass(frozen=True)
class World:
    sessions: list[Session]
    runs: list[Run]
    events: list[Event]  # as get_events returns them, numbered


def _world(store: Any) -> World:
    sessions = [
        a_session(
            id=sid,
            agent_id=agent,
            status=status,
            tags=list(tags),
            created_at=at(created),
            updated_at=at(updated),
            metadata={"rank": rank, "deep": [rank, None, 2.5]},
            parent_session_id="s-a" if sid == "s-c" else None,
        )
        for rank, (sid, agent, status, tags, created, updated) in enumerate(SESSIONS)
    ]
    runs = [
        a_run(
            sid,
            id=rid,
            provider=provider,
            status=status,
            started_at=at(start),
            ended_at=None if status == "running" else at(start + 5),
            token_usage=usage,
            provider_metadata={"model": f"model-{rid}"},
            output={"text": rid},
        )
        for rid, sid, provider, status, start, usage in RUNS
    ]
    for session in sessions:
        store.save_session(session)
    for run in runs:
        store.save_run(run)
    for eid, sid, rid, type, second, provider, correlation_id in EVENTS:
        store.append_event(
            an_event(
                sid,
                rid,
                type,
                id=eid,
                timestamp=at(second),
                provider=provider,
                correlation_id=correlation_id,
                data={"eid": eid},
            )
        )
    return World(sessions, runs, [e for s in sessions for e in store.get_events(s.id)])


def _soft_deleted(store: Any) -> Session:
    gone = a_session(
        id="s-gone",
        agent_id="alpha",
        status="completed",
        tags=["x"],
        created_at=at(15),
        updated_at=at(70),
        deleted_at=at(80),
    )
    store.save_session(gone)
    store.save_run(
        a_run(
            gone,
            id="r-gone",
            provider="anthropic",
            started_at=at(140),
            token_usage=_usage(1, 2),
            cost_usd=0.5,
        )
    )
    store.append_event(an_event(gone, "r-gone", id="e-gone", timestamp=at(250)))
    return gone


#: What each order sorts by (before the id), and whether downwards.
ORDER_KEYS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "updated_at_desc": (lambda s: s.updated_at, True),
    "created_at_asc": (lambda s: s.created_at, False),
    "created_at_desc": (lambda s: s.created_at, True),
    "started_at_desc": (lambda r: r.started_at, True),
    "started_at_asc": (lambda r: r.started_at, False),
    "token_usage_desc": (lambda r: TOKENS[r.id][2], True),
    "sequence_asc": (lambda e: e.sequence_number, False),
    "timestamp_asc": (lambda e: e.timestamp, False),
    "timestamp_desc": (lambda e: e.timestamp, True),
}


def _in_order(records: list[Any], order: str) -> list[str]:
    key, descending = ORDER_KEYS[order]
    return [r.id for r in sorted(records, key=lambda r: (key(r), r.id), reverse=descending)]


def _search(query: Any, kind: str, **kwargs: Any) -> Any:
    return getattr(query, f"search_{kind}")(**kwargs)


def _found(query: Any, kind: str, **kwargs: Any) -> list[str]:
    return ids_of(getattr(_search(query, kind, **kwargs), kind))


def _pages(query: Any, kind: str, cursor: str | None = None, **kwargs: Any) -> list[Any]:
    """The pages from ``cursor`` (None: the first page) to the first page without a cursor."""
    pages = []
    for _ in range(100):
        page = _search(query, kind, cursor=cursor, **kwargs)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            return pages
    pytest.fail(f"search_{kind}({kwargs}) never returned a page without a cursor", pytrace=False)


def _paged_ids(pages: list[Any], kind: str) -> list[str]:
    return [item.id for page in pages for item in getattr(page, kind)]


def _tampered(cursor: str) -> list[str]:
    """``cursor`` with one character changed (a digit to a digit, anything else to a letter), at
    up to 24 places spread over it; never just before a non-alphanumeric character or at the end,
    where an encoding may carry bits that nothing reads."""
    places = [i for i in range(len(cursor) - 1) if cursor[i + 1].isalnum()] or [0]
    copies = []
    for i in places[:: max(1, len(places) // 24)]:
        new = (
            ("3" if cursor[i] == "7" else "7")
            if cursor[i].isdigit()
            else "zq"[cursor[i].lower() != "q"]
        )
        copies.append(cursor[:i] + new + cursor[i + 1 :])
    return copies


#: (filters, the ids that match) over the data set, for each search.
SESSION_FILTERS = [
    pytest.param({"agent_id": "alpha"}, "s-a s-b s-e", id="agent_id"),
    pytest.param({"status": "active"}, "s-a s-c", id="status-string"),
    pytest.param({"status": SessionStatus.ACTIVE}, "s-a s-c", id="status-enum"),
    pytest.param({"status": ["active", SessionStatus.PAUSED]}, "s-a s-c s-d", id="status-list"),
    pytest.param({"tags": ["x"]}, "s-a s-b s-c", id="tags-one"),
    pytest.param({"tags": ["z", "x"]}, "s-c", id="tags-all-of"),
    pytest.param({"tags": ["w"]}, "", id="tags-no-match"),
    pytest.param({"provider": "anthropic"}, "s-a s-b", id="provider-of-some-run"),
    pytest.param({"provider": "google"}, "s-e", id="provider-of-the-only-run"),
    pytest.param({"created_after": at(20)}, "s-d", id="created_after-strict"),
    pytest.param({"created_after": at(20) - US}, "s-b s-c s-d", id="created_after-1us"),
    pytest.param({"created_before": at(20)}, "s-a s-e", id="created_before-strict"),
    pytest.param({"created_before": at(20) + US}, "s-a s-b s-c s-e", id="created_before+1us"),
    pytest.param({"agent_id": "alpha", "status": ["active", "completed"]}, "s-a s-b", id="and-1"),
    pytest.param({"status": "active", "provider": "openai"}, "s-a", id="and-2"),
    pytest.param(
        {"tags": ["x"], "provider": "anthropic", "created_after": at(10)}, "s-b", id="and-3"
    ),
]
RUN_FILTERS = [
    pytest.param({"session_id": "s-a"}, "r1 r2", id="session_id"),
    pytest.param({"provider": "openai"}, "r2 r5", id="provider"),
    pytest.param({"status": "completed"}, "r1 r4 r5", id="status-string"),
    pytest.param({"status": ["failed", "running"]}, "r2 r3", id="status-list"),
    pytest.param({"min_tokens": 150}, "r1 r2 r3 r5", id="min_tokens-inclusive"),
    pytest.param({"min_tokens": 151}, "r2 r5", id="min_tokens-reads-total_tokens"),
    pytest.param({"started_after": at(110)}, "r4 r5", id="started_after-strict"),
    pytest.param({"started_before": at(110)}, "r1 r6", id="started_before-strict"),
    pytest.param({"started_after": at(100), "started_before": at(120)}, "r2 r3", id="window"),
    pytest.param({"provider": "anthropic", "status": "completed"}, "r1", id="and-1"),
    pytest.param({"session_id": "s-a", "started_after": at(100)}, "r2", id="and-2"),
    pytest.param({"status": ["completed", "running"], "min_tokens": 150}, "r1 r3 r5", id="and-3"),
]
EVENT_FILTERS = [
    pytest.param({"session_ids": ["s-b", "s-d"]}, "e-02 e-05 e-06 e-09", id="session_ids"),
    pytest.param({"run_ids": ["r1", "r4"]}, "e-03 e-04 e-07 e-10", id="run_ids"),
    pytest.param({"types": "message_sent"}, "e-03 e-04 e-06 e-09", id="types-string"),
    pytest.param({"types": RS}, "e-05 e-07", id="types-enum"),
    pytest.param(
        {"types": ["run_started", EventType.ERROR_OCCURRED]}, "e-02 e-05 e-07", id="types-list"
    ),
    pytest.param({"providers": ["openai"]}, "e-01 e-06 e-11", id="providers"),
    pytest.param({"correlation_id": "c1"}, "e-03 e-05 e-07", id="correlation_id"),
    pytest.param({"since": at(210)}, "e-01 e-02 e-03 e-06 e-09 e-10 e-11", id="since-inclusive"),
    pytest.param({"since": at(210) + US}, "e-01 e-02 e-06 e-09", id="since+1us"),
    pytest.param({"until": at(210)}, "e-04 e-05 e-07", id="until-strict"),
    pytest.param({"since": at(210), "until": at(220)}, "e-02 e-03 e-10 e-11", id="since-until"),
    pytest.param(
        {"session_ids": ["s-a", "s-b"], "types": RS, "correlation_id": "c1"},
        "e-05 e-07",
        id="and-1",
    ),
    pytest.param({"providers": ["anthropic"], "since": at(205)}, "e-03 e-09", id="and-2"),
    pytest.param({"session_ids": ["s-c"], "providers": ["openai"]}, "", id="and-none"),
]

#: Runs whose token_usage holds values that do not count (section 4): provider, usage, (in, out,
#: total) as counted.
ODD_TOKENS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "u1": ("p1", {"input_tokens": True, "output_tokens": 7, "total_tokens": -1}),  # 0, 7, 7
    "u2": ("p1", {"input_tokens": 1.5, "output_tokens": "9", "total_tokens": 12.0}),  # 0, 0, 0
    "u3": (None, {"input_tokens": 5, "output_tokens": 6, "total_tokens": 0}),  # 5, 6, 0
    "u4": (None, {"input_tokens": 20, "output_tokens": 30, "total_tokens": None}),  # 20, 30, 50
    "u5": (None, {"input_tokens": -4, "output_tokens": 2, "cache_read_tokens": 3}),  # 0, 2, 2
}


def _odd_token_runs(store: Any) -> None:
    store.save_session(a_session(id="s-odd"))
    for rid, (provider, usage) in ODD_TOKENS.items():
        store.save_run(a_run("s-odd", id=rid, provider=provider, token_usage=usage))


def _expected_usage(run_ids: list[str]) -> dict[str, Any]:
    def figures(ids: list[str]) -> dict[str, int]:
        inputs, outputs, totals = ([TOKENS[i][n] for i in ids] for n in range(3))
        return {
            "total_input_tokens": sum(inputs),
            "total_output_tokens": sum(outputs),
            "total_tokens": sum(totals),
            "run_count": len(ids),
        }

    provider = {rid: p or "unknown" for rid, _, p, *_ in RUNS}
    by_provider = {
        p: figures([i for i in run_ids if provider[i] == p]) for p in {provider[i] for i in run_ids}
    }
    return {**figures(run_ids), "by_provider": by_provider}


# -- cost: each run in a session of its own, so that a summary can hold one run alone ----------
PRICING = PricingTable(
    providers={
        "anthropic": ProviderPricing(
            models={
                "claude": Rates(input=100e-6, output=100e-6),
                "claude-3": Rates(input=3e-6, output=15e-6),
                "claude-3-opus": Rates(
                    input=15e-6, output=75e-6, cache_read=1.5e-6, cache_creation=18.75e-6
                ),
            },
            default=Rates(input=1e-6, output=2e-6),
        ),
        "openai": ProviderPricing(
            models={"gpt-4o": Rates(input=2.5e-6, output=10e-6, cache_read=1.25e-6)}
        ),
    }
)
CACHE = {"cache_read_tokens": 200, "cache_creation_tokens": 10}
#: agent, provider, model, started_at, token_usage, cost_usd.
COST_RUNS: dict[str, tuple[str, str | None, str | None, int, dict[str, Any], float | None]] = {
    "c01": ("alpha", "anthropic", "claude-3-opus", 10, _usage(1000, 100, **CACHE), None),
    "c02": ("alpha", "anthropic", "claude-3-opus-20240229", 20, _usage(100, 10), None),
    "c03": ("alpha", "anthropic", "claude-3-haiku", 30, _usage(1000, 1000, **CACHE), None),
    "c04": ("alpha", "anthropic", "mystery", 40, _usage(500, 500), None),
    "c05": ("alpha", "anthropic", None, 50, {"input_tokens": 100}, None),
    "c06": ("beta", "openai", "gpt-4o-mini", 60, _usage(2000, 100, **CACHE), None),
    "c07": ("beta", "openai", "o1", 70, _usage(10, 0), None),
    "c08": ("beta", "mistral", "mistral-small", 80, _usage(10, 0), None),
    "c09": ("beta", "mistral", "mistral-large", 90, _usage(10, 0), 0.5),
    "c10": ("alpha", "anthropic", "claude-3-opus", 100, _usage(1000, 0), 0.25),
    "c11": ("beta", None, None, 110, {}, 0.125),
    "c12": ("beta", "anthropic", "claude-3-opus", 120, _usage(1000, 1000), 0.0),
    "c13": ("alpha", "cohere", "command", 130, _usage(5, 0), None),
}
#: Each run's cost with PRICING (None: unmapped).
COST_OF: dict[str, float | None] = {
    "c01": 1000 * 15e-6 + 100 * 75e-6 + 200 * 1.5e-6 + 10 * 18.75e-6,
    "c02": 100 * 15e-6 + 10 * 75e-6,
    "c03": (1000 + 200 + 10) * 3e-6 + 1000 * 15e-6,
    "c04": 500 * 1e-6 + 500 * 2e-6,
    "c05": 100 * 1e-6,
    "c06": 2000 * 2.5e-6 + 100 * 10e-6 + 200 * 1.25e-6 + 10 * 2.5e-6,
    "c07": None,
    "c08": None,
    "c09": 0.5,
    "c10": 0.25,
    "c11": 0.125,
    "c12": 0.0,
    "c13": None,
}
COST_CASES = [
    pytest.param("c01", id="exact-key-own-cache-rates"),
    pytest.param("c02", id="longest-prefix-key"),
    pytest.param("c03", id="longest-not-shortest-prefix-cache-at-input-rate"),
    pytest.param("c04", id="provider-default-for-unknown-model"),
    pytest.param("c05", id="provider-default-without-model"),
    pytest.param("c06", id="prefix-key-cache_creation-at-input-rate"),
    pytest.param("c07", id="unmapped-no-key-no-default"),
    pytest.param("c08", id="unmapped-provider-not-in-table"),
    pytest.param("c09", id="cost_usd-without-rates"),
    pytest.param("c10", id="cost_usd-wins-over-rates"),
    pytest.param("c11", id="cost_usd-without-provider-or-model"),
    pytest.param("c12", id="cost_usd-zero-is-set"),
    pytest.param("c13", id="unmapped-provider-without-priced-runs"),
]


def _cost_runs(store: Any) -> None:
    for rid, (agent, provider, model, start, usage, cost_usd) in COST_RUNS.items():
        store.save_session(a_session(id=f"s-{rid}", agent_id=agent))
        store.save_run(
            a_run(
                f"s-{rid}",
                id=rid,
                provider=provider,
                started_at=at(start),
                token_usage=usage,
                cost_usd=cost_usd,
                provider_metadata={} if model is None else {"model": model},
            )
        )


def _assert_cost(summary: Any, run_ids: list[str], *, table: bool = True) -> None:
    total, priced = 0.0, 0
    by_provider: dict[str, float] = {}
    by_model: dict[str, float] = {}
    for rid in run_ids:
        _, provider, model, _, _, cost_usd = COST_RUNS[rid]
        cost = COST_OF[rid] if table else cost_usd
        if cost is not None:
            total, priced = total + cost, priced + 1
            by_provider[provider or "unknown"] = by_provider.get(provider or "unknown", 0) + cost
            by_model[model or "unknown"] = by_model.get(model or "unknown", 0) + cost
    assert (summary.run_count, summary.unmapped_runs) == (priced, len(run_ids) - priced), (
        "run_count counts the priced runs (cost_usd set, or rates resolved), unmapped_runs the rest"
    )
    assert summary.total_cost_usd == pytest.approx(total, rel=1e-9)
    assert summary.by_provider == pytest.approx(by_provider, rel=1e-9), (
        'by_provider: cost of the priced runs per provider ("unknown" without one)'
    )
    assert summary.by_model == pytest.approx(by_model, rel=1e-9), (
        'by_model: cost of the priced runs per provider_metadata["model"] ("unknown" without one)'
    )


def _snapshot(store: Any, session_ids: list[str]) -> list[Any]:
    reads = (store.get_session, store.list_runs, store.get_events, store.get_latest_sequence)
    return [store.list_sessions()] + [[read(s) for read in reads] for s in session_ids]


__all__ = [
    "CACHE",
    "COST_CASES",
    "COST_OF",
    "COST_RUNS",
    "EVENTS",
    "EVENT_FILTERS",
    "EVERY_ORDER",
    "KINDS",
    "KIND_ORDERS",
    "MS",
    "NAIVE",
    "ODD_TOKENS",
    "ORDERS",
    "ORDER_KEYS",
    "PRICING",
    "RS",
    "RUNS",
    "RUN_FILTERS",
    "SESSIONS",
    "SESSION_FILTERS",
    "TOKENS",
    "US",
    "World",
    "_assert_cost",
    "_cost_runs",
    "_expected_usage",
    "_found",
    "_in_order",
    "_odd_token_runs",
    "_paged_ids",
    "_pages",
    "_search",
    "_snapshot",
    "_soft_deleted",
    "_tampered",
    "_usage",
    "_world",
]
