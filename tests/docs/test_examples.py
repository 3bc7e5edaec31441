"""The example adapters: the correct one passes every MUST rule, the buggy one fails on its bugs.

Each example runs as its own project would (its own pyproject.toml, conftest.py and CI gate),
in a copy under a temporary directory, with this repository's virtual environment.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_asm_contract._contract.rules import RULES, Scope

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GOOD = EXAMPLES / "sqlite3-adapter"
BUGGY = EXAMPLES / "sqlite3-adapter-buggy"
SUITE = ROOT / "pytest_asm_contract" / "suite"
IGNORE = shutil.ignore_patterns(
    "__pycache__",
    ".hypothesis",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    "reports",
    "*.egg-info",
)

#: The rules the two bugs can break: a sequence number read outside the write transaction breaks
#: everything concurrent (how much of it depends on the race), a strict `since` breaks EVT-3.
BUGGY_RULES = {
    "EVT-3",
    "SEQ-1",
    "SEQ-5",
    "IDEM-1",
    "IDEM-4",
    "BATCH-5",
    "FLUSH-4",
    "FLUSH-5",
    "CONC-1",
    "CONC-2",
    "CONC-3",
}


def _copy(example: Path, tmp_path: Path) -> Path:
    target = tmp_path / example.name
    shutil.copytree(example, target, ignore=IGNORE)
    return target


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def _suite(project: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]]:
    done = _run(
        project, "-m", "pytest", "--asm-report=reports/conformance", "-p", "no:cacheprovider"
    )
    report = json.loads((project / "reports" / "conformance.json").read_text())
    return done, {rule["id"]: rule for rule in report["rules"]}


def _gate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    gate = GOOD / "ci" / "conformance_gate.py"
    return _run(project, str(gate), "reports/conformance.json", *args)


def test_the_example_adapter_passes_every_must_rule(tmp_path: Path) -> None:
    project = _copy(GOOD, tmp_path)
    done, rules = _suite(project)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    for catalogued in RULES:
        rule = rules[catalogued.id]
        if catalogued.scope is not Scope.SESSION_STORE:
            assert rule["status"] == "not_run", rule
        elif catalogued.capability in {"long_poll", "referential_integrity"}:
            assert rule["status"] == "skipped", rule  # not declared by this store
        else:
            assert rule["status"] == "passed", f"{rule['id']}: {rule['status']} {rule['reason']}"
    gate = _gate(project)
    assert gate.returncode == 0, gate.stdout
    assert gate.stdout.rstrip().endswith("gate: passed")


def test_the_buggy_copy_fails_on_its_two_bugs(tmp_path: Path) -> None:
    project = _copy(BUGGY, tmp_path)
    done, rules = _suite(project)
    assert done.returncode == 1, done.stdout[-5000:]
    failed = {rule_id for rule_id, rule in rules.items() if rule["status"] == "failed"}
    # The strict `since` fails EVT-3 every time; the race on sequence numbers fails some of the
    # concurrent checks, but which ones varies from run to run (docs/troubleshooting.md says so).
    assert "EVT-3" in failed, done.stdout[-5000:]
    assert failed & (BUGGY_RULES - {"EVT-3"}), done.stdout[-5000:]
    assert failed <= BUGGY_RULES, f"unrelated rules failed: {sorted(failed - BUGGY_RULES)}"
    assert "likely mistake: since strict (>) instead of inclusive (>=)" in done.stdout
    assert "UNIQUE constraint failed: events.session_id, events.sequence_number" in done.stdout
    gate = _gate(project)
    assert gate.returncode == 1
    assert "GATE: EVT-3 failed" in gate.stdout


@pytest.mark.parametrize("example", [GOOD, BUGGY], ids=lambda p: p.name)
def test_the_examples_import_every_module_of_the_bundled_suite(example: Path) -> None:
    text = (example / "tests" / "test_contract.py").read_text()
    missing = [
        module.stem
        for module in sorted(SUITE.glob("test_*.py"))
        if f"from pytest_asm_contract.suite.{module.stem} import *" not in text
    ]
    assert not missing, (
        f"{example.relative_to(ROOT)}/tests/test_contract.py does not import "
        + ", ".join(missing)
        + "; add `from pytest_asm_contract.suite.MODULE import *  # noqa: F403` for each"
    )


def _files(root: Path) -> set[str]:
    ignored = {
        "__pycache__",
        ".hypothesis",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        "reports",
    }
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not ignored.intersection(path.relative_to(root).parts)
    }


def test_the_buggy_copy_differs_only_where_the_bugs_are() -> None:
    # The buggy copy has no CI files of its own; everything else must match the correct adapter.
    expected_only_in_good = {
        "tox.ini",
        ".github/workflows/contract.yml",
        "ci/conformance_gate.py",
    }
    good, buggy = _files(GOOD), _files(BUGGY)
    assert good - buggy == expected_only_in_good
    assert buggy <= good
    allowed_to_differ = {"README.md", "pyproject.toml", "src/asm_sqlite_store/store.py"}
    differ = {name for name in buggy if not filecmp.cmp(GOOD / name, BUGGY / name, shallow=False)}
    assert differ == allowed_to_differ


def _report(*rules: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "store": "example",
        "summary": {"passed": 0, "failed": 0, "skipped": 0, "not_run": 0},
        "rules": [
            {"id": rule_id, "level": level, "status": status, "reason": "because"}
            for rule_id, level, status in rules
        ],
    }


@pytest.mark.parametrize(
    ("rules", "args", "verdict"),
    [
        ([("SEQ-1", "MUST", "passed"), ("POLL-1", "CAPABILITY", "skipped")], [], 0),
        ([("SEQ-1", "MUST", "failed")], [], 1),
        ([("POLL-1", "CAPABILITY", "failed")], [], 1),
        ([("FLUSH-3", "MUST", "skipped")], [], 1),
        ([("FLUSH-3", "MUST", "skipped")], ["--allow-skip", "FLUSH-3"], 0),
        ([("SEQ-5", "MUST", "not_run")], [], 1),
        ([("DEP-1", "MUST", "not_run"), ("ART-1", "MUST", "not_run")], [], 0),
    ],
    ids=[
        "pass",
        "must-failed",
        "capability-failed",
        "must-skipped",
        "allowed-skip",
        "must-not-run",
        "other-scopes",
    ],
)
def test_the_gate_fails_on_any_must_rule_that_did_not_pass(
    tmp_path: Path, rules: list[tuple[str, str, str]], args: list[str], verdict: int
) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "conformance.json").write_text(json.dumps(_report(*rules)))
    done = _gate(tmp_path, *args)
    assert done.returncode == verdict, done.stdout + done.stderr


def test_the_gate_explains_a_missing_report(tmp_path: Path) -> None:
    done = _gate(tmp_path)
    assert done.returncode == 1
    assert "no report at reports/conformance.json" in done.stdout


def test_the_ci_recipe_caches_hypothesis_and_uploads_the_report() -> None:
    yaml = pytest.importorskip("yaml", reason="needs PyYAML to read the workflow")
    workflow = yaml.safe_load((GOOD / ".github" / "workflows" / "contract.yml").read_text())
    steps = workflow["jobs"]["contract"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "actions/cache/restore@v4" in uses and "actions/cache/save@v4" in uses
    assert all(
        step["with"]["path"] == ".hypothesis" for step in steps if "cache" in step.get("uses", "")
    )
    assert "--asm-report=reports/conformance" in runs
    assert "ci/conformance_gate.py reports/conformance.json" in runs
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload"))
    assert upload["with"]["path"] == "reports/"
    tox = (GOOD / "tox.ini").read_text()
    assert "--asm-report=reports/conformance" in tox
    assert "python ci/conformance_gate.py reports/conformance.json" in tox
