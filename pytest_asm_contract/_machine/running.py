"""Running the machine against a store: settings per profile, extra rounds, minimised results."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from hypothesis import Phase
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis.stateful import run_state_machine_as_test

from pytest_asm_contract._machine.constants import DEFAULT_STEP_COUNT, EXTRA_ROUNDS
from pytest_asm_contract._machine.coverage import Coverage
from pytest_asm_contract._machine.minimizing import contract_machine, minimize
from pytest_asm_contract._machine.simplifying import simplify
from pytest_asm_contract._machine.violations import ContractViolation, violations_in


@dataclasses.dataclass
class StatefulResult:
    """What one run of the machine found: violations (minimised) and what it exercised."""

    coverage: Coverage
    violations: list[ContractViolation]
    error: BaseException | None = None

    @property
    def passed(self) -> bool:
        return not self.violations


def machine_settings(parent: Settings, *, step_count: int = DEFAULT_STEP_COUNT) -> Settings:
    """``parent`` (a profile's settings) adjusted for the machine: replay comes from the seed.

    Hypothesis stops at the first violation instead of shrinking it: its shrinking has no public
    time limit (on the kit's broken stores it took from seconds to its own five-minute limit, and
    under the deep profile reproductions came out no shorter), while the kit's minimisation that
    follows has a budget. Its explain phase needs shrinking, so it goes too.
    """
    phases = tuple(p for p in parent.phases if p not in (Phase.shrink, Phase.explain))
    return Settings(
        parent,
        stateful_step_count=step_count,
        database=None,
        print_blob=False,
        phases=phases,
    )


def run_contract_machine(
    factory: Callable[[], Any],
    settings: Settings,
    seed: int | None = None,
    *,
    step_count: int = DEFAULT_STEP_COUNT,
    minimize_seconds: float = 10.0,
    extra_rounds: int = EXTRA_ROUNDS,
) -> StatefulResult:
    """Run the machine against stores from ``factory``; violations are returned, not raised.

    Each round stops at its first violation (see :func:`machine_settings`); :func:`minimize` then
    cuts the example's operations and :func:`simplify` makes them plain, each for up to
    ``minimize_seconds`` (0 to skip both), so the time from a violation to its report is the
    kit's own budget. Anything that is not a contract violation (a broken factory, a bug in the
    kit) propagates.

    A round that passes without reaching every required probe is followed by up to
    ``extra_rounds`` more rounds of the same budget (seeds ``seed + 1``, ``seed + 2``, ...), so a
    small budget that missed a rare step by chance does not read as a vacuous pass, while a store
    that really rejects too much still ends with probes never reached.
    """
    coverage = Coverage()
    for round_number in range(1 + extra_rounds):
        if round_number and not coverage.unexercised():
            break
        coverage.rounds = round_number + 1
        machine = contract_machine(factory, coverage)
        if seed is not None:
            machine = hypothesis_seed(seed + round_number)(machine)
        try:
            run_state_machine_as_test(
                machine,
                settings=machine_settings(settings, step_count=step_count),
            )
        except BaseException as error:
            found = violations_in(error)
            if not found:
                raise
            if minimize_seconds:
                found = [minimize(v, factory, seconds=minimize_seconds) for v in found]
                found = [simplify(v, factory, seconds=minimize_seconds) for v in found]
            return StatefulResult(coverage, found, error)
    return StatefulResult(coverage, [])
