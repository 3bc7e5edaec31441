"""MNT-1..MNT-6 generated: a state machine writes sessions whose ages straddle every cutoff and
events of every kind through the store, runs maintenance with random policies on a fixed clock,
and compares every result and the whole state with an independent model after each step.

A failure names the rule of the step that broke (only that rule is marked failed in the report),
what differed, and the calls that lead there, cut down to the fewest that still show it, as
Python. ``--asm-seed`` replays the same search, ``--asm-profile`` sets its budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings

from pytest_asm_contract import rule
from pytest_asm_contract._machine.maintenance_machine import (
    MAINTENANCE_MACHINE_RULES,
    run_maintenance_machine,
)
from pytest_asm_contract._plugin.loading import StoreFactory
from pytest_asm_contract._plugin.marks import mark_violated
from pytest_asm_contract._plugin.replay import replay_command
from pytest_asm_contract._plugin.state import STATE


class TestMaintenanceStateful:
    @rule(*MAINTENANCE_MACHINE_RULES, generated=True)
    def test_maintenance_follows_the_model(
        self,
        request: pytest.FixtureRequest,
        asm_store_builder: StoreFactory,
        asm_maintenance: Any,
        asm_maintenance_factory: Callable[[Any], Any],
        asm_hypothesis_settings: settings,
        asm_seed: int,
    ) -> None:
        # ``asm_maintenance`` (unused) skips the test where the store offers no Maintenance
        registry = request.config.stash[STATE].side_ports["artifact_registry"]
        registry_factory = (
            request.getfixturevalue("asm_artifact_registry_factory") if registry.target else None
        )
        mismatch = run_maintenance_machine(
            asm_store_builder,
            asm_maintenance_factory,
            registry_factory,
            asm_hypothesis_settings,
            asm_seed,
        )
        if mismatch is not None:
            mark_violated(request.node, mismatch.rule_id)
            replay = replay_command(request.config, request.node.name)
            pytest.fail(f"{mismatch}\n\nReplay this search: {replay}", pytrace=False)


__all__ = ["TestMaintenanceStateful"]
