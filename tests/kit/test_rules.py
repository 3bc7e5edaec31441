"""The rule catalogue matches the contract, and docs/rules.md is generated from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_asm_contract._contract.rules import GROUPS, RULES, RULES_BY_ID, select_rules
from scripts.rules_doc import render

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT.parent / "shared" / "spec" / "contract.md"
SIDE_PORTS = ROOT.parent / "shared" / "spec" / "query-maintenance.md"
ASYNC_RULES = ROOT.parent / "shared" / "spec" / "async.md"
#: The side ports' groups the catalogue holds.
SIDE_GROUPS = ("QRY", "REG", "MNT")


def test_rules_doc_is_current() -> None:
    assert (ROOT / "docs" / "rules.md").read_text() == render(), (
        "docs/rules.md is stale: run python scripts/rules_doc.py --write"
    )


@pytest.mark.skipif(not CONTRACT.exists(), reason="the contract text is not beside the checkout")
def test_catalogue_has_every_rule_of_the_contract() -> None:
    ids = re.findall(r"^- ([A-Z]+-\d+) ", CONTRACT.read_text(), flags=re.MULTILINE)
    assert ids, "no rule ids found in contract.md"
    side = re.findall(r"^- ([A-Z]+-\d+) ", SIDE_PORTS.read_text(), flags=re.MULTILINE)
    ids += [rule_id for rule_id in side if rule_id.split("-")[0] in SIDE_GROUPS]
    ids += re.findall(r"^- (ASYNC-\d+) ", ASYNC_RULES.read_text(), flags=re.MULTILINE)
    # The kit's own extensions (stated where the contract is silent) are marked as such.
    assert sorted(ids) == sorted(r.id for r in RULES if not r.extension)
    assert all("extension of this kit" in r.statement for r in RULES if r.extension)


def test_every_rule_has_a_known_group_and_statement() -> None:
    for rule in RULES:
        assert rule.group in GROUPS, rule.id
        assert rule.statement.endswith("."), rule.id


def test_selection_by_group_and_id() -> None:
    assert select_rules("seq, FLUSH-2") == {r.id for r in RULES if r.group == "SEQ"} | {"FLUSH-2"}
    assert select_rules(None) == set(RULES_BY_ID)
    with pytest.raises(ValueError, match="unknown rule or group 'XYZ'"):
        select_rules("XYZ")
