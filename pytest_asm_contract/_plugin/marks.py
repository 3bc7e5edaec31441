"""How a test names the rules it checks."""

from __future__ import annotations

import pytest

from pytest_asm_contract._contract.rules import CAPABILITIES, get_rule

MARKER = "asm_rule"


def rule(
    *rule_ids: str, capability: str | None = None, generated: bool = False
) -> pytest.MarkDecorator:
    """Mark a test as checking ``rule_ids``; ``capability`` gates it beyond the rules' own.

    The rule ids appear in the test id, in JUnit properties and in the conformance report.
    ``generated``: a generated workload over all these rules, run after every example-based
    check and only when none of its rules failed there.
    """
    if not rule_ids:
        raise ValueError("rule() needs at least one rule id")
    for rule_id in rule_ids:
        get_rule(rule_id)
    if capability is not None and capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
    return pytest.mark.asm_rule(*rule_ids, capability=capability, generated=generated)


def rules_of(item: pytest.Item) -> tuple[str, ...]:
    marker = item.get_closest_marker(MARKER)
    return tuple(marker.args) if marker else ()


def is_generated(item: pytest.Item) -> bool:
    marker = item.get_closest_marker(MARKER)
    return bool(marker and marker.kwargs.get("generated"))


def violated_rules(item: pytest.Item) -> list[str]:
    """The rules a failing test recorded as broken (``mark_violated``), in order."""
    found: list[str] = []
    for key, value in item.user_properties:
        if key == VIOLATED_PROPERTY:
            found += [r for r in str(value).split(",") if r and r not in found]
    return found


def required_capabilities(item: pytest.Item) -> list[str]:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return []
    needed = [get_rule(rule_id).capability for rule_id in marker.args]
    needed.append(marker.kwargs.get("capability"))
    return sorted({c for c in needed if c})


VIOLATED_PROPERTY = "asm_violated_rules"


def mark_violated(item: pytest.Item, *rule_ids: str) -> None:
    """Record which of a failing test's rules it saw broken.

    A test that checks many rules (the state machine) calls this before failing, so the report
    marks only the violated rules as failed instead of every rule the test covers.
    """
    for rule_id in rule_ids:
        get_rule(rule_id)
    item.user_properties.append((VIOLATED_PROPERTY, ",".join(rule_ids)))
