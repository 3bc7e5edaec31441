"""Running the kit from a test and reading its verdicts, rule by rule, from the report it wrote.

Every test that checks what the kit says about a store goes through here: the zoo, the
reference stores, the plugin's options, the example adapter.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import pytest

from pytest_asm_contract import RULES, Scope
from pytest_asm_contract._concurrency.async_bridge import store_builder
from pytest_asm_contract._contract.locate import locate
from pytest_asm_contract._contract.port import close_store, declared_capabilities, fault_targets

#: The report's file name (without suffix) inside a pytester directory.
REPORT = "report"


@dataclasses.dataclass(frozen=True)
class Verdicts:
    """The report of one run: each rule's entry (status, reason, tests, ...) by rule id."""

    rules: dict[str, dict[str, Any]]
    store: str = ""

    @classmethod
    def read(cls, path: Path) -> Verdicts:
        """The verdicts in a JSON report written by ``--asm-report``."""
        report = json.loads(path.read_text())
        return cls({entry["id"]: entry for entry in report["rules"]}, report.get("store", ""))

    def status(self, rule_id: str) -> str:
        return str(self.rules[rule_id]["status"])

    @property
    def statuses(self) -> dict[str, str]:
        return {rule_id: str(entry["status"]) for rule_id, entry in self.rules.items()}

    def with_status(self, status: str) -> set[str]:
        return {rule_id for rule_id, entry in self.rules.items() if entry["status"] == status}

    @property
    def failed(self) -> set[str]:
        return self.with_status("failed")

    def unexpected(
        self,
        scope: Scope,
        *,
        may_fail: AbstractSet[str] = frozenset(),
        may_skip: AbstractSet[str] = frozenset(),
    ) -> dict[str, str]:
        """The rules of ``scope`` that did not pass, beyond those allowed to fail or skip."""
        return {
            rule.id: f"{self.status(rule.id)}: {str(self.rules[rule.id].get('reason', ''))[:300]}"
            for rule in RULES
            if rule.scope is scope
            and self.status(rule.id) != "passed"
            and rule.id not in may_fail
            and not (self.status(rule.id) == "skipped" and rule.id in may_skip)
        }


def may_skip(store: object) -> set[str]:
    """The rules a correct store is allowed to skip: those of capabilities it does not declare,
    and FLUSH-3 and BATCH-6 when it has no fault hook (nor ``shared_backend``, for killed writers;
    a store on a driver the kit intercepts runs them anyway)."""
    declared = declared_capabilities(store)
    skips = {r.id for r in RULES if r.capability and r.capability not in declared}
    if fault_targets(store) is None and "shared_backend" not in declared:
        skips |= {"FLUSH-3", "BATCH-6"}
    return skips


def may_skip_for(target: str, **options: Any) -> set[str]:
    """``may_skip`` of a store built from ``module:attr`` as the kit builds it (an async store
    behind its facade), and closed again."""
    store = store_builder(functools.partial(locate(target), **options))()
    try:
        return may_skip(store)
    finally:
        close_store(store)


def run_kit(
    pytester: pytest.Pytester, *args: str, subprocess: bool = False
) -> tuple[pytest.RunResult, Verdicts]:
    """Run pytest with the kit's report turned on; the result and the verdicts."""
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    result = run(*args, f"--asm-report={REPORT}", "-p", "no:cacheprovider", "-q")
    return result, Verdicts.read(pytester.path / f"{REPORT}.json")


__all__ = ["REPORT", "Verdicts", "may_skip", "may_skip_for", "run_kit"]
