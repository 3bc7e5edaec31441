"""QRY-1..QRY-4, QRY-6..QRY-10 generated: a state machine writes random sessions, runs and
events through the store's port and compares every query with an independent query model.

A failure names the one rule broken (only that rule is marked failed in the report), the query
call, what the model expected, what came back and the writes that built the state, cut down to
the fewest that still show it, as Python. ``--asm-seed`` replays the same search,
``--asm-profile`` sets its budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings

from pytest_asm_contract import rule
from pytest_asm_contract._contract.port import close_store, missing_operations
from pytest_asm_contract._contract.query import QUERY_OPERATIONS
from pytest_asm_contract._machine.query_machine import QUERY_MACHINE_RULES, run_query_machine
from pytest_asm_contract._plugin.fixtures import MIGRATION_GUIDE
from pytest_asm_contract._plugin.loading import StoreFactory
from pytest_asm_contract._plugin.marks import mark_violated
from pytest_asm_contract._plugin.replay import replay_command


def _skip_unless_queryable(
    store_factory: StoreFactory, query_factory: Callable[[Any], Any]
) -> None:
    """What the ``asm_query`` fixture does for the example-based checks, on one trial store."""
    store = store_factory()
    try:
        missing = missing_operations(store)
        if missing:
            pytest.skip(
                f"the store does not implement the v0.8 port (missing: {', '.join(missing)}); "
                f"see the PORT-1 failure and {MIGRATION_GUIDE}"
            )
        unavailable = getattr(store, "asm_query_unavailable", None)
        if isinstance(unavailable, str) and unavailable:
            pytest.skip(f"{type(store).__name__} offers no QueryAPI: {unavailable}")
        query = query_factory(store)
        lacking = [name for name in QUERY_OPERATIONS if not callable(getattr(query, name, None))]
        if lacking:
            pytest.fail(
                f"the QueryAPI ({type(query).__name__}) lacks {', '.join(lacking)}: a QueryAPI "
                "offers the eight queries of docs/api.md",
                pytrace=False,
            )
    finally:
        close_store(store)


class TestQueryStateful:
    @rule(*QUERY_MACHINE_RULES, generated=True)
    def test_queries_follow_the_query_model(
        self,
        request: pytest.FixtureRequest,
        asm_store_builder: StoreFactory,
        asm_query_factory: Callable[[Any], Any],
        asm_hypothesis_settings: settings,
        asm_seed: int,
    ) -> None:
        _skip_unless_queryable(asm_store_builder, asm_query_factory)
        mismatch = run_query_machine(
            asm_store_builder, asm_query_factory, asm_hypothesis_settings, asm_seed
        )
        if mismatch is not None:
            mark_violated(request.node, mismatch.rule_id)
            replay = replay_command(request.config, request.node.name)
            pytest.fail(f"{mismatch}\n\nReplay this search: {replay}", pytrace=False)


__all__ = ["TestQueryStateful"]
