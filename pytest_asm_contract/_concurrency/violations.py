"""A contract violation found in a history, named by the rule it breaks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from pytest_asm_contract._concurrency.recording import Call


@dataclasses.dataclass(frozen=True)
class Violation:
    rule: str
    kind: str
    message: str
    calls: tuple[Call, ...] = ()
    #: How many more violations of this kind were found and not listed.
    omitted: int = 0


def violated_rules(violations: Iterable[Violation]) -> list[str]:
    return sorted({v.rule for v in violations})


__all__ = ["Violation", "violated_rules"]
