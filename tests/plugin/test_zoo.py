"""The kit fails every broken store in the zoo on the rules it breaks, and passes the reference."""

from __future__ import annotations

import json

import pytest

from tests.zoo import mutants

STATEFUL_TEST = "test_store_follows_the_contract_model"
# tests/zoo/sequences.py holds bugs that only a sequence of calls shows: tests/test_stateful.py
# runs those against the state machine alone. Every other broken store must be caught here by an
# example-based check.
MUTANTS = [(t, c) for t, c in mutants() if not t.startswith("tests.zoo.sequences:")]


def run_kit(
    pytester: pytest.Pytester, store: str, kind: str = "session", *extra: str
) -> dict[str, str]:
    """Run the bundled suite against ``store``; return each rule's status from the report."""
    flag = "--asm-artifact-store" if kind == "artifact" else "--asm-store"
    result = pytester.runpytest(
        f"{flag}={store}", "--asm-report=report", "-p", "no:cacheprovider", "-q", *extra
    )
    report = json.loads((pytester.path / "report.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["rules"]}
    assert result.ret == (1 if "failed" in statuses.values() else 0), result.stdout.str()
    return statuses


def test_the_zoo_is_large_enough() -> None:
    assert len(MUTANTS) >= 20


@pytest.mark.parametrize(("target", "store_class"), MUTANTS, ids=[t for t, _ in MUTANTS])
def test_broken_store_fails_on_its_rule(
    pytester: pytest.Pytester, target: str, store_class: type
) -> None:
    # Only the groups of the rules the store breaks run: the verdict on those rules is the same
    # as in a full run, and the zoo stays fast enough to run on every change. The stateful check
    # is left out (it is slow to shrink, and tests/test_stateful.py shows what it catches).
    groups = sorted({rule.split("-")[0] for rule in store_class.BREAKS})
    statuses = run_kit(
        pytester,
        target,
        getattr(store_class, "KIND", "session"),
        f"--asm-rules={','.join(groups)}",
        "-k",
        f"not {STATEFUL_TEST}",
    )
    missed = [rule for rule in store_class.BREAKS if statuses[rule] != "failed"]
    assert not missed, f"{target} ({store_class.__doc__}) was not caught on {missed}"


@pytest.mark.parametrize(
    ("store", "kind"),
    [
        ("reference_stores.memory:InMemorySessionStore", "session"),
        ("reference_stores.memory:InMemoryArtifactStore", "artifact"),
        ("tests.strict_store:StrictInMemorySessionStore", "session"),
    ],
)
def test_reference_memory_stores_pass_every_rule(
    pytester: pytest.Pytester, store: str, kind: str
) -> None:
    statuses = run_kit(pytester, store, kind)
    assert "failed" not in statuses.values()
    assert "passed" in statuses.values()
