"""Red runs lead with the root cause: the order checks run in, and what is not run after a failure.

Checks run foundations first (the 14 operations, the round trip, saving and reading one
session, run and event, numbering), then single calls, then concurrency and failures, then the
generated workloads (``rules.tier``). When a check of a rule fails, every later check that builds
on it (``rules.prerequisites``) is not run, saying which rule to fix first, instead of failing
for the same reason dozens of times; ``--asm-full-run`` runs everything anyway.

Failures are shared between xdist workers through a directory the controller creates: one empty
file per failed rule. A worker may already be running a later check when another finds the
failure, so under xdist a few derived failures can still show; without xdist none do.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from pytest_asm_contract._contract.rules import (
    CONCURRENT_ORDER,
    FOUNDATIONS,
    GROUP_ORDER,
    get_rule,
    prerequisites,
    tier,
)
from pytest_asm_contract._plugin.marks import is_generated, rules_of, violated_rules

#: Where generated workloads run: after every example-based check.
GENERATED_TIER = 4
_RULE_ID = re.compile(r"^[A-Z]+-[0-9]+$")


def _position(rule_id: str) -> int:
    """Where a rule's checks run within its tier."""
    if rule_id in FOUNDATIONS:
        return FOUNDATIONS.index(rule_id)
    if rule_id in CONCURRENT_ORDER:
        return CONCURRENT_ORDER.index(rule_id)
    group = get_rule(rule_id).group
    return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)


def order_key(item: pytest.Item) -> tuple[int, int, int]:
    """Tests naming no rule first (the user's own), then by the tier and group of their rules: a
    check runs after the checks of every rule it names (it builds on them, see ``builds_on``),
    so one placed by a rule it is not mainly about runs after that rule's own checks."""
    rules = rules_of(item)
    if not rules:
        return (-1, 0, 0)
    if is_generated(item):
        return (GENERATED_TIER, 0, 0)
    level = max(tier(rule_id) for rule_id in rules)
    position = max(_position(rule_id) for rule_id in rules if tier(rule_id) == level)
    own = tier(rules[0]) == level and _position(rules[0]) == position
    return (level, position, 0 if own else 1)


def run_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` sorted by ``order_key``, keeping each module's checks of one tier together (in
    the order of the module's first check) so that the progress output stays one line per file."""
    keys = {id(item): order_key(item) for item in items}
    module_rank: dict[tuple[int, str], tuple[int, int]] = {}
    for item in items:
        level, position, secondary = keys[id(item)]
        slot = (level, item.nodeid.split("::")[0])
        module_rank[slot] = min(module_rank.get(slot, (position, secondary)), (position, secondary))

    def key(item: pytest.Item) -> tuple[int, tuple[int, int], str, int, int]:
        level, position, secondary = keys[id(item)]
        module = item.nodeid.split("::")[0]
        return (level, module_rank[(level, module)], module, position, secondary)

    return sorted(items, key=key)


def builds_on(item: pytest.Item) -> frozenset[str]:
    """The rules a test's checks build on: the prerequisites of its rules, and the rules it names
    beside the one it is mainly about (a check of BATCH-3 that also reads numbers, SEQ-1, fails
    for SEQ-1's reason when SEQ-1 is broken). A generated workload builds on every rule it
    covers: the example-based checks ran first."""
    rules = rules_of(item)
    needed = {p for rule_id in rules for p in prerequisites(rule_id)} | set(rules[1:])
    if is_generated(item):
        return frozenset(needed | set(rules))
    return frozenset(needed - set(rules[:1]))


def failed_by(item: pytest.Item) -> list[str]:
    """The rules a failed test counts against: those it recorded as violated, or the rule it is
    mainly about (the first it names)."""
    return violated_rules(item) or list(rules_of(item)[:1])


class Failures:
    """The rules that failed so far in this run, across xdist workers."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    @classmethod
    def create(cls) -> Failures:
        return cls(Path(tempfile.mkdtemp(prefix="asm-failed-")))

    def record(self, rule_ids: list[str]) -> None:
        if self.directory is None:
            return
        for rule_id in rule_ids:
            if _RULE_ID.match(rule_id):
                (self.directory / rule_id).touch()

    def seen(self) -> set[str]:
        if self.directory is None or not self.directory.is_dir():
            return set()
        return set(os.listdir(self.directory))

    def remove(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def skip_if_blocked(item: pytest.Item, failures: Failures) -> None:
    """Skip ``item`` when a rule it builds on already failed, saying which to fix first."""
    needed = builds_on(item)
    if not needed:
        return
    blocked = sorted(needed & failures.seen(), key=lambda r: (tier(r), r))
    if blocked:
        pytest.skip(
            f"not run: fix {', '.join(blocked)} first (this check builds on "
            f"{'them' if len(blocked) > 1 else 'it'}; --asm-full-run runs it anyway)"
        )


__all__ = [
    "Failures",
    "builds_on",
    "failed_by",
    "order_key",
    "run_order",
    "skip_if_blocked",
]
