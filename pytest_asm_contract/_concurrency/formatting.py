"""How a history's violations read: each call on one line, the seed, the replay command."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pytest_asm_contract._concurrency.recording import Call, History, Op
from pytest_asm_contract._concurrency.violations import Violation, violated_rules
from pytest_asm_contract._contract.model import Event, Run, Session


def ids_text(events: Iterable[Event], limit: int = 4) -> str:
    """The first ids of ``events``, and how many there are."""
    ids = [e.id for e in events]
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids)} events)" if len(ids) > limit else "")


def result_text(result: Any) -> str:
    """What a call returned, short: sequence numbers for events."""
    if isinstance(result, Event):
        return f"#{result.sequence_number}"
    if isinstance(result, list) and all(isinstance(e, Event) for e in result):
        numbers = [e.sequence_number for e in result]
        if len(numbers) > 8:
            return f"[{numbers[0]}..{numbers[-1]}] ({len(numbers)} events)"
        return str(numbers)
    if isinstance(result, Run | Session):
        return f"{type(result).__name__}({result.id!r}, metadata={result.metadata})"
    return repr(result)


def format_call(call: Call, origin: int = 0) -> str:
    """One line: who, what, with which input, what came back, and when (ms from the origin)."""
    if call.op in (Op.READ,):
        args = f"{call.session_id!r}, after={call.after}" + (
            f", limit={call.limit}" if call.limit is not None else ""
        )
    elif call.op in (Op.LATEST, Op.GET_SESSION):
        args = repr(call.session_id)
    elif call.op is Op.GET_RUN:
        args = repr(call.run_id)
    elif call.op is Op.FLUSH:
        args = f"session={call.session_id!r}, run={call.run_id!r}, events=[{ids_text(call.events)}]"
    else:
        args = ids_text(call.events)
    outcome = call.error if call.error is not None else result_text(call.result)
    if call.attempts > 1:
        outcome += f" (after {call.attempts} attempts)"
    label = f" {call.label}" if call.label else ""
    return (
        f"#{call.index} [{call.worker}{label}] {call.op.value}({args}) -> {outcome}"
        f"   {(call.start - origin) / 1e6:.3f}..{(call.end - origin) / 1e6:.3f} ms"
    )


def format_report(
    history: History, violations: Sequence[Violation], replay: str | None = None
) -> str:
    """The failure text: each violation with its calls, then how to replay the run.

    One seed only: the replay command carries the run's seed, from which this history's own is
    derived; without a command the history's seed is printed instead.
    """
    origin = history.origin
    total = sum(1 + v.omitted for v in violations)
    rules = ", ".join(violated_rules(violations))
    seed = "" if replay else f"; seed {history.seed}"
    lines = [
        f"{total} violation(s) of {rules} in a history of {len(history.calls)} calls "
        f"({history.description}{seed}); times in ms from the first call:"
    ]
    for number, violation in enumerate(violations, 1):
        lines.append(f"{number}. {violation.rule} [{violation.kind}] {violation.message}")
        lines.extend("     " + format_call(call, origin) for call in violation.calls)
        if violation.omitted:
            lines.append(f"     ... and {violation.omitted} more like it")
    if replay:
        lines.append(f"replay: {replay}")
    return "\n".join(lines)


#: Beyond this many runs, a list of numbers shows its first runs only (the first defect among
#: them) and says how many runs follow.
MAX_RUNS_SHOWN = 12


def numbers_text(numbers: Sequence[int | None]) -> str:
    """A list of sequence numbers, exactly: consecutive numbers as ``a..b``, so that a gap or a
    repeat stands out however long the list (``[1..2, 1, 4..68]``)."""
    runs: list[str] = []
    start = 0
    for index in range(1, len(numbers) + 1):
        previous, current = numbers[index - 1], numbers[index] if index < len(numbers) else None
        if current is not None and previous is not None and current == previous + 1:
            continue
        first, last = numbers[start], numbers[index - 1]
        length = index - start
        if length >= 3:
            runs.append(f"{first}..{last}")
        else:
            runs.extend(str(n) for n in numbers[start:index])
        start = index
    if len(runs) > MAX_RUNS_SHOWN:
        rest = len(runs) - MAX_RUNS_SHOWN
        runs = [*runs[:MAX_RUNS_SHOWN], f"... {rest} more runs, {len(numbers)} numbers in all"]
    return f"[{', '.join(runs)}]"


def first_defect(numbers: Sequence[int | None]) -> str:
    """Where a log's numbers first stop being 1, 2, 3, ...: the position, what is there and what
    comes before it ("" when they never do)."""
    for position, number in enumerate(numbers, 1):
        if number == position:
            continue
        before = numbers[position - 2] if position > 1 else None
        if number is not None and before is not None and number <= before:
            kind = "a repeat" if number in numbers[: position - 1] else "out of order"
        elif number is not None and number > position:
            kind = "a gap"
        else:
            kind = "a wrong number"
        context = f"after {before}" if before is not None else "first"
        return f"position {position} holds {number} ({context}; {kind}, expected {position})"
    return ""


__all__ = [
    "MAX_RUNS_SHOWN",
    "first_defect",
    "format_call",
    "format_report",
    "ids_text",
    "numbers_text",
    "result_text",
]
