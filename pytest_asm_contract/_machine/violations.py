"""What the machine raises when a store breaks a rule: one violation class per rule."""

from __future__ import annotations

from typing import ClassVar

from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.constants import STATEFUL_RULES, Action
from pytest_asm_contract._machine.inputs import Pools
from pytest_asm_contract._machine.repro import Lazy


class ContractViolation(AssertionError):
    """A store broke ``rule_id``. ``steps`` are the store calls that show it, as Python source.

    ``steps`` holds the calls of the rules the example ran, ending with the failing check;
    ``full_steps`` also holds the reads the machine made to compare the whole state, for stores
    whose behaviour depends on reads. ``also`` names further rules the example breaks (a repeated
    flush that stores an event twice breaks IDEM-1 and, more specifically, FLUSH-4).
    """

    rule_id: ClassVar[str] = ""

    def __init__(
        self,
        what: str,
        *,
        steps: list[str | Lazy],
        full_steps: list[str | Lazy],
        also: tuple[str, ...] = (),
        actions: list[Action] | None = None,
        pools: Pools | None = None,
    ) -> None:
        super().__init__(f"{self.rule_id} violated: {what}")
        self.what = what
        self.steps = steps
        self.full_steps = full_steps
        self.also = also
        self.actions = actions or []
        self.pools = pools

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """The violated rule, then any more specific rules the same example also breaks."""
        return (self.rule_id, *self.also)

    @property
    def code(self) -> str:
        """The reproduction: the example's store calls, ending with the failing check."""
        return repro.snippet(self.steps)

    @property
    def full_code(self) -> str:
        """The reproduction including the reads the machine made to compare the state."""
        return repro.snippet(self.full_steps)


VIOLATION_TYPES: dict[str, type[ContractViolation]] = {
    rule_id: type(
        f"Violation_{rule_id.replace('-', '_')}",
        (ContractViolation,),
        {"rule_id": rule_id, "__module__": __name__},
    )
    for rule_id in STATEFUL_RULES
}


def violations_in(error: BaseException) -> list[ContractViolation]:
    """Every ContractViolation in ``error`` (looking into exception groups), one per rule."""
    found: dict[str, ContractViolation] = {}

    def walk(exc: BaseException) -> None:
        if isinstance(exc, ContractViolation):
            found.setdefault(exc.rule_id, exc)
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)

    walk(error)
    return sorted(found.values(), key=lambda v: STATEFUL_RULES.index(v.rule_id))
