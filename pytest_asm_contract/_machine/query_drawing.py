"""What the QueryAPI machine draws: small pools of ids, agents, tags, instants, providers, models
and token values, so that ties, boundaries and collisions are common, and the filters, limits and
pricing tables of its queries."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from pytest_asm_contract._contract.model import EventType, RunStatus, Session, SessionStatus

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
INSTANTS = tuple(T0 + timedelta(seconds=s) for s in (0, 10, 20))
FILTER_INSTANTS = (*INSTANTS, T0 + timedelta(seconds=15))
SESSION_IDS = ("s1", "s2", "s3", "s4")
RUN_IDS = ("r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8")
AGENTS = ("a1", "a2")
PROVIDERS = ("p1", "p2")
SESSION_STATUSES = (SessionStatus.ACTIVE, SessionStatus.PAUSED, SessionStatus.COMPLETED)
RUN_STATUSES = (RunStatus.RUNNING, RunStatus.COMPLETED, RunStatus.FAILED)
EVENT_TYPES = (EventType.RUN_STARTED, EventType.MESSAGE_SENT, EventType.ERROR_OCCURRED)
TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "total_tokens",
)
#: Counted (ints >= 0) and not counted (section 4): bools, floats, negatives, strings, null.
TOKEN_VALUES = (100, 7, 0, 1000, -3, True, 2.5, 7.0, "9", None)
#: Model names nest like the pricing keys "m" and "m-1", so that exact, longest-prefix and
#: default rates all occur; "m-1-x", whose longest and shortest prefix keys differ, twice.
MODELS = ("m-1-x", "m-1", "m-1-x", "m-2", "o")

instants = st.sampled_from(INSTANTS)
filter_instants = st.sampled_from(FILTER_INSTANTS)

sessions = st.builds(
    Session,
    id=st.sampled_from(SESSION_IDS),
    agent_id=st.sampled_from(AGENTS),
    status=st.sampled_from(SESSION_STATUSES),
    tags=st.sampled_from((["x"], ["y", "x"], [], ["y"])),
    created_at=instants,
    updated_at=instants,
    deleted_at=st.one_of(st.none(), st.none(), st.none(), instants),
)
#: A run's fields but its session (the rule takes a stored one).
run_fields: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "id": st.sampled_from(RUN_IDS),
        "status": st.sampled_from(RUN_STATUSES),
        "provider": st.sampled_from((PROVIDERS[0], None, PROVIDERS[1])),
        "started_at": instants,
        "token_usage": st.dictionaries(
            st.sampled_from(TOKEN_KEYS), st.sampled_from(TOKEN_VALUES), min_size=1, max_size=4
        ),
        "cost_usd": st.sampled_from((None, None, None, 0.0, 0.25, 1.5)),
        "provider_metadata": st.sampled_from((*({"model": m} for m in MODELS), {})),
    }
)
#: An event's fields but its id and session (the rule gives fresh ids).
event_fields: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "type": st.sampled_from(EVENT_TYPES),
        "run_id": st.sampled_from((None, *RUN_IDS)),
        "timestamp": instants,
        "provider": st.sampled_from((None, *PROVIDERS)),
        "correlation_id": st.sampled_from((None, "c1", "c2")),
    }
)


def _one_or_any_of(values: Sequence[Any]) -> st.SearchStrategy[Any]:
    """One value (enum or string) or a non-empty list of them (any of)."""
    one = st.one_of(st.sampled_from(values), st.sampled_from([v.value for v in values]))
    return st.one_of(one, st.lists(one, min_size=1, max_size=2))


def _filters(**options: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """None, one or two of the filters, each count equally often (``one_of`` picks a branch
    uniformly, so the smaller groups repeat): more filters would rarely leave a match."""
    groups = [list(itertools.combinations(sorted(options), count)) for count in (0, 1, 2)]
    most = max(len(group) for group in groups)
    branches = [
        st.fixed_dictionaries({name: options[name] for name in names})
        for group in groups
        for names in group * (most // len(group))
    ]
    return st.one_of(branches)


def _some(values: Sequence[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)


session_filters = _filters(
    agent_id=st.sampled_from(AGENTS),
    status=_one_or_any_of(SESSION_STATUSES),
    provider=st.sampled_from(PROVIDERS),
    tags=st.sampled_from((["x", "y"], ["x"], ["y", "x"], ["y"])),
    created_after=filter_instants,
    created_before=filter_instants,
    include_deleted=st.booleans(),
)
run_filters = _filters(
    session_id=st.sampled_from(SESSION_IDS),
    provider=st.sampled_from(PROVIDERS),
    status=_one_or_any_of(RUN_STATUSES),
    started_after=filter_instants,
    started_before=filter_instants,
    min_tokens=st.sampled_from((0, 1, 7, 8, 100, 101)),
)
event_filters = _filters(
    session_ids=_some(SESSION_IDS),
    run_ids=_some(RUN_IDS),
    types=_one_or_any_of(EVENT_TYPES),
    providers=_some(PROVIDERS),
    since=filter_instants,
    until=filter_instants,
    correlation_id=st.sampled_from(("c1", "c2")),
)
usage_filters = _filters(
    session_id=st.sampled_from(SESSION_IDS),
    provider=st.sampled_from(PROVIDERS),
    since=filter_instants,
    until=filter_instants,
)
cost_filters = _filters(
    session_id=st.sampled_from(SESSION_IDS),
    agent_id=st.sampled_from(AGENTS),
    provider=st.sampled_from(PROVIDERS),
    since=filter_instants,
    until=filter_instants,
)


def _rates(*values: float) -> st.SearchStrategy[dict[str, float]]:
    rate = st.sampled_from(values)
    return st.fixed_dictionaries(
        {"input": rate, "output": rate}, optional={"cache_read": rate, "cache_creation": rate}
    )


#: A pricing table as the model reads it: ``{provider: {"models": {...}, "default": ...}}``.
#: The two model keys' rates never agree, so the key a run resolves to shows in its cost.
_provider_pricing = st.fixed_dictionaries(
    {"models": st.fixed_dictionaries({"m": _rates(0.5, 0.0), "m-1": _rates(1e-6, 3e-6)})},
    optional={"default": _rates(2e-6, 0.25)},
)
pricing_tables = st.fixed_dictionaries(
    {PROVIDERS[0]: _provider_pricing}, optional={PROVIDERS[1]: _provider_pricing}
)
limits = st.integers(min_value=1, max_value=4)


#: One write through the store's port: the method and its one argument.
Write = tuple[str, Any]
#: One query step: the machine's rule and its arguments.
Step = tuple[str, dict[str, Any]]


__all__ = [
    "SESSION_IDS",
    "Step",
    "Write",
    "cost_filters",
    "event_fields",
    "event_filters",
    "instants",
    "limits",
    "pricing_tables",
    "run_fields",
    "run_filters",
    "session_filters",
    "sessions",
    "usage_filters",
]
