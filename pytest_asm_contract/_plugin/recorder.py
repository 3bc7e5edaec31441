"""Recording every rule-marked test's outcome for the report, and printing the summary."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract._plugin.marks import VIOLATED_PROPERTY
from pytest_asm_contract._plugin.report import (
    FAILED,
    PASSED,
    RULES_PROPERTY,
    SKIPPED,
    TestOutcome,
)
from pytest_asm_contract._plugin.state import ContractState

STORE_UNDER_TEST_PROPERTY = "asm_store_under_test"
#: Set by the ``asm_store`` fixture: whether the store it built is async (``AsyncStoreFacade``).
ASYNC_STORE_PROPERTY = "asm_async_store"


def _message(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else report.longreprtext.strip().splitlines()[-1]


_DETAILS_LIMIT = 8000


class ReportRecorder:
    """Per-run plugin object: records rule outcomes (also from xdist workers) and prints them."""

    def __init__(self, state: ContractState) -> None:
        self.state = state
        self.store_under_test = state.spec is not None or state.artifact_spec is not None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        if ASYNC_STORE_PROPERTY in properties:
            seen = bool(properties[ASYNC_STORE_PROPERTY])
            self.state.report.async_store = bool(self.state.report.async_store) or seen
        ids = properties.get(RULES_PROPERTY)
        if not isinstance(ids, str) or not ids:
            return
        self.store_under_test |= bool(properties.get(STORE_UNDER_TEST_PROPERTY))
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = PASSED if report.passed else (SKIPPED if report.skipped else FAILED)
        elif report.when == "teardown" and report.failed:
            outcome = FAILED
        else:
            return
        rule_ids = ids.split(",")
        violated = [v for k, v in report.user_properties if k == VIOLATED_PROPERTY]
        if outcome == FAILED and violated:
            # Only the rules the test saw broken failed; it says nothing about the others.
            rule_ids = [r for v in violated for r in str(v).split(",")]
        details = report.longreprtext[:_DETAILS_LIMIT] if outcome == FAILED else ""
        self.state.report.record(
            rule_ids, TestOutcome(report.nodeid, outcome, _message(report), details)
        )

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        report = self.state.report
        if hasattr(config, "workerinput") or not any(v.tests for v in report.verdicts.values()):
            return
        if not self.store_under_test and self.state.report_path is None:
            # Rule-marked tests ran, but none against a store under test (a project's own unit
            # tests of its store, say): a conformance table of one store would mislead.
            return
        terminalreporter.write_sep("=", "ASM contract conformance")
        for line in report.summary_lines():
            terminalreporter.write_line(line, red=line.startswith("FAIL"))
        if self.state.report_path is not None:
            written = report.write(self.state.report_path)
            terminalreporter.write_line("report: " + ", ".join(str(p) for p in written))


__all__ = ["ASYNC_STORE_PROPERTY", "STORE_UNDER_TEST_PROPERTY", "ReportRecorder"]
