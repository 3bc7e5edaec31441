"""Hypothesis strategies for the port's data model, hostile values and invalid inputs.

These strategies are public: a store author can use them in their own property tests, and the
kit's state machine (:mod:`pytest_asm_contract._machine`) builds its workloads from them.

Valid values
    :func:`ids`, :func:`texts`, :func:`timestamps`, :func:`int64s`, :func:`json_values`,
    :func:`json_objects`, :func:`sessions`, :func:`runs`, :func:`events`,
    :func:`execution_results`. Every value they produce passes model validation, and the hostile
    ones (on by default) are exactly the values backends tend to mangle: Unicode in both NFC and
    NFD form, quotes, ``%`` and ``_`` (SQL ``LIKE`` wildcards), ``/`` (key and path separators),
    NUL characters, deep nesting, 64-bit edge integers, floats at the edge of their range,
    microsecond timestamps and non-UTC offsets.

Invalid values
    :func:`non_models`, :func:`invalid_events`, :func:`invalid_sessions`, :func:`invalid_runs`,
    :func:`invalid_json_values`, :func:`invalid_batches` and :func:`mismatched_flush_payloads`
    produce inputs a store must reject (contract rules BATCH-3, FLUSH-2, PORT-3). Invalid models are
    built with ``Model.model_construct``, which skips validation, so they reach the store as
    instances of the right class with wrong contents.

Strategies never use the clock or random ids: every field is drawn, so an example replays exactly
from its seed.

The module is longer than the kit's others on purpose: it is one public import path
(``from pytest_asm_contract.strategies import ...``), and valid and invalid values are built from
the same pieces.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from pytest_asm_contract._contract.model import (
    ID_MAX_LENGTH,
    INT64_MAX,
    INT64_MIN,
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)

__all__ = [
    "FLOAT_EDGES",
    "HOSTILE_FRAGMENTS",
    "INT64_EDGES",
    "NFC_NFD_PAIRS",
    "OFFSETS",
    "deep_json",
    "events",
    "execution_results",
    "floats",
    "hostile_texts",
    "ids",
    "int64s",
    "invalid_batches",
    "invalid_events",
    "invalid_json_values",
    "invalid_runs",
    "invalid_sessions",
    "json_objects",
    "json_scalars",
    "json_values",
    "mismatched_flush_payloads",
    "near_misses",
    "non_models",
    "runs",
    "sessions",
    "texts",
    "timestamps",
]

#: Pairs of strings that look the same but differ: NFC (composed) first, NFD (decomposed) second.
NFC_NFD_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (unicodedata.normalize("NFC", s), unicodedata.normalize("NFD", s))
    for s in ("\u00e9", "\u00c5ngstr\u00f6m", "\u1e69", "\uac00", "na\u00efve")
)

#: Fragments that break naive backends: quotes, LIKE wildcards, separators, NUL, odd Unicode.
HOSTILE_FRAGMENTS: tuple[str, ...] = (
    "'",
    '"',
    "`",
    "%",
    "_",
    "/",
    "\\",
    "..",
    "\x00",
    " ",
    "\t",
    "\n",
    "--",
    ";",
    "*",
    "?",
    "$",
    "{}",
    "\u00e9",
    "e\u0301",
    "\u03a3",
    "\u03c2",
    "\u00df",
    "\u0130",
    "\U0001f600",
    "\u202e",
    "\ufeff",
    "\uffff",
)

#: Integers where 32-bit, 53-bit (float-exact) and 64-bit representations break.
INT64_EDGES: tuple[int, ...] = (
    INT64_MIN,
    INT64_MIN + 1,
    -(2**53) - 1,
    -(2**31) - 1,
    -1,
    0,
    1,
    2**31 - 1,
    2**31,
    2**32,
    2**53,
    2**53 + 1,
    INT64_MAX - 1,
    INT64_MAX,
)

#: Finite floats that lose their value or their type through a careless encoding.
FLOAT_EDGES: tuple[float, ...] = (
    0.0,
    -0.0,
    0.1,
    1.0,
    -2.5,
    1e16,
    2.0**53 + 2,
    1e300,
    -1e300,
    1e-300,
    5e-324,
    1.7976931348623157e308,
)

#: UTC offsets for timestamps, including half- and quarter-hour zones and the extremes.
OFFSETS: tuple[timezone, ...] = (
    UTC,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=5, minutes=45)),
    timezone(timedelta(hours=-8)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
    timezone(timedelta(hours=-3, minutes=-30)),
)


_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def hostile_texts(
    *, min_size: int = 0, max_size: int = 24, nul: bool = True
) -> SearchStrategy[str]:
    """Strings assembled from :data:`HOSTILE_FRAGMENTS` and arbitrary text.

    ``nul=False`` leaves out NUL characters (which some backends may reject, contract DATA-2).
    """
    fragments = [f for f in HOSTILE_FRAGMENTS if nul or "\x00" not in f]
    piece = st.one_of(st.sampled_from(fragments), st.text(max_size=4))
    text = st.lists(piece, min_size=1 if min_size else 0, max_size=6).map("".join)
    if not nul:
        text = text.map(lambda s: s.replace("\x00", ""))
    return text.filter(lambda s: min_size <= len(s) <= max_size)


def texts(*, max_size: int = 24, hostile: bool = True, nul: bool = True) -> SearchStrategy[str]:
    """Free text: plain ASCII words, arbitrary Unicode and (``hostile=True``) hostile strings."""
    plain = st.text(_ID_ALPHABET + "ABCXYZ ", max_size=12)
    options = [plain, st.text(max_size=max_size)]
    if hostile:
        options.append(hostile_texts(max_size=max_size, nul=nul))
    strategy = st.one_of(options)
    if not nul:
        strategy = strategy.map(lambda s: s.replace("\x00", ""))
    return strategy


def ids(*, prefix: str = "", hostile: bool = True, nul: bool = True) -> SearchStrategy[str]:
    """Ids: any non-empty string of at most 255 characters (contract section 1).

    Mostly short ASCII ids (``prefix`` plus a few characters); with ``hostile=True`` also ids
    full of quotes, wildcards, separators and Unicode, ids of exactly 255 characters, and both
    forms of an NFC/NFD pair. ``nul=False`` leaves out NUL characters.
    """
    simple = st.text(_ID_ALPHABET, min_size=1, max_size=8).map(lambda s: prefix + s)
    if not hostile:
        return simple
    hostile_ids = hostile_texts(min_size=1, max_size=40, nul=nul).map(lambda s: prefix + s)
    long_ids = st.sampled_from("xX\u00e9%_/").map(
        lambda c: (prefix + c * ID_MAX_LENGTH)[:ID_MAX_LENGTH]
    )
    unicode_pairs = st.sampled_from([form for pair in NFC_NFD_PAIRS for form in pair]).map(
        lambda s: prefix + s
    )
    return st.one_of(simple, hostile_ids, unicode_pairs, long_ids).filter(
        lambda s: 0 < len(s) <= ID_MAX_LENGTH
    )


def near_misses(value: str) -> list[str]:
    """Ids a careless backend confuses with ``value`` but the contract keeps apart (DATA-3).

    Case changes, the other Unicode normalisation form, ``_`` and ``%`` (LIKE wildcards) in place
    of a character, surrounding whitespace, a leading ``/`` and an added quote. Every result is a
    valid id different from ``value``.
    """
    candidates = [
        value.swapcase(),
        value.upper(),
        unicodedata.normalize("NFD", value),
        unicodedata.normalize("NFC", value),
        value[:-1] + "_" if len(value) > 1 else value + "_",
        value[:-1] + "%" if len(value) > 1 else "%",
        value + " ",
        "/" + value,
        value + "'",
    ]
    seen: list[str] = []
    for candidate in candidates:
        if candidate != value and 0 < len(candidate) <= ID_MAX_LENGTH and candidate not in seen:
            seen.append(candidate)
    return seen


def timestamps(
    *, min_year: int = 2000, max_year: int = 2099, offsets: bool = True
) -> SearchStrategy[datetime]:
    """Timezone-aware datetimes with microseconds; with ``offsets=True`` in non-UTC zones too.

    The model normalises them to UTC; a store must keep the instant to the microsecond (DATA-1).
    """
    zones = st.sampled_from(OFFSETS) if offsets else st.just(UTC)
    return st.datetimes(
        min_value=datetime(min_year, 1, 1, 0, 0, 0),
        max_value=datetime(max_year, 12, 31, 23, 59, 59, 999999),
        timezones=zones,
    ).map(lambda t: t.replace(fold=0))  # fold means nothing at a fixed offset


def int64s() -> SearchStrategy[int]:
    """Integers in the signed 64-bit range, with the edges of :data:`INT64_EDGES` drawn often."""
    return st.one_of(st.sampled_from(INT64_EDGES), st.integers(INT64_MIN, INT64_MAX))


def floats() -> SearchStrategy[float]:
    """Finite floats, with the edges of :data:`FLOAT_EDGES` drawn often."""
    return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(allow_nan=False, allow_infinity=False))


def json_scalars(*, hostile: bool = True, nul: bool = True) -> SearchStrategy[Any]:
    """``None``, booleans, 64-bit ints, finite floats and strings."""
    return st.one_of(
        st.none(),
        st.booleans(),
        int64s(),
        floats(),
        texts(max_size=16, hostile=hostile, nul=nul),
    )


def _keys(hostile: bool, nul: bool) -> SearchStrategy[str]:
    return texts(max_size=10, hostile=hostile, nul=nul)


def json_values(
    *, max_leaves: int = 8, hostile: bool = True, nul: bool = True
) -> SearchStrategy[Any]:
    """JSON trees: scalars, lists and string-keyed dicts (contract section 1)."""
    return st.recursive(
        json_scalars(hostile=hostile, nul=nul),
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(_keys(hostile, nul), children, max_size=3),
        ),
        max_leaves=max_leaves,
    )


def deep_json(*, min_depth: int = 16, max_depth: int = 48) -> SearchStrategy[Any]:
    """A JSON tree ``min_depth`` to ``max_depth`` levels deep, lists and dicts alternating."""

    def nest(args: tuple[int, Any]) -> Any:
        depth, leaf = args
        value = leaf
        for level in range(depth):
            value = [value] if level % 2 else {"d": value}
        return value

    return st.tuples(st.integers(min_depth, max_depth), json_scalars(nul=False)).map(nest)


def json_objects(
    *, max_size: int = 3, max_leaves: int = 6, hostile: bool = True, nul: bool = True
) -> SearchStrategy[dict[str, Any]]:
    """JSON objects (the type of metadata, data, context and the like), occasionally deep."""
    values = json_values(max_leaves=max_leaves, hostile=hostile, nul=nul)
    if hostile:
        values = _sometimes(deep_json(), values, one_in=8)
    return st.dictionaries(_keys(hostile, nul), values, max_size=max_size)


def _sometimes(
    rare: SearchStrategy[Any], usual: SearchStrategy[Any], one_in: int
) -> SearchStrategy[Any]:
    """``rare`` one time in ``one_in``, ``usual`` otherwise (shrinking towards ``usual``)."""
    return st.integers(0, one_in - 1).flatmap(lambda n: rare if n == one_in - 1 else usual)


def _or_strategy(value: Any, default: SearchStrategy[Any]) -> SearchStrategy[Any]:
    if value is None:
        return default
    if isinstance(value, SearchStrategy):
        return value
    return st.just(value)


StrategyOr = Any  # a value or a strategy for one


def sessions(
    *,
    id: StrategyOr = None,
    agent_id: StrategyOr = None,
    status: StrategyOr = None,
    created_at: StrategyOr = None,
    updated_at: StrategyOr = None,
    deleted_at: StrategyOr = None,
    metadata: StrategyOr = None,
    hostile: bool = True,
) -> SearchStrategy[Session]:
    """Valid sessions. Each keyword takes a fixed value or a strategy to draw it from."""
    return st.builds(
        Session,
        id=_or_strategy(id, ids(prefix="ses_", hostile=hostile)),
        agent_id=_or_strategy(agent_id, ids(prefix="agent-", hostile=hostile)),
        status=_or_strategy(status, st.sampled_from(SessionStatus)),
        parent_session_id=st.one_of(st.none(), ids(prefix="ses_", hostile=hostile)),
        metadata=_or_strategy(metadata, json_objects(hostile=hostile)),
        context=json_objects(hostile=hostile, max_size=2),
        tags=st.lists(texts(max_size=8, hostile=hostile), max_size=4),
        created_at=_or_strategy(created_at, timestamps()),
        updated_at=_or_strategy(updated_at, timestamps()),
        deleted_at=_or_strategy(deleted_at, st.one_of(st.none(), timestamps())),
    )


def runs(
    *,
    session_id: StrategyOr = None,
    id: StrategyOr = None,
    status: StrategyOr = None,
    started_at: StrategyOr = None,
    hostile: bool = True,
) -> SearchStrategy[Run]:
    """Valid runs. Each keyword takes a fixed value or a strategy to draw it from."""
    optional_objects = st.one_of(st.none(), json_objects(hostile=hostile, max_size=2))
    return st.builds(
        Run,
        id=_or_strategy(id, ids(prefix="run_", hostile=hostile)),
        session_id=_or_strategy(session_id, ids(prefix="ses_", hostile=hostile)),
        status=_or_strategy(status, st.sampled_from(RunStatus)),
        input=optional_objects,
        output=optional_objects,
        error=optional_objects,
        metadata=json_objects(hostile=hostile, max_size=2),
        turn_count=st.one_of(st.integers(0, 50), st.just(INT64_MAX)),
        token_usage=st.dictionaries(
            st.sampled_from(["input", "output", "total"]), int64s(), max_size=3
        ),
        cost_usd=st.one_of(st.none(), floats()),
        started_at=_or_strategy(started_at, timestamps()),
        ended_at=st.one_of(st.none(), timestamps()),
        provider=st.one_of(st.none(), texts(max_size=12, hostile=hostile)),
        provider_metadata=json_objects(hostile=hostile, max_size=2),
    )


def events(
    *,
    session_id: StrategyOr = None,
    run_id: StrategyOr = None,
    id: StrategyOr = None,
    type: StrategyOr = None,
    timestamp: StrategyOr = None,
    data: StrategyOr = None,
    sequence_number: StrategyOr = None,
    hostile: bool = True,
) -> SearchStrategy[Event]:
    """Valid events, sometimes carrying a caller-supplied ``sequence_number`` (SEQ-3)."""
    return st.builds(
        Event,
        id=_or_strategy(id, ids(prefix="evt_", hostile=hostile)),
        type=_or_strategy(type, st.sampled_from(EventType)),
        timestamp=_or_strategy(timestamp, timestamps()),
        session_id=_or_strategy(session_id, ids(prefix="ses_", hostile=hostile)),
        run_id=_or_strategy(run_id, st.one_of(st.none(), ids(prefix="run_", hostile=hostile))),
        data=_or_strategy(data, json_objects(hostile=hostile)),
        metadata=json_objects(hostile=hostile, max_size=2),
        sequence_number=_or_strategy(
            sequence_number, st.one_of(st.none(), st.integers(1, 5), st.just(INT64_MAX))
        ),
        schema_version=st.one_of(st.just(1), st.integers(1, 3), st.just(INT64_MAX)),
        provider=st.one_of(st.none(), texts(max_size=12, hostile=hostile)),
        correlation_id=st.one_of(st.none(), ids(hostile=hostile)),
    )


_RUN_MARK = "\x00run"  # placeholder for "this result's run id" while linking events


def _link(
    session: Session, run: Run, events_: list[Event], metadata: dict[str, Any]
) -> ExecutionResult:
    linked_run = run.model_copy(update={"session_id": session.id})
    linked = [
        e.model_copy(
            update={
                "session_id": session.id,
                "run_id": linked_run.id if e.run_id == _RUN_MARK else None,
            }
        )
        for e in events_
    ]
    return ExecutionResult(
        session=session, run=linked_run, events=linked, provider_metadata=metadata
    )


def execution_results(
    *,
    session: StrategyOr = None,
    run: StrategyOr = None,
    max_events: int = 4,
    hostile: bool = True,
) -> SearchStrategy[ExecutionResult]:
    """Valid flush payloads: a session, one of its runs, and events of that session and run.

    ``session`` and ``run`` take a fixed model or a strategy; the run is attached to the session,
    and each event to the session and to the run or no run.
    """
    return st.builds(
        _link,
        _or_strategy(session, sessions(hostile=hostile)),
        _or_strategy(run, runs(hostile=hostile)),
        st.lists(
            events(run_id=st.sampled_from([None, _RUN_MARK]), hostile=hostile),
            max_size=max_events,
            unique_by=lambda e: e.id,
        ),
        json_objects(hostile=hostile, max_size=1),
    )


# -- invalid inputs ------------------------------------------------------------------------------
def non_models() -> SearchStrategy[Any]:
    """Values that are not models at all: what a confused caller passes instead of one."""
    return st.sampled_from(
        [None, 0, 42, -1.5, True, "event", "", b"bytes", [], {}, {"id": "x"}, ("a", "b")]
    )


def invalid_json_values() -> SearchStrategy[Any]:
    """Values that are not JSON trees: NaN, infinities, ints beyond 64 bits, non-str keys, bytes,
    sets (an array with no order)."""
    return st.sampled_from(
        [
            float("nan"),
            float("inf"),
            float("-inf"),
            INT64_MAX + 1,
            INT64_MIN - 1,
            2**80,
            {1: "int key"},
            b"raw bytes",
            {"nested": [float("nan")]},
            {"deep": {"key": {2: "x"}}},
            {"unordered": {"b", "a"}},
        ]
    )


_BAD_EVENT_FIELDS: tuple[tuple[str, Any], ...] = (
    ("type", "bogus_type"),
    ("type", ""),
    ("type", None),
    ("session_id", ""),
    ("session_id", None),
    ("session_id", 42),
    ("id", ""),
    ("id", "x" * (ID_MAX_LENGTH + 1)),
    ("timestamp", datetime(2026, 1, 1, 12, 0, 0)),
    ("timestamp", "yesterday"),
    ("sequence_number", 0),
    ("sequence_number", -1),
    ("schema_version", 0),
    ("run_id", ""),
    ("provider", 7),
)


def _corrupt(model: type[Any]) -> Any:
    def build(args: tuple[Any, tuple[str, Any]]) -> Any:
        valid, (name, value) = args
        return model.model_construct(**{**valid.__dict__, name: value})

    return build


def invalid_events(*, session_id: StrategyOr = None) -> SearchStrategy[Event]:
    """``Event.model_construct`` instances with exactly one bad field (BATCH-3, FLUSH-2).

    The bad field is one of a naive timestamp, an unknown type, an empty or over-long id, a
    sequence number or schema version below 1, or JSON data that is not a JSON tree.
    """
    bad_json = st.tuples(
        st.sampled_from(["data", "metadata"]), invalid_json_values().map(lambda v: {"bad": v})
    )
    corruption = st.one_of(st.sampled_from(_BAD_EVENT_FIELDS), bad_json)
    return st.tuples(events(session_id=session_id, hostile=False), corruption).map(_corrupt(Event))


_BAD_SESSION_FIELDS: tuple[tuple[str, Any], ...] = (
    ("agent_id", ""),
    ("status", "sleeping"),
    ("created_at", datetime(2026, 1, 1)),
    ("tags", ["ok", 3]),
    ("metadata", {"bad": float("nan")}),
    ("id", ""),
)

_BAD_RUN_FIELDS: tuple[tuple[str, Any], ...] = (
    ("status", "sleeping"),
    ("turn_count", -1),
    ("cost_usd", float("inf")),
    ("started_at", datetime(2026, 1, 1)),
    ("session_id", ""),
    ("input", {"bad": INT64_MAX + 1}),
)


def invalid_sessions(*, id: StrategyOr = None) -> SearchStrategy[Session]:
    """``Session.model_construct`` instances with one bad field."""
    return st.tuples(sessions(id=id, hostile=False), st.sampled_from(_BAD_SESSION_FIELDS)).map(
        _corrupt(Session)
    )


def invalid_runs(*, session_id: StrategyOr = None) -> SearchStrategy[Run]:
    """``Run.model_construct`` instances with one bad field."""
    return st.tuples(
        runs(session_id=session_id, hostile=False), st.sampled_from(_BAD_RUN_FIELDS)
    ).map(_corrupt(Run))


def invalid_batches(*, valid: Sequence[Event] | None = None) -> SearchStrategy[Any]:
    """Inputs ``append_events`` must reject whole (BATCH-3).

    Either not a list of events at all, or a list (of ``valid`` events, or drawn ones) with one
    invalid element, an invalid event or a non-model, at a random position.
    """
    not_a_list = st.sampled_from([None, "abc", b"xy", {"id": "x"}, 42])
    elements = (
        st.just(list(valid)) if valid is not None else st.lists(events(hostile=False), max_size=3)
    )
    bad = st.one_of(invalid_events(), non_models())

    def insert(args: tuple[list[Any], Any, int]) -> list[Any]:
        items, element, position = args
        return [
            *items[: position % (len(items) + 1)],
            element,
            *items[position % (len(items) + 1) :],
        ]

    with_bad_element = st.tuples(elements, bad, st.integers(0, 3)).map(insert)
    return _sometimes(not_a_list, with_bad_element, one_in=5)


_MISMATCH_KINDS = ("run-session", "event-session", "event-run")


def _mismatch(args: tuple[ExecutionResult, str, str, str, Event, int]) -> ExecutionResult:
    result, kind, other_session, other_run, stray, position = args
    session, run = result.session, result.run
    other_session = other_session if other_session != session.id else session.id + "-other"
    other_run = other_run if other_run != run.id else run.id + "-other"
    if kind == "run-session":
        return result.model_copy(
            update={"run": run.model_copy(update={"session_id": other_session})}
        )
    if kind == "event-session":
        stray = stray.model_copy(update={"session_id": other_session, "run_id": None})
    else:
        stray = stray.model_copy(update={"session_id": session.id, "run_id": other_run})
    at = position % (len(result.events) + 1)
    return result.model_copy(update={"events": [*result.events[:at], stray, *result.events[at:]]})


def mismatched_flush_payloads() -> SearchStrategy[ExecutionResult]:
    """Well-formed ExecutionResults whose parts do not belong together (FLUSH-2).

    One of: the run belongs to another session; an event belongs to another session; an event
    belongs to another run. The first two must raise session_mismatch, the last run_mismatch.
    """
    return st.tuples(
        execution_results(hostile=False),
        st.sampled_from(_MISMATCH_KINDS),
        ids(prefix="ses_", hostile=False),
        ids(prefix="run_", hostile=False),
        events(hostile=False),
        st.integers(0, 4),
    ).map(_mismatch)
