"""Stateful: generated sequences of every operation, compared with an independent contract model.

One test drives a fresh store per example through saves, deletes, the three append paths, batches,
valid and invalid flushes, pipeline-shaped traffic and filtered reads, and compares it with
the contract model after every step. A failure names the violated
rules (and only those are marked failed in the report), with the shortest sequence of store calls
found, as Python; ``--asm-repro-dir`` also writes it as a standalone test file. ``--asm-seed``
replays the same search.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from pytest_asm_contract import rule
from pytest_asm_contract._contract.port import close_store, missing_operations
from pytest_asm_contract._machine import (
    STATEFUL_RULES,
    explain,
    run_contract_machine,
)
from pytest_asm_contract._plugin.fixtures import MIGRATION_GUIDE
from pytest_asm_contract._plugin.loading import StoreFactory
from pytest_asm_contract._plugin.marks import mark_violated
from pytest_asm_contract._plugin.replay import replay_command
from pytest_asm_contract._plugin.state import STATE


def _skip_unless_v08(factory: StoreFactory) -> None:
    store = factory()
    try:
        missing = missing_operations(store)
    finally:
        close_store(store)
    if missing:
        pytest.skip(
            f"the store does not implement the v0.8 port (missing: {', '.join(missing)}); "
            f"see the PORT-1 failure and {MIGRATION_GUIDE}"
        )


def _print_coverage(config: pytest.Config, table: str) -> None:
    """Write the coverage table to the terminal now, past output capturing (``-v``)."""
    reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
    capture: Any = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line("")
        reporter.write_line("asm-contract stateful coverage:")
        for line in table.splitlines():
            reporter.write_line("  " + line)


@rule(*STATEFUL_RULES, generated=True)
def test_store_follows_the_contract_model(
    request: pytest.FixtureRequest,
    asm_store_builder: StoreFactory,
    asm_hypothesis_settings: settings,
    asm_seed: int,
    asm_profile: str,
    asm_repro_dir: Path | None,
) -> None:
    _skip_unless_v08(asm_store_builder)
    result = run_contract_machine(
        asm_store_builder,
        asm_hypothesis_settings,
        asm_seed,
    )
    # The coverage table explains a vacuous pass; beside a violation it only buries the cause.
    table = result.coverage.table()
    if request.config.get_verbosity() > 0:
        _print_coverage(request.config, table)

    if result.violations:
        state = request.config.stash[STATE]
        own_spec = state.spec if asm_store_builder is state.factory else None
        _, message = explain(
            result.violations,
            asm_store_builder,
            repro_dir=asm_repro_dir,
            store_target=own_spec.target if own_spec else None,
            store_options=own_spec.options if own_spec else (),
            seed=asm_seed,
            replay=replay_command(request.config, request.node.name),
        )
        mark_violated(request.node, *[r for v in result.violations for r in v.rule_ids])
        pytest.fail(message, pytrace=False)

    unexercised = result.coverage.unexercised()
    if unexercised:
        request.node.add_report_section("call", "asm-contract stateful coverage", table)
        rules = sorted({r for probe in unexercised for r in probe.rules})
        mark_violated(request.node, *rules)
        names = "; ".join(f"{p.name} ({', '.join(p.rules)})" for p in unexercised)
        pytest.fail(
            f"vacuous pass refused: in {result.coverage.examples} examples the state machine "
            f"never got to: {names}. The store accepted too little of the workload to check "
            f"those rules (for example it rejected every batch or flush).\n\n{table}",
            pytrace=False,
        )


__all__ = ["test_store_follows_the_contract_model"]
