"""Making a minimal reproduction readable: fewer events, plain payloads, instants and ids."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from pytest_asm_contract._contract.model import ExecutionResult
from pytest_asm_contract._machine.constants import Action
from pytest_asm_contract._machine.inputs import Pools
from pytest_asm_contract._machine.minimizing import replay
from pytest_asm_contract._machine.violations import ContractViolation
from pytest_asm_contract._machine.writes import append_batch, flush

#: Model fields holding JSON payloads, and the plain value they are cleared to.
_PAYLOAD_FIELDS: dict[str, Any] = {
    "data": {},
    "metadata": {},
    "context": {},
    "tags": [],
    "token_usage": {},
    "provider_metadata": {},
    "input": None,
    "output": None,
    "error": None,
    "provider": None,
    "correlation_id": None,
    "parent_session_id": None,
    "cost_usd": None,
}
#: Optional fields whose drawn value rarely matters, and the default they are reset to (a
#: reproduction leaves defaults out): tried together, then one by one.
_DEFAULT_FIELDS: dict[str, Any] = {
    "sequence_number": None,
    "run_id": None,
    "ended_at": None,
    "deleted_at": None,
    "turn_count": 0,
}
_ID_FIELDS = ("id", "session_id", "run_id", "agent_id")


def _rewrite(value: Any, change: Callable[[Any], Any]) -> Any:
    """``value`` with ``change`` applied to every leaf and every model, models rebuilt."""
    value = change(value)
    if isinstance(value, BaseModel):
        fields = {name: _rewrite(item, change) for name, item in value.__dict__.items()}
        return type(value).model_construct(**fields)
    if isinstance(value, list):
        return [_rewrite(item, change) for item in value]
    if isinstance(value, tuple):
        return tuple(_rewrite(item, change) for item in value)
    if isinstance(value, dict):
        return {key: _rewrite(item, change) for key, item in value.items()}
    return value


def _rewrite_all(
    actions: Sequence[Action], pools: Pools, change: Callable[[Any], Any]
) -> tuple[list[Action], Pools]:
    rewritten = [
        (operation, _rewrite(args, change), _rewrite(kwargs, change))
        for operation, args, kwargs in actions
    ]
    new_pools = Pools(
        sessions=_rewrite(pools.sessions, change),
        runs=_rewrite(pools.runs, change),
        agents=_rewrite(pools.agents, change),
        moments=_rewrite(pools.moments, change),
    )
    return rewritten, new_pools


def _ids_in(actions: Sequence[Action], pools: Pools) -> list[str]:
    found: list[str] = [*pools.sessions, *pools.runs, *pools.agents]

    def collect(value: Any) -> Any:
        if isinstance(value, BaseModel):
            for name in _ID_FIELDS:
                item = value.__dict__.get(name)
                if isinstance(item, str):
                    found.append(item)
        return value

    for _, args, kwargs in actions:
        _rewrite((args, kwargs), collect)
    return list(dict.fromkeys(found))


def simplify(
    violation: ContractViolation,
    factory: Callable[[], Any],
    *,
    seconds: float = 10.0,
) -> ContractViolation:
    """Make a minimal reproduction readable without losing it.

    Tries, keeping each change only if the same rule is still broken: fewer events in each batch
    and flush, clearing every JSON payload, resetting optional fields (a caller-supplied
    sequence number, a run id, an end time...) to their defaults, giving every instant a plain
    value in the same order, and renaming each id to a short one (``s1``, ``r1``, ``e1``...).
    Ids whose exact form matters (a DATA-3 near miss) stay as they are.
    """
    if violation.pools is None or not violation.actions:
        return violation
    deadline = time.monotonic() + seconds
    best, actions, pools = violation, list(violation.actions), violation.pools

    def attempt(change: Callable[[Any], Any]) -> bool:
        nonlocal best, actions, pools
        if time.monotonic() > deadline:
            return False
        candidate, candidate_pools = _rewrite_all(actions, pools, change)
        if candidate == actions and candidate_pools == pools:
            return False  # nothing to change: no need to replay
        found = replay(factory, candidate_pools, candidate)
        if found is None or found.rule_id != violation.rule_id:
            return False
        best, actions, pools = found, list(found.actions), candidate_pools
        return True

    # Fewer events in each batch and flush.
    index = 0
    while index < len(actions) and time.monotonic() < deadline:
        position = 0
        while time.monotonic() < deadline:
            smaller = _without_element(actions[index], position)
            if smaller is None:
                break
            candidate = [*actions[:index], smaller, *actions[index + 1 :]]
            found = replay(factory, pools, candidate)
            if (
                found is not None
                and found.rule_id == violation.rule_id
                and len(found.actions) == len(candidate)
            ):
                best, actions = found, candidate
            else:
                position += 1
        index += 1

    attempt(_resetting(_PAYLOAD_FIELDS))
    if not attempt(_resetting(_DEFAULT_FIELDS)):
        for name, plain in _DEFAULT_FIELDS.items():
            attempt(_resetting({name: plain}))

    instants: list[datetime] = []

    def collect_instants(value: Any) -> Any:
        if isinstance(value, datetime) and value.utcoffset() is not None:
            instants.append(value)
        return value

    _rewrite_all(actions, pools, collect_instants)
    order = sorted(set(instants))
    plain_instants = {
        instant: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rank)
        for rank, instant in enumerate(order)
    }
    attempt(lambda v: plain_instants.get(v, v) if isinstance(v, datetime) else v)

    taken: set[str] = set()
    for old in sorted(_ids_in(actions, pools), key=lambda i: (-len(i), i)):
        if len(old) <= 3 and old.isascii() and old.isalnum():
            taken.add(old)
            continue
        prefix = "s" if old in pools.sessions else "r" if old in pools.runs else "x"
        number = 1
        while f"{prefix}{number}" in taken or f"{prefix}{number}" in _ids_in(actions, pools):
            number += 1
        short = f"{prefix}{number}"
        if attempt(_renamer(old, short)):
            taken.add(short)
        else:
            taken.add(old)
    return best


def _resetting(plain_values: dict[str, Any]) -> Callable[[Any], Any]:
    """A change that sets these fields of every model that has them to the given values."""

    def reset(value: Any) -> Any:
        if isinstance(value, BaseModel):
            update = {
                name: plain
                for name, plain in plain_values.items()
                if name in type(value).model_fields and name in value.__dict__
            }
            return type(value).model_construct(**{**value.__dict__, **update})
        return value

    return reset


def _renamer(old: str, new: str) -> Callable[[Any], Any]:
    def rename(value: Any) -> Any:
        return new if isinstance(value, str) and value == old else value

    return rename


def _without_element(action: Action, position: int) -> Action | None:
    """``action`` with one event fewer in its batch or flushed result, or None if it has none."""
    operation, args, kwargs = action
    if not args:
        return None
    first = args[0]
    if operation is append_batch and isinstance(first, list) and position < len(first):
        return operation, (first[:position] + first[position + 1 :], *args[1:]), kwargs
    if operation is flush:
        parts = first.__dict__ if isinstance(first, ExecutionResult) else first
        if not isinstance(parts, dict):
            return None
        events = parts.get("events")
        if not isinstance(events, list) or position >= len(events):
            return None
        fewer = {**parts, "events": events[:position] + events[position + 1 :]}
        payload = type(first).model_construct(**fewer) if isinstance(first, BaseModel) else fewer
        result = args[1] if len(args) > 1 else None
        if isinstance(result, ExecutionResult):
            result = payload if isinstance(payload, ExecutionResult) else None
        return operation, (payload, result, *args[2:]), kwargs
    return None
