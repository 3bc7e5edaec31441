"""What the machine draws: strategies for statuses, payloads and paging, and per-example
pools of ids and instants that make operations collide."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from pytest_asm_contract._contract.model import EventType, RunStatus, SessionStatus
from pytest_asm_contract.strategies import (
    ids,
    invalid_events,
    invalid_sessions,
    json_objects,
    near_misses,
    non_models,
    texts,
    timestamps,
)

FEW_TYPES: tuple[EventType, ...] = (
    EventType.MESSAGE_SENT,
    EventType.TOOL_CALL_STARTED,
    EventType.RUN_STARTED,
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Draw from one of the strategies with the given weights; shrinks towards the first.

    (``st.one_of`` cannot weight: it drops repeated branches.)
    """
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(table.__getitem__)


NOTHING = st.none()
#: A caller-supplied sequence_number (SEQ-3): from a range no counter reaches in one example, so a
#: store that kept it is told apart from one that merely numbered wrong.
SUPPLIED_SEQUENCE = weighted((3, NOTHING), (1, st.integers(100, 199)))
ONE_IN_SIX = st.integers(0, 5)
INITIAL_SESSIONS = st.integers(0, 3)
FINAL_RUN_STATUSES = st.sampled_from(
    [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT]
)
STATUS_FILTER_KIND = st.integers(0, 99)
ONE_IN_FOUR = st.integers(0, 3)
ID_STYLE = st.integers(0, 9)
#: Session statuses, weighted towards active and completed for the same reason.
SESSION_STATUSES = st.sampled_from(
    [
        SessionStatus.ACTIVE,
        SessionStatus.ACTIVE,
        SessionStatus.COMPLETED,
        SessionStatus.ACTIVE,
        SessionStatus.COMPLETED,
        SessionStatus.PENDING,
        SessionStatus.PAUSED,
        SessionStatus.FAILED,
        SessionStatus.CANCELLED,
    ]
)
HOSTILE_TAGS = st.lists(texts(max_size=6), max_size=3)
HOSTILE_OBJECT = json_objects(max_size=2)
OPTIONAL_OBJECT = st.one_of(st.none(), HOSTILE_OBJECT)
OPTIONAL_ID = st.one_of(st.none(), ids())
OPTIONAL_TEXT = st.one_of(st.none(), texts(max_size=8))
COSTS = st.one_of(st.none(), st.floats(0, 10))
TURNS = st.integers(0, 3)
EVENT_TYPES = st.sampled_from(FEW_TYPES)
_PLAIN_SESSION_EXTRAS: st.SearchStrategy[tuple[Any, Any, Any]] = st.just(([], {}, None))
#: Tags, context and parent of a session: plain five times in six, hostile otherwise.
SESSION_EXTRAS = weighted(
    (5, _PLAIN_SESSION_EXTRAS), (1, st.tuples(HOSTILE_TAGS, HOSTILE_OBJECT, OPTIONAL_ID))
)
_PLAIN_RUN_EXTRAS: st.SearchStrategy[tuple[Any, Any, Any]] = st.just((None, None, None))
#: Cost, input and provider of a run: plain five times in six, hostile otherwise.
RUN_EXTRAS = weighted((5, _PLAIN_RUN_EXTRAS), (1, st.tuples(COSTS, OPTIONAL_OBJECT, OPTIONAL_TEXT)))
#: Run statuses, weighted the way traffic is (mostly running and completed), so that a status
#: filter often matches several runs.
RUN_STATUSES = st.sampled_from(
    [
        RunStatus.RUNNING,
        RunStatus.COMPLETED,
        RunStatus.RUNNING,
        RunStatus.COMPLETED,
        RunStatus.RUNNING,
        RunStatus.PENDING,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.TIMEOUT,
    ]
)
_TINY_JSON = st.dictionaries(st.sampled_from(["k", "n"]), st.integers(0, 3), max_size=1)
_EMPTY_JSON: st.SearchStrategy[dict[str, Any]] = st.just({})
#: Mostly tiny JSON (cheap, and it shrinks to ``{}``), one time in six a hostile tree.
SMALL_JSON = weighted((3, _EMPTY_JSON), (2, _TINY_JSON), (1, json_objects()))
HOSTILE_ID = ids()
NON_MODELS = non_models()
INVALID_SESSIONS = invalid_sessions()
INVALID_EVENTS = invalid_events()
BAD_ELEMENTS = st.one_of(INVALID_EVENTS, NON_MODELS)


@dataclasses.dataclass
class Pools:
    """Small pools of ids and instants an example draws from, so operations collide often."""

    sessions: list[str]
    runs: list[str]
    agents: list[str]
    moments: list[datetime]


_SESSION_IDS = st.lists(
    st.one_of(st.sampled_from(["s1", "s2", "s3"]), ids()), min_size=3, max_size=3, unique=True
)
_RUN_IDS = st.lists(
    st.one_of(st.sampled_from(["r1", "r2", "r3"]), ids()), min_size=3, max_size=3, unique=True
)
_AGENT_IDS = st.one_of(
    st.lists(
        st.one_of(st.sampled_from(["agent-1", "agent-2"]), ids()),
        min_size=2,
        max_size=2,
        unique=True,
    ),
    # SQL LIKE wildcards: a store that filters agent_id with LIKE matches both of a pair (DATA-3).
    st.sampled_from([["agent_1", "agent-1"], ["agent%", "agent-1"], ["a%1", "agent-1"]]),
)
_MOMENTS = st.lists(timestamps(), min_size=3, max_size=3)


@st.composite
def pools(draw: st.DrawFn) -> Pools:
    """Pools for one example: mostly readable ids, sometimes hostile ones or a confusable pair."""
    session_ids = draw(_SESSION_IDS)
    if draw(st.integers(0, 3)) == 0:
        twin = draw(st.sampled_from(near_misses(session_ids[0])))
        if twin not in session_ids:
            session_ids[1] = twin
    return Pools(session_ids, draw(_RUN_IDS), draw(_AGENT_IDS), draw(_MOMENTS))


def _page_arguments() -> st.SearchStrategy[tuple[Any, Any]]:
    count = weighted((1, NOTHING), (2, st.integers(0, 3)))
    valid = st.tuples(count, count)
    invalid = st.sampled_from([-1, True, 1.5, "2"])
    return weighted((10, valid), (1, st.tuples(invalid, count)), (1, st.tuples(count, invalid)))


PAGE_ARGUMENTS = _page_arguments()
#: Whether a listing's offset lands inside what its filters match (three times in four).
INSIDE_OFFSET = st.integers(0, 3).map(bool)
