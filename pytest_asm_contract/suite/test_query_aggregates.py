"""QRY-8..QRY-10: the QueryAPI's stats, export, usage and cost summaries, checked against what
the session store holds."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.model import INT64_MAX
from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract.suite._builders import (
    a_run,
    a_session,
    an_event,
    at,
    expect_error,
    sequences,
)
from pytest_asm_contract.suite._query_data import (
    COST_CASES,
    COST_RUNS,
    PRICING,
    _assert_cost,
    _cost_runs,
    _expected_usage,
    _odd_token_runs,
    _soft_deleted,
    _usage,
    _world,
)


class TestQueryAggregates:
    # -- QRY-8: stats and export --------------------------------------------------------------
    @rule("QRY-8")
    def test_unknown_session_raises_session_not_found(self, asm_store: Any, asm_query: Any) -> None:
        _world(asm_store)
        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            asm_query.get_session_stats("s-missing")
        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            asm_query.export_session("s-missing")

    @rule("QRY-8")
    def test_soft_deleted_session_has_stats_and_an_export(
        self, asm_store: Any, asm_query: Any
    ) -> None:
        gone = _soft_deleted(asm_store)
        assert asm_query.get_session_stats("s-gone").session_id == "s-gone"
        assert asm_query.export_session("s-gone").session == gone

    @rule("QRY-8")
    def test_stats_figures(self, asm_store: Any, asm_query: Any) -> None:
        for sid in ("s-stats", "s-other"):
            asm_store.save_session(a_session(id=sid))
        for rid, provider, status, usage in (
            ("ra", "openai", "completed", _usage(10, 20, cache_read_tokens=5)),
            ("rb", None, "completed", _usage(1, 2, total_tokens=100, cache_creation_tokens=7)),
            ("rc", "anthropic", "failed", {"output_tokens": 4}),
            ("rd", "openai", "running", {}),
        ):
            run = a_run("s-stats", id=rid, provider=provider, status=status, token_usage=usage)
            asm_store.save_run(run)
        asm_store.save_run(a_run("s-other", provider="zeta", token_usage=_usage(1000, 1)))
        appended = [("s-stats", 50), ("s-stats", 10), ("s-other", 0), ("s-stats", 70)]
        for sid, second in [*appended, ("s-other", 100), ("s-stats", 30)]:
            asm_store.append_event(an_event(sid, timestamp=at(second)))
        totals = _usage(11, 26, cache_read_tokens=5, cache_creation_tokens=7, total_tokens=134)
        assert asm_query.get_session_stats("s-stats").model_dump() == {
            "session_id": "s-stats",
            "event_count": 4,
            "run_count": 4,
            "token_totals": totals,
            "providers_used": ["anthropic", "openai"],
            "first_event_at": at(10),
            "last_event_at": at(70),
            "status_counts": {"completed": 2, "failed": 1, "running": 1},
        }

    @rule("QRY-8")
    def test_stats_of_a_session_without_runs_or_events(
        self, asm_store: Any, asm_query: Any
    ) -> None:
        _world(asm_store)
        asm_store.save_session(a_session(id="s-empty"))
        stats = asm_query.get_session_stats("s-empty")
        assert (stats.event_count, stats.run_count, stats.token_totals.total_tokens) == (0, 0, 0)
        assert (stats.providers_used, stats.status_counts) == ([], {})
        assert (stats.first_event_at, stats.last_event_at) == (None, None)

    @rule("QRY-8")
    def test_export_holds_the_session_its_runs_and_its_events_in_order(
        self, asm_store: Any, asm_query: Any
    ) -> None:
        _world(asm_store)
        asm_store.save_session(a_session(id="s-exp", tags=["t"]))
        for rid, second in (("rb", 10), ("rc", 5), ("ra", 10)):
            asm_store.save_run(a_run("s-exp", id=rid, started_at=at(second)))
        for second in (30, 10, 20):
            asm_store.append_event(an_event("s-exp", "ra", timestamp=at(second)))
        for export in (
            asm_query.export_session("s-exp"),
            asm_query.export_session("s-exp", include_artifacts=False),
        ):
            assert export.session == asm_store.get_session("s-exp")
            assert export.runs == [asm_store.get_run(r) for r in ("rc", "ra", "rb")], (
                "the export's runs come in RUN-2 order: (started_at, id) ascending"
            )
            assert sequences(export.events) == [1, 2, 3], "events in EVT-2 (sequence) order"
            assert export.events == asm_store.get_events("s-exp")
            assert export.artifacts == [], "artifacts are [] without include_artifacts"

    @rule("QRY-8")
    def test_export_with_artifacts_holds_the_sessions_metadata_in_order(
        self, asm_store: Any, asm_query: Any, asm_artifact_registry: Any
    ) -> None:
        asm_store.save_session(a_session(id="s-exp"))
        for artifact_id, second, session_id in (
            ("art-b", 5, "s-exp"),
            ("art-a", 5, "s-exp"),
            ("art-c", 1, "s-exp"),
            ("art-x", 0, "s-other"),
        ):
            asm_artifact_registry.register(
                ArtifactMeta(
                    id=artifact_id, session_id=session_id, key=artifact_id, created_at=at(second)
                )
            )
        export = asm_query.export_session("s-exp", include_artifacts=True)
        assert export.artifacts == asm_artifact_registry.list_by_session("s-exp"), (
            "with include_artifacts the export holds the session's artifact metadata as the "
            "registry returns it"
        )
        assert [a.id for a in export.artifacts] == ["art-c", "art-a", "art-b"], "REG-2 order"
        assert asm_query.export_session("s-exp").artifacts == []

    # -- QRY-9: usage -------------------------------------------------------------------------
    @rule("QRY-9")
    def test_usage_summary_sums_every_run_by_provider(self, asm_store: Any, asm_query: Any) -> None:
        _world(asm_store)
        names = ("total_input_tokens", "total_output_tokens", "total_tokens", "run_count")

        def figures(*values: int) -> dict[str, int]:
            return dict(zip(names, values, strict=True))

        assert asm_query.get_usage_summary().model_dump() == {
            **figures(313, 309, 807, 6),
            "by_provider": {
                "anthropic": figures(200, 100, 300, 2),
                "openai": figures(110, 205, 500, 2),
                "google": figures(0, 0, 0, 1),
                "unknown": figures(3, 4, 7, 1),
            },
        }

    @rule("QRY-9")
    @pytest.mark.parametrize(
        ("filters", "run_ids"),
        [
            pytest.param({"session_id": "s-a"}, "r1 r2", id="session_id"),
            pytest.param({"provider": "openai"}, "r2 r5", id="provider"),
            pytest.param({"since": at(110)}, "r2 r3 r4 r5", id="since-inclusive"),
            pytest.param({"until": at(110)}, "r1 r6", id="until-strict"),
            pytest.param({"since": at(100), "until": at(120)}, "r1 r2 r3", id="window"),
            pytest.param({"session_id": "s-a", "provider": "openai"}, "r2", id="and"),
            pytest.param({"provider": "nobody"}, "", id="no-match"),
        ],
    )
    def test_usage_summary_filters(
        self, asm_store: Any, asm_query: Any, filters: dict[str, Any], run_ids: str
    ) -> None:
        _world(asm_store)
        summary = asm_query.get_usage_summary(**filters)
        assert summary.model_dump() == _expected_usage(run_ids.split()), (
            f"get_usage_summary({filters}) must sum exactly the matching runs"
        )

    @rule("QRY-9")
    def test_usage_summary_reads_tokens_as_section_4_says(
        self, asm_store: Any, asm_query: Any
    ) -> None:
        _odd_token_runs(asm_store)
        summary = asm_query.get_usage_summary(session_id="s-odd")
        assert (summary.total_input_tokens, summary.total_output_tokens) == (25, 45), (
            "token counts count only ints >= 0 (not bools, floats, strings or negatives)"
        )
        assert summary.total_tokens == 59, (
            "a run's total is its total_tokens when that counts (0 included), else input + output"
        )
        by_provider = {p: f.total_tokens for p, f in summary.by_provider.items()}
        assert by_provider == {"p1": 7, "unknown": 52}

    @rule("QRY-9")
    def test_usage_summary_sums_past_64_bits_and_keeps_providers_apart(
        self, asm_store: Any, asm_query: Any
    ) -> None:
        """Counts are 64-bit, sums are not; "p" and "p " are two providers."""
        top = INT64_MAX
        asm_store.save_session(a_session(id="s-wide"))
        for rid, provider, usage in (
            ("w1", "p", {"input_tokens": top, "output_tokens": top}),
            ("w2", "p", {"input_tokens": top, "total_tokens": top, "cache_read_tokens": top}),
            ("w3", "p ", {"input_tokens": 1, "output_tokens": 2, "total_tokens": 1e16}),
        ):
            asm_store.save_run(a_run("s-wide", id=rid, provider=provider, token_usage=usage))

        summary = asm_query.get_usage_summary(session_id="s-wide")
        assert (summary.total_input_tokens, summary.total_output_tokens) == (2 * top + 1, top + 2)
        assert summary.total_tokens == 3 * top + 3, (
            "w1 counts input + output (2**64 - 2), w2 its total_tokens; w3's total_tokens is a "
            "float and does not count; every sum exact"
        )
        assert {p: f.total_tokens for p, f in summary.by_provider.items()} == {
            "p": 3 * top,
            "p ": 3,
        }, "providers that differ in a trailing space are two providers"

    @rule("QRY-8")
    def test_stats_sum_past_64_bits(self, asm_store: Any, asm_query: Any) -> None:
        top = INT64_MAX
        asm_store.save_session(a_session(id="s-wide"))
        for rid, usage in (
            ("w1", {"input_tokens": top, "output_tokens": top, "cache_read_tokens": top}),
            ("w2", {"total_tokens": top, "cache_read_tokens": top}),
        ):
            asm_store.save_run(a_run("s-wide", id=rid, token_usage=usage))
        totals = asm_query.get_session_stats("s-wide").token_totals
        assert (totals.total_tokens, totals.cache_read_tokens) == (3 * top, 2 * top), (
            "token counts are 64-bit, their sums are not: every sum exact"
        )

    # -- QRY-10: cost -------------------------------------------------------------------------
    @rule("QRY-10")
    @pytest.mark.parametrize("run_id", COST_CASES)
    def test_a_runs_cost(self, asm_store: Any, asm_query: Any, run_id: str) -> None:
        _cost_runs(asm_store)
        summary = asm_query.get_cost_summary(session_id=f"s-{run_id}", pricing_table=PRICING)
        _assert_cost(summary, [run_id])

    @rule("QRY-10")
    def test_cost_summary_sums_priced_runs_by_provider_and_model(
        self, asm_store: Any, asm_query: Any
    ) -> None:
        _cost_runs(asm_store)
        summary = asm_query.get_cost_summary(pricing_table=PRICING)
        assert (summary.run_count, summary.unmapped_runs) == (10, 3)
        assert summary.total_cost_usd == pytest.approx(0.9267425, rel=1e-9)
        assert summary.by_provider == pytest.approx(
            {"anthropic": 0.2954675, "openai": 0.006275, "mistral": 0.5, "unknown": 0.125}, rel=1e-9
        )
        assert summary.by_model == pytest.approx(
            {
                "claude-3-opus": 0.2729875,
                "claude-3-opus-20240229": 0.00225,
                "claude-3-haiku": 0.01863,
                "mystery": 0.0015,
                "unknown": 0.1251,
                "gpt-4o-mini": 0.006275,
                "mistral-large": 0.5,
            },
            rel=1e-9,
        )

    @rule("QRY-10")
    @pytest.mark.parametrize(
        ("filters", "run_ids"),
        [
            pytest.param({"agent_id": "alpha"}, "c01 c02 c03 c04 c05 c10 c13", id="agent_id"),
            pytest.param({"provider": "anthropic"}, "c01 c02 c03 c04 c05 c10 c12", id="provider"),
            pytest.param({"since": at(60)}, "c06 c07 c08 c09 c10 c11 c12 c13", id="since"),
            pytest.param({"until": at(60)}, "c01 c02 c03 c04 c05", id="until-strict"),
            pytest.param(
                {"since": at(30), "until": at(100)}, "c03 c04 c05 c06 c07 c08 c09", id="window"
            ),
            pytest.param({"agent_id": "beta", "provider": "anthropic"}, "c12", id="and"),
            pytest.param({"provider": "nobody"}, "", id="no-match"),
        ],
    )
    def test_cost_summary_filters(
        self, asm_store: Any, asm_query: Any, filters: dict[str, Any], run_ids: str
    ) -> None:
        _cost_runs(asm_store)
        _assert_cost(asm_query.get_cost_summary(pricing_table=PRICING, **filters), run_ids.split())

    @rule("QRY-10")
    def test_without_pricing_table_only_cost_usd_prices_a_run(
        self, asm_store: Any, asm_query: Any
    ) -> None:
        _cost_runs(asm_store)
        _assert_cost(asm_query.get_cost_summary(), list(COST_RUNS), table=False)


__all__ = ["TestQueryAggregates"]
