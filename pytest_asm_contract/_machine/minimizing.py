"""Binding the machine to a store, replaying recorded operations, and cutting a failing
example down to the operations that still break the same rule.

A replay needs no state machine: it hands the recorded actions to a fresh
:class:`~.referee.Referee`, which judges them as the machine's rules had it judge them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pytest_asm_contract._contract.port import close_store
from pytest_asm_contract._machine.checks import check_state, final_check
from pytest_asm_contract._machine.constants import Action
from pytest_asm_contract._machine.coverage import Coverage
from pytest_asm_contract._machine.inputs import Pools
from pytest_asm_contract._machine.machine import ContractMachine
from pytest_asm_contract._machine.referee import Referee
from pytest_asm_contract._machine.violations import ContractViolation


def contract_machine(
    factory: Callable[[], Any], coverage: Coverage | None = None
) -> type[ContractMachine]:
    """A ContractMachine class bound to ``factory`` (a fresh, empty store per call)."""
    bound_coverage = coverage if coverage is not None else Coverage()

    class BoundContractMachine(ContractMachine):
        store_factory = staticmethod(factory)
        coverage = bound_coverage

    return BoundContractMachine


def replay(
    factory: Callable[[], Any], pools: Pools, actions: Sequence[Action]
) -> ContractViolation | None:
    """Run recorded store operations against a fresh store, comparing as the machine does.

    Returns the violation they show, or None if they pass (or fail some other way).
    """
    referee = Referee(factory(), Coverage(), pools)
    try:
        for operation, args, kwargs in actions:
            referee.act(operation, *args, **kwargs)
            if referee.dirty:
                check_state(referee)
        final_check(referee)
    except ContractViolation as violation:
        return violation
    except Exception:  # a different failure is not the one being minimised
        return None
    finally:
        close_store(referee.store)
    return None


def minimize(
    violation: ContractViolation,
    factory: Callable[[], Any],
    *,
    seconds: float = 10.0,
    max_replays: int = 400,
) -> ContractViolation:
    """The shortest sequence of the example's store operations that still breaks the same rule.

    Delta debugging over the recorded operations, each candidate replayed against a fresh store
    and a fresh model: it drops whole operations until removing any single one of those left
    makes the violation disappear (or the budget runs out). Hypothesis reports the example as
    it found it (see ``running.machine_settings``), so this pass does all the cutting.
    """
    if violation.pools is None or not violation.actions:
        return violation
    pools = violation.pools
    deadline = time.monotonic() + seconds
    replays = 0

    def attempt(candidate: list[Action]) -> ContractViolation | None:
        nonlocal replays
        replays += 1
        found = replay(factory, pools, candidate)
        return found if found is not None and found.rule_id == violation.rule_id else None

    def out_of_budget() -> bool:
        return replays >= max_replays or time.monotonic() > deadline

    first = attempt(list(violation.actions))
    if first is None:
        return violation  # the store does not fail the same way twice: keep the example found
    best = first
    current = list(first.actions)
    granularity = 2
    while len(current) >= 2 and not out_of_budget():
        size = max(1, -(-len(current) // granularity))
        progressed = False
        for start in range(0, len(current), size):
            found = attempt(current[:start] + current[start + size :])
            if found is not None:
                best, current = found, list(found.actions)
                granularity = max(granularity - 1, 2)
                progressed = True
                break
            if out_of_budget():
                break
        if not progressed:
            if size == 1:
                break
            granularity = min(granularity * 2, len(current))
    return best
