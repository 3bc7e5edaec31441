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
    """The failure text: each violation with its calls, then the seed and how to replay."""
    origin = history.origin
    total = sum(1 + v.omitted for v in violations)
    rules = ", ".join(violated_rules(violations))
    lines = [
        f"{total} violation(s) of {rules} in a history of {len(history.calls)} calls "
        f"({history.description}; seed {history.seed}); times in ms from the first call:"
    ]
    for number, violation in enumerate(violations, 1):
        lines.append(f"{number}. {violation.rule} [{violation.kind}] {violation.message}")
        lines.extend("     " + format_call(call, origin) for call in violation.calls)
        if violation.omitted:
            lines.append(f"     ... and {violation.omitted} more like it")
    lines.append(f"seed: {history.seed}")
    if replay:
        lines.append(f"replay: {replay}")
    return "\n".join(lines)


def numbers_text(numbers: Sequence[int | None]) -> str:
    """A list of sequence numbers, its middle elided when long."""
    if len(numbers) <= 12:
        return str(list(numbers))
    return f"[{', '.join(map(str, numbers[:6]))}, ..., {', '.join(map(str, numbers[-3:]))}]"


__all__ = ["format_call", "format_report", "ids_text", "numbers_text", "result_text"]
