"""Running the machine against a store: settings, capped shrinking, extra rounds, results."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis.internal.conjecture import engine as hypothesis_engine
from hypothesis.reporting import current_reporter, with_reporter
from hypothesis.stateful import run_state_machine_as_test

from pytest_asm_contract._machine.constants import DEFAULT_STEP_COUNT, EXTRA_ROUNDS, SHRINK_SECONDS
from pytest_asm_contract._machine.coverage import Coverage
from pytest_asm_contract._machine.minimizing import contract_machine, minimize
from pytest_asm_contract._machine.simplifying import simplify
from pytest_asm_contract._machine.violations import ContractViolation, violations_in


@dataclasses.dataclass
class StatefulResult:
    """What one run of the machine found: violations (shrunk) and what it exercised."""

    coverage: Coverage
    violations: list[ContractViolation]
    error: BaseException | None = None

    @property
    def passed(self) -> bool:
        return not self.violations


def machine_settings(parent: Settings, *, step_count: int = DEFAULT_STEP_COUNT) -> Settings:
    """``parent`` (a profile's settings) adjusted for the machine: replay comes from the seed."""
    return Settings(
        parent,
        stateful_step_count=step_count,
        database=None,
        report_multiple_bugs=True,
        print_blob=False,
    )


@contextlib.contextmanager
def _shrinking_limited_to(seconds: float | None) -> Iterator[None]:
    """Cap Hypothesis's shrinking time (its engine documents the limit as monkeypatchable).

    When the cap is hit Hypothesis reports the shortest failing example found so far; its
    "very slow shrinking" warning is dropped, as the cap is deliberate here.
    """
    if seconds is None or not hasattr(hypothesis_engine, "MAX_SHRINKING_SECONDS"):
        yield
        return
    previous = hypothesis_engine.MAX_SHRINKING_SECONDS
    forward = current_reporter()

    def reporter(value: object) -> None:
        if "to shrink a failing test case" not in str(value):
            forward(value)

    hypothesis_engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        with with_reporter(reporter):
            yield
    finally:
        hypothesis_engine.MAX_SHRINKING_SECONDS = previous


def run_contract_machine(
    factory: Callable[[], Any],
    settings: Settings,
    seed: int | None = None,
    *,
    step_count: int = DEFAULT_STEP_COUNT,
    shrink_seconds: float | None = SHRINK_SECONDS["ci"],
    minimize_seconds: float = 10.0,
    extra_rounds: int = EXTRA_ROUNDS,
) -> StatefulResult:
    """Run the machine against stores from ``factory``; violations are returned, not raised.

    Hypothesis shrinks each violation for up to ``shrink_seconds``; :func:`minimize` then cuts
    the remaining operations for up to ``minimize_seconds`` (0 to skip). Anything that is not a
    contract violation (a broken factory, a bug in the kit) propagates.

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
            with _shrinking_limited_to(shrink_seconds):
                run_state_machine_as_test(
                    machine, settings=machine_settings(settings, step_count=step_count)
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
