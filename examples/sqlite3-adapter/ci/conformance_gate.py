"""Fail a CI job unless every MUST rule of the ASM contract passed.

    python ci/conformance_gate.py reports/conformance.json [--allow-skip RULE[,RULE...]]

Reads the JSON report that ``pytest --asm-report=reports/conformance`` writes. pytest's own exit
status already fails the job when a check fails; this gate also catches the checks that did not
run: a MUST rule that was skipped (unless allowed with ``--allow-skip`` and a reason in the CI
file) or never ran (a suite module not imported, tests deselected with ``-k``). Rules the kit
checks on its own reference stores or on artifact stores are not a session store's concern, and
capability rules count only when they fail (the store declared the capability). The ASYNC rules
count for an async store: the report's ``async_store`` says so (reports of kits before it: an
ASYNC check that ran).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pytest_asm_contract import RULES, Scope

RULES_BY_ID = {rule.id: rule for rule in RULES}


def gated_scopes(report: dict[str, Any]) -> set[Scope]:
    """The session store's rules, and the ASYNC rules for an async store."""
    is_async = report.get("async_store")
    if is_async is None:  # no store built by the checks, or a report without the field
        is_async = any(
            RULES_BY_ID[e["id"]].scope is Scope.ASYNC_STORE and e["status"] in {"passed", "failed"}
            for e in report["rules"]
            if e["id"] in RULES_BY_ID
        )
    return {Scope.SESSION_STORE, Scope.ASYNC_STORE} if is_async else {Scope.SESSION_STORE}


def problems(report: dict[str, Any], allowed_skips: set[str]) -> list[str]:
    found = []
    gated = gated_scopes(report)
    for entry in report["rules"]:
        rule = RULES_BY_ID.get(entry["id"])
        if rule is None or rule.scope not in gated:
            continue
        status = entry["status"]
        lines = (entry["reason"] or "").strip().splitlines()
        reason = lines[0][:200] if lines else "no reason given"
        if status == "failed":
            found.append(f"{rule.id} failed: {reason}")
        elif entry["level"] != "MUST":
            continue
        elif status == "skipped" and rule.id not in allowed_skips:
            found.append(f"{rule.id} (MUST) was skipped: {reason}")
        elif status == "not_run":
            found.append(f"{rule.id} (MUST) was not checked: {reason}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the JSON report written by --asm-report")
    parser.add_argument(
        "--allow-skip",
        action="append",
        default=[],
        metavar="RULES",
        help="MUST rules that may be skipped, comma-separated (say why in your CI file)",
    )
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"gate: FAILED: no report at {args.report} (did pytest run with --asm-report?)")
        return 1
    report = json.loads(args.report.read_text())
    allowed = {rule.strip() for item in args.allow_skip for rule in item.split(",") if rule}
    unknown = sorted(allowed - set(RULES_BY_ID))
    if unknown:
        parser.error(f"unknown rule id in --allow-skip: {', '.join(unknown)}")
    found = problems(report, allowed)
    summary = ", ".join(f"{count} {status}" for status, count in report["summary"].items())
    print(f"ASM contract report for {report['store']}: {summary}")
    for rule_id in sorted(allowed):
        print(f"allowed to skip: {rule_id}")
    for problem in found:
        print(f"GATE: {problem}")
    print("gate: " + ("FAILED" if found else "passed"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
