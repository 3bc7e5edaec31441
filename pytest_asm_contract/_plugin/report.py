"""Rule-by-rule verdicts: collected from test reports, printed per group, saved as files."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_asm_contract._contract.rules import GROUPS, RULES, Rule, Scope
from pytest_asm_contract._plugin.report_html import render_report

RULES_PROPERTY = "asm_rules"

PASSED, FAILED, SKIPPED, NOT_RUN = "passed", "failed", "skipped", "not_run"


@dataclasses.dataclass
class TestOutcome:
    nodeid: str
    outcome: str
    message: str = ""
    details: str = ""  # the full failure text, reproduction included


@dataclasses.dataclass
class RuleVerdict:
    rule: Rule
    tests: list[TestOutcome] = dataclasses.field(default_factory=list)
    selected: bool = True

    @property
    def status(self) -> str:
        outcomes = {t.outcome for t in self.tests}
        if FAILED in outcomes:
            return FAILED
        # A test that checks several rules runs when one of them is selected; it does not vouch
        # for the others (a violation of one of them is still reported).
        if not self.selected:
            return NOT_RUN
        if PASSED in outcomes:
            return PASSED
        return SKIPPED if outcomes else NOT_RUN

    @property
    def reason(self) -> str:
        status = self.status
        if status == FAILED:
            return next(t.message for t in self.tests if t.outcome == FAILED)
        if status == SKIPPED:
            return self.tests[0].message
        if status == NOT_RUN:
            return _not_run_reason(self.rule, self.selected)
        return ""


def _not_run_reason(rule: Rule, selected: bool) -> str:
    if not selected:
        return "not selected by --asm-rules"
    if rule.scope is Scope.ARTIFACT_STORE:
        return "checked against an artifact store (--asm-artifact-store)"
    if rule.scope is Scope.QUERY_API:
        return "checked against a QueryAPI built from the store (--asm-query=MODULE:ATTR)"
    if rule.scope is Scope.ARTIFACT_REGISTRY:
        return (
            "checked against an artifact registry built from the store "
            "(--asm-artifact-registry=MODULE:ATTR)"
        )
    if rule.scope is Scope.MAINTENANCE:
        return "checked against a Maintenance object built from the store (--asm-maintenance)"
    if rule.scope is Scope.ASYNC_STORE:
        return "checked when the store's operations are async def (an AsyncSessionStore)"
    if rule.scope is Scope.PACKAGE:
        return "checked by the kit's own tests on its reference stores, not against a store"
    return "no test of the bundled suite checks this rule yet"


@dataclasses.dataclass
class ConformanceReport:
    store: str
    kit_version: str
    seed: int
    profile: str
    selected_rules: frozenset[str]
    verdicts: dict[str, RuleVerdict] = dataclasses.field(init=False)
    #: Whether the store under test has async def operations (None: no check built one), so a
    #: CI gate knows the ASYNC rules count even when none of their checks ran.
    async_store: bool | None = dataclasses.field(default=None, init=False)

    def __post_init__(self) -> None:
        self.verdicts = {r.id: RuleVerdict(r, selected=r.id in self.selected_rules) for r in RULES}

    def record(self, rule_ids: Iterable[str], outcome: TestOutcome) -> None:
        for rule_id in rule_ids:
            verdict = self.verdicts.get(rule_id)
            if verdict is not None:
                verdict.tests.append(outcome)

    def counts(self) -> dict[str, int]:
        counts = {PASSED: 0, FAILED: 0, SKIPPED: 0, NOT_RUN: 0}
        for verdict in self.verdicts.values():
            counts[verdict.status] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "kit_version": self.kit_version,
            "store": self.store,
            "seed": self.seed,
            "profile": self.profile,
            "async_store": self.async_store,
            "created_at": datetime.now(UTC).isoformat(),
            "summary": self.counts(),
            "rules": [
                {
                    "id": v.rule.id,
                    "group": v.rule.group,
                    "level": v.rule.level.value,
                    "capability": v.rule.capability,
                    "statement": v.rule.statement,
                    "status": v.status,
                    "reason": v.reason,
                    "tests": [dataclasses.asdict(t) for t in v.tests],
                }
                for v in self.verdicts.values()
            ],
        }

    def to_markdown(self) -> str:
        lines = [
            "# ASM contract conformance report",
            "",
            f"- store: `{self.store}`"
            + {True: " (async)", False: " (sync)", None: ""}[self.async_store],
            f"- kit version: {self.kit_version}; profile: {self.profile}; seed: {self.seed}",
            "- summary: "
            + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in self.counts().items()),
            "",
            "| rule | level | status | reason |",
            "|---|---|---|---|",
        ]
        for v in self.verdicts.values():
            level = v.rule.level.value + (f" ({v.rule.capability})" if v.rule.capability else "")
            reason = v.reason.splitlines()[0] if v.reason else ""
            lines.append(f"| {v.rule.id} | {level} | {v.status} | {_md_cell(reason)} |")
        failed = [v for v in self.verdicts.values() if v.status == FAILED]
        if failed:
            lines += ["", "## Failures", ""]
        for v in failed:
            # Whole: the table shows a reason's first line, this the first failure's every line.
            test = next(t for t in v.tests if t.outcome == FAILED)
            text = test.details or test.message
            fence = "````" if "```" in text else "```"
            lines += [f"### {v.rule.id}", "", v.rule.statement, "", f"`{test.nodeid}`", ""]
            lines += [fence, text, fence, ""]
        return "\n".join(lines).rstrip("\n") + "\n"

    def write(self, path: Path) -> list[Path]:
        """Write JSON, Markdown and HTML side by side; ``path`` may end in .json, .md, .html."""
        base = path.with_suffix("") if path.suffix in (".json", ".md", ".html") else path
        paths = [base.with_suffix(suffix) for suffix in (".json", ".md", ".html")]
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        data = self.to_json()
        paths[0].write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        paths[1].write_text(self.to_markdown())
        paths[2].write_text(render_report(data))
        return paths

    def summary_lines(self) -> list[str]:
        """One line per rule group, then one line per failed rule."""
        lines = []
        for group, title in GROUPS.items():
            verdicts = [v for v in self.verdicts.values() if v.rule.group == group]
            tally: dict[str, list[str]] = {}
            for v in verdicts:
                tally.setdefault(v.status, []).append(v.rule.id)
            parts = [
                f"{len(ids)} {status.replace('_', ' ')}" for status, ids in sorted(tally.items())
            ]
            mark = "FAIL" if FAILED in tally else ("ok  " if PASSED in tally else "--  ")
            lines.append(f"{mark} {group:<6} {title:<30} {', '.join(parts)}")
        for v in self.verdicts.values():
            if v.status == FAILED:
                lines.append(f"FAILED {v.rule.id}: {v.rule.statement}")
        return lines


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")
