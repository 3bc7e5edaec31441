"""Reports: HTML rule matrix with failure details, and the stores-by-rules comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_asm_contract._plugin.compare import main as compare

MEMORY = "reference_stores.memory:InMemorySessionStore"


@pytest.fixture
def reports(pytester: pytest.Pytester) -> Path:
    pytester.syspathinsert(Path(__file__).resolve().parents[2])
    pytester.runpytest(f"--asm-store={MEMORY}", "--asm-report=good.html", "--asm-rules=SES,PORT")
    pytester.runpytest(
        "--asm-store=tests.zoo.sessions:RawKeyError", "--asm-report=bad", "--asm-rules=SES,PORT"
    )
    return pytester.path


def test_html_report_shows_the_matrix_and_failure_details(reports: Path) -> None:
    good = (reports / "good.html").read_text()
    assert (reports / "good.json").exists() and (reports / "good.md").exists()
    assert '<a class="cell passed" href="#SES-1"' in good
    bad = (reports / "bad.html").read_text()
    assert '<a class="cell failed" href="#SES-2"' in bad
    assert "<h2>Failures</h2>" in bad
    assert "raw builtins.KeyError escaped the store" in bad


def test_markdown_report_keeps_whole_failure_texts(reports: Path) -> None:
    markdown = (reports / "bad.md").read_text()
    table, failures = markdown.split("## Failures")
    assert "| SES-2 | MUST | failed |" in table
    data = json.loads((reports / "bad.json").read_text())
    details = [t["details"] for r in data["rules"] for t in r["tests"] if t["outcome"] == "failed"]
    assert details and any(text in failures for text in details)
    assert "### SES-2" in failures


def test_compare_merges_reports(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert compare([str(reports / "good.json"), str(reports / "bad.json")]) == 0
    table = capsys.readouterr().out
    assert "| SES-2 | pass | **FAIL** |" in table
    compare(
        [
            str(reports / "good.json"),
            str(reports / "bad.json"),
            "--html",
            str(reports / "cmp.html"),
            "--markdown",
            str(reports / "cmp.md"),
        ]
    )
    assert "tests.zoo.sessions:RawKeyError" in (reports / "cmp.html").read_text()
    assert (reports / "cmp.md").read_text() == table
    data = json.loads((reports / "bad.json").read_text())
    failed = [t for r in data["rules"] for t in r["tests"] if t["outcome"] == "failed"]
    assert all(t["details"] for t in failed)
