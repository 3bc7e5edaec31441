"""Reporting violations: confirm each reproduction against a fresh store, write reproducer
files, and say what broke and how to see it."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_asm_contract._contract.port import close_store
from pytest_asm_contract._contract.rules import get_rule
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.violations import ContractViolation


@dataclasses.dataclass
class Explanation:
    """One violation, ready to show: the reproduction and whether it was confirmed."""

    violation: ContractViolation
    code: str
    verified: bool
    reproducer: Path | None = None
    #: The store's operations are ``async def``: the code is shown with its calls awaited.
    is_async: bool = False

    @property
    def shown(self) -> str:
        return repro.awaited(self.code) if self.is_async else self.code


def _is_async(store: object) -> bool:
    """Whether ``store`` is the kit's synchronous view of an async store (its facade)."""
    return "asm_async_store" in dir(type(store))


def confirm(violation: ContractViolation, factory: Callable[[], Any]) -> tuple[str, bool, bool]:
    """The shortest reproduction that fails against a fresh store, whether one does, and whether
    the store is async.

    Tries the calls of the example's steps first; when those pass (a store whose behaviour depends
    on the reads the machine made in between), tries again with those reads included.
    """
    is_async = False
    for code in (violation.code, violation.full_code):
        store = factory()
        is_async = _is_async(store)
        try:
            failure = repro.run_snippet(code, store)
        finally:
            close_store(store)
        if failure is not None:
            return code, True, is_async
    return violation.code, False, is_async


def explain(
    violations: Sequence[ContractViolation],
    factory: Callable[[], Any],
    *,
    repro_dir: Path | None = None,
    store_target: str | None = None,
    store_options: Sequence[tuple[str, str]] = (),
    seed: int | None = None,
    replay: str | None = None,
) -> tuple[list[Explanation], str]:
    """Confirm each violation against a fresh store, write reproducer files, and say it all.

    Returns the explanations and the failure message: per violated rule its ID and statement,
    what happened, and the shortest sequence of store calls that shows it, as Python to paste.
    """
    explanations: list[Explanation] = []
    for violation in violations:
        code, verified, is_async = confirm(violation, factory)
        explanation = Explanation(violation, code, verified, is_async=is_async)
        if repro_dir is not None:
            rule_statement = get_rule(violation.rule_id).statement
            repro_dir.mkdir(parents=True, exist_ok=True)
            path = repro_dir / f"test_asm_repro_{violation.rule_id.lower().replace('-', '_')}.py"
            path.write_text(
                repro.reproducer_module(
                    rule_id=violation.rule_id,
                    statement=rule_statement,
                    what=violation.what,
                    code=code,
                    store_target=store_target,
                    store_options=store_options,
                    seed=seed,
                    replay=replay,
                    is_async=is_async,
                ),
                encoding="utf-8",
            )
            explanation.reproducer = path
        explanations.append(explanation)
    return explanations, _message(explanations, replay)


def _message(explanations: Sequence[Explanation], replay: str | None) -> str:
    parts = []
    for explanation in explanations:
        violation = explanation.violation
        rule = get_rule(violation.rule_id)
        calls = sum(1 for line in explanation.code.splitlines() if "store." in line)
        shown = explanation.shown
        status = (
            "it fails against a fresh store"
            if explanation.verified
            else "NOT confirmed against a fresh store: the store may behave differently over "
            "time; rerun with the seed below"
        )
        lines = [
            f"{rule.id} violated ({rule.level.value}): {rule.statement}",
            *(f"  also breaks {other}: {get_rule(other).statement}" for other in violation.also),
            f"What happened: {violation.what}",
            f"Shortest sequence found ({calls} store calls; {status}):",
            "",
            textwrap.indent(shown, "    "),
            "",
        ]
        if explanation.reproducer is not None:
            lines.append(f"Reproducer test written to {explanation.reproducer}")
        parts.append("\n".join(lines))
    if replay:
        parts.append(f"Replay this search: {replay}")
    return "\n\n".join(parts)
