"""DATA: every field round-trips exactly (DATA-1), and ids are compared exactly (DATA-3).

DATA-2 (values a particular backend cannot hold) is backend-specific and checked elsewhere.

The module is longer than the kit's others on purpose: every DATA-1 round trip (each model's
fields, JSON payloads, timestamps across the range) goes through the one exact comparison at its
top, which sees what ``==`` does not (``True`` against ``1``, a lost UTC offset).
"""

from __future__ import annotations

import enum
import random
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import (
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
from pytest_asm_contract.suite._builders import (
    a_run,
    a_running_run,
    a_session,
    an_event,
    at,
    expect_error,
)

# -- timestamps across the range ---------------------------------------------------------------
#: The ends of the range, both sides of the epoch, the 32-bit seconds (2038) and 64-bit
#: nanoseconds (2262) overflows, a leap day, and a moment float seconds cannot keep.
FIXED_MOMENTS = (
    datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2024, 2, 29, 12, 0, 0, 7, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, 8, 654_321, tzinfo=UTC),
    datetime(2262, 4, 11, 23, 47, 16, 854_776, tzinfo=UTC),
    datetime(3000, 6, 15, 8, 30, 0, 123_457, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
)
#: How many more are drawn from the run's seed, uniformly over the range, microseconds included.
DRAWN_MOMENTS = 24


def _moments(seed: int) -> list[datetime]:
    rng = random.Random(f"DATA-1 moments {seed}")
    low, high = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    span = (high - low) // timedelta(microseconds=1)
    drawn = [low + timedelta(microseconds=rng.randrange(span)) for _ in range(DRAWN_MOMENTS)]
    return [*FIXED_MOMENTS, *drawn]


def _accepted(write: Callable[[Any], object], record: object, moment: datetime) -> bool:
    """Write ``record``; False when the store refused its moment, as DATA-2 allows."""
    try:
        write(record)
    except StoreError as error:
        assert error.code is ErrorCode.VALIDATION_ERROR, (
            f"writing a timestamp of {moment.isoformat()} raised {error.code.value}: "
            f"{error.message} (a value the backend cannot hold is a validation_error, DATA-2)"
        )
        return False
    return True


# -- exact comparison ---------------------------------------------------------------------------
def _differences(expected: object, actual: object, path: str) -> list[str]:
    """Where ``actual`` is not exactly ``expected``: types (bool/int/float), values, UTC offsets.

    JSON objects are compared without regard to key order; lists (and tags) keep their order.
    """
    if isinstance(expected, BaseModel):
        if type(actual) is not type(expected):
            return [f"{path}: expected type {type(expected).__name__}, got {type(actual).__name__}"]
        found: list[str] = []
        for name in type(expected).model_fields:
            found += _differences(getattr(expected, name), getattr(actual, name), f"{path}.{name}")
        return found
    if isinstance(expected, enum.Enum):
        return (
            [] if actual == expected else [f"{path}: expected {expected.value!r}, got {actual!r}"]
        )
    if isinstance(expected, datetime):
        if not isinstance(actual, datetime):
            return [f"{path}: expected a datetime, got {type(actual).__name__} {actual!r:.80}"]
        if actual.utcoffset() != timedelta(0):
            return [f"{path}: expected a UTC datetime, got {actual.isoformat()}"]
        if actual != expected:
            return [f"{path}: expected {expected.isoformat()}, got {actual.isoformat()}"]
        return []
    if type(actual) is not type(expected):
        return [
            f"{path}: expected {type(expected).__name__} {expected!r:.80}, "
            f"got {type(actual).__name__} {actual!r:.80}"
        ]
    if isinstance(expected, dict):
        assert isinstance(actual, dict)
        found = [f"{path}: key {key!r:.60} missing" for key in expected if key not in actual]
        found += [f"{path}: unexpected key {key!r:.60}" for key in actual if key not in expected]
        for key in expected:
            if key in actual:
                found += _differences(expected[key], actual[key], f"{path}[{key!r:.40}]")
        return found
    if isinstance(expected, list):
        assert isinstance(actual, list)
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}: {actual!r:.120}"]
        found = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found += _differences(want, got, f"{path}[{index}]")
        return found
    if expected != actual:
        return [f"{path}: expected {expected!r:.120}, got {actual!r:.120}"]
    return []


def _assert_exact(expected: BaseModel, actual: object, how: str) -> None:
    if isinstance(expected, Event) and isinstance(actual, Event):
        # DATA-1 is about what the caller wrote; the number the store assigns is SEQ-1's, checked
        # after this round trip.
        expected = expected.model_copy(update={"sequence_number": actual.sequence_number})
    found = _differences(expected, actual, type(expected).__name__)
    assert not found, f"read back through {how}, the record changed:\n  " + "\n  ".join(found[:12])


# -- payloads -----------------------------------------------------------------------------------
def _nested(levels: int) -> dict[str, Any]:
    value: Any = {"leaf": [1, "x", None, 0.5, True]}
    for level in range(levels):
        value = {f"level-{level}": value} if level % 2 else [value, level]
    return {"deep": value}


PAYLOADS: dict[str, dict[str, Any]] = {
    "nested-50-levels": _nested(50),
    "empty-containers": {
        "object": {},
        "list": [],
        "string": "",
        "nested": [[], {}, [[]], {"e": {}}, [{}]],
        "": "the empty key",
    },
    "unicode": {
        "emoji": "🚀 👩‍💻 🇺🇦 \U0001f600",
        "rtl": "שלום עולם مرحبا بالعالم",
        "bidi-marks": "abc\u200fdef\u202eghi",
        "cjk": "漢字かなカナ한국어",
        "combining": "e\u0301 vs \u00e9",
        "separators": "line\u2028paragraph\u2029end",
        "controls": "tab\tnewline\ncarriage\rbell\x07",
        "ключ-🔑": {"значение": "ünïcödé"},
    },
    "quotes-and-backslashes": {
        "quotes": "single ' double \" back `",
        "backslashes": "\\ \\\\ \\n \\u0000 C:\\path\\to",
        "json-text": '{"a": [1, "b"]}',
        "sql": "'; DROP TABLE events; --",
        "like": "100% of _all_ rows",
        'key with "quotes" and \\': "value",
    },
    "int-edges": {
        "min": INT64_MIN,
        "max": INT64_MAX,
        "min+1": INT64_MIN + 1,
        "max-1": INT64_MAX - 1,
        "2**53+1": 2**53 + 1,
        "-(2**53+1)": -(2**53 + 1),
        "zero": 0,
        "list": [INT64_MIN, -1, 0, 1, INT64_MAX],
    },
    "floats": {
        "tenth": 0.1,
        "third": 1 / 3,
        "one": 1.0,
        "negative": -2.5,
        "huge": 1e308,
        "max": 1.7976931348623157e308,
        "tiny": 5e-324,
        "smallest-normal": 2.2250738585072014e-308,
        "sum": [0.1, 0.2, 0.30000000000000004],
    },
    "bools-and-nulls": {
        "true": True,
        "false": False,
        "null": None,
        "ints-not-bools": [0, 1],
        "floats-not-ints": [0.0, 1.0, 2.0],
        "nulls": [None, [None], {"n": None}],
    },
}

#: Pairs of ids that differ only in what a careless store ignores or mangles.
ID_PAIRS: dict[str, tuple[str, str]] = {
    "case": ("Ses-Case", "ses-case"),
    "casefold": ("straße", "strasse"),
    "unicode-form": (unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")),
    "slash-backslash": ("dir/x", "dir\\x"),
    "url-encoding": ("enc/y", "enc%2Fy"),
    "path-traversal": ("../z", "z"),
    "dot-segment": ("a/./b", "a/b"),
    "prefix": ("pre", "pre/fix"),
    "quotes": ("q'1", 'q"1'),
    "percent": ("p%", "pq"),
    "underscore": ("u_1", "uv1"),
    "trailing-space": ("t ", "t"),
    "inner-space": ("s 1", "s1"),
    "long-255": ("x" * 254 + "1", "x" * 254 + "2"),
}

ALL_EVENT_TYPES = list(EventType)


def _save_sessions(store: Any, *session_ids: str) -> None:
    """Save the sessions that runs and events refer to (for referential_integrity stores)."""
    for session_id in session_ids:
        store.save_session(a_session(id=session_id))


class TestData:
    # -- DATA-1: sessions -----------------------------------------------------------------------
    @rule("DATA-1")
    def test_session_with_every_field_set_round_trips(self, asm_store: Any) -> None:
        session = a_session(
            id="ses-full",
            agent_id="agent-full",
            status=SessionStatus.PAUSED,
            parent_session_id="ses-parent",
            metadata={"owner": "team-a", "limits": {"turns": 10, "ratio": 0.75}},
            context={"history": [{"role": "user", "text": "hi"}], "flags": [True, False]},
            tags=["zeta", "alpha", "zeta", "Alpha", ""],
            created_at=at(0.000001),
            updated_at=at(59.999999),
            deleted_at=at(3600),
        )
        asm_store.save_session(session)

        _assert_exact(session, asm_store.get_session(session.id), "get_session")
        _assert_exact(session, asm_store.list_sessions()[0], "list_sessions")

    @rule("DATA-1")
    def test_session_with_optional_fields_unset_round_trips(self, asm_store: Any) -> None:
        session = a_session(created_at=at(1), updated_at=at(1))
        assert session.parent_session_id is None and session.deleted_at is None
        asm_store.save_session(session)

        _assert_exact(session, asm_store.get_session(session.id), "get_session")

    @rule("DATA-1")
    def test_tags_keep_their_order_and_duplicates(self, asm_store: Any) -> None:
        tags = ["b", "a", "b", "c", "a", "B", "🏷️", "b"]
        session = a_session(tags=tags)
        asm_store.save_session(session)

        assert asm_store.get_session(session.id).tags == tags, (
            "tags are a list: order and duplicates must be kept (not a set, not sorted)"
        )

    @rule("DATA-1")
    @pytest.mark.parametrize("status", list(SessionStatus), ids=[s.value for s in SessionStatus])
    def test_every_session_status_round_trips(self, asm_store: Any, status: SessionStatus) -> None:
        session = a_session(status=status)
        asm_store.save_session(session)

        assert asm_store.get_session(session.id).status == status

    # -- DATA-1: runs ---------------------------------------------------------------------------
    @rule("DATA-1")
    def test_run_with_every_field_set_round_trips(self, asm_store: Any) -> None:
        _save_sessions(asm_store, "ses-runs")
        run = a_run(
            "ses-runs",
            id="run-full",
            status=RunStatus.FAILED,
            input={"prompt": "hello", "files": ["a.txt"]},
            output={"answer": None, "partial": [1, 2]},
            error={"type": "Timeout", "message": "took too long", "retry": False},
            metadata={"attempt": 2},
            turn_count=7,
            token_usage={"input": 1200, "output": 345, "cached": 0},
            cost_usd=0.123456789,
            started_at=at(10.000001),
            ended_at=at(70.999999),
            provider="provider-x",
            provider_metadata={"model": "m-1", "region": "eu"},
        )
        asm_store.save_run(run)

        _assert_exact(run, asm_store.get_run(run.id), "get_run")
        _assert_exact(run, asm_store.list_runs("ses-runs")[0], "list_runs")

    @rule("DATA-1")
    def test_run_with_optional_fields_unset_round_trips(self, asm_store: Any) -> None:
        _save_sessions(asm_store, "ses-runs")
        run = a_running_run("ses-runs", started_at=at(5))
        assert (run.input, run.output, run.error, run.cost_usd, run.ended_at, run.provider) == (
            None,
            None,
            None,
            None,
            None,
            None,
        )
        asm_store.save_run(run)

        _assert_exact(run, asm_store.get_run(run.id), "get_run")
        _assert_exact(run, asm_store.get_active_run("ses-runs"), "get_active_run")

    @rule("DATA-1")
    def test_empty_objects_stay_distinct_from_none(self, asm_store: Any) -> None:
        _save_sessions(asm_store, "ses-runs")
        run = a_run("ses-runs", input={}, output=None, error={}, cost_usd=0.0)
        asm_store.save_run(run)

        _assert_exact(run, asm_store.get_run(run.id), "get_run")

    @rule("DATA-1")
    def test_run_counters_hold_64_bit_values(self, asm_store: Any) -> None:
        _save_sessions(asm_store, "ses-runs")
        run = a_run(
            "ses-runs",
            turn_count=INT64_MAX,
            token_usage={"input": INT64_MAX, "delta": INT64_MIN},
        )
        asm_store.save_run(run)

        _assert_exact(run, asm_store.get_run(run.id), "get_run")

    @rule("DATA-1")
    @pytest.mark.parametrize("status", list(RunStatus), ids=[s.value for s in RunStatus])
    def test_every_run_status_round_trips(self, asm_store: Any, status: RunStatus) -> None:
        _save_sessions(asm_store, "ses-runs")
        run = a_run("ses-runs", status=status)
        asm_store.save_run(run)

        assert asm_store.get_run(run.id).status == status

    # -- DATA-1: events -------------------------------------------------------------------------
    @rule("DATA-1")
    def test_event_with_every_field_set_round_trips(self, asm_store: Any) -> None:
        _save_sessions(asm_store, "ses-events")
        event = an_event(
            "ses-events",
            "run-events",
            EventType.TOOL_APPROVAL_DENIED,
            id="evt-full",
            timestamp=at(0.654321),
            data={"tool": "shell", "args": ["ls", "-la"], "approved": False},
            metadata={"source": "ui", "latency_ms": 12.5},
            schema_version=3,
            provider="provider-x",
            correlation_id="corr-123",
        )

        returned = asm_store.append_event_with_sequence(event)

        _assert_exact(event.with_sequence(1), returned, "the append_event_with_sequence result")
        _assert_exact(event.with_sequence(1), asm_store.get_events("ses-events")[0], "get_events")

    @rule("DATA-1")
    def test_event_with_optional_fields_unset_round_trips(self, asm_store: Any) -> None:
        _save_sessions(asm_store, "ses-events")
        event = an_event("ses-events", None, timestamp=at(1))
        assert (event.run_id, event.provider, event.correlation_id) == (None, None, None)

        asm_store.append_event(event)

        _assert_exact(event.with_sequence(1), asm_store.get_events("ses-events")[0], "get_events")

    @rule("DATA-1")
    def test_every_event_type_round_trips(self, asm_store: Any) -> None:
        _save_sessions(asm_store, "ses-events")
        events = [an_event("ses-events", type=event_type) for event_type in ALL_EVENT_TYPES]

        asm_store.append_events(events)

        assert [e.type for e in asm_store.get_events("ses-events")] == ALL_EVENT_TYPES

    @rule("DATA-1")
    def test_events_read_back_through_every_path_are_exact(self, asm_store: Any) -> None:
        session = a_session()
        run = a_run(session)
        batch = [an_event(session, run, data=PAYLOADS["floats"], timestamp=at(2.000002))]
        flushed = [an_event(session, run, data=PAYLOADS["int-edges"], timestamp=at(3.000003))]
        asm_store.save_session(session)

        returned = asm_store.append_events(batch)
        asm_store.flush(ExecutionResult(session=session, run=run, events=flushed))

        _assert_exact(batch[0].with_sequence(1), returned[0], "the append_events result")
        stored = asm_store.get_events(session.id)
        _assert_exact(batch[0].with_sequence(1), stored[0], "get_events after append_events")
        _assert_exact(flushed[0].with_sequence(2), stored[1], "get_events after flush")

    # -- DATA-1: JSON payloads and timestamps ---------------------------------------------------
    @rule("DATA-1")
    @pytest.mark.parametrize("payload", list(PAYLOADS))
    def test_json_payload_round_trips_in_every_model(self, asm_store: Any, payload: str) -> None:
        value = PAYLOADS[payload]
        session = a_session(metadata=value, context=value)
        run = a_run(session, input=value, output=value, error=value, metadata=value)
        run = run.model_copy(update={"token_usage": value, "provider_metadata": value})
        event = an_event(session, run, data=value, metadata=value)

        asm_store.save_session(session)
        asm_store.save_run(run)
        returned = asm_store.append_event_with_sequence(event)

        _assert_exact(session, asm_store.get_session(session.id), "get_session")
        _assert_exact(run, asm_store.get_run(run.id), "get_run")
        _assert_exact(event.with_sequence(1), returned, "the append_event_with_sequence result")
        _assert_exact(event.with_sequence(1), asm_store.get_events(session.id)[0], "get_events")

    @rule("DATA-1")
    @pytest.mark.parametrize("micros", [1, 999_999, 500_000, 10], ids=lambda m: f"{m}us")
    def test_timestamps_keep_microseconds(self, asm_store: Any, micros: int) -> None:
        moment = datetime(2026, 3, 4, 5, 6, 7, micros, tzinfo=UTC)
        session = a_session(created_at=moment, updated_at=moment, deleted_at=moment)
        run = a_run(session, started_at=moment, ended_at=moment)
        event = an_event(session, run, timestamp=moment)

        asm_store.save_session(session)
        asm_store.save_run(run)
        asm_store.append_event(event)

        _assert_exact(session, asm_store.get_session(session.id), "get_session")
        _assert_exact(run, asm_store.get_run(run.id), "get_run")
        _assert_exact(event.with_sequence(1), asm_store.get_events(session.id)[0], "get_events")

    @rule("DATA-1")
    def test_timestamps_across_the_whole_range_round_trip(
        self, asm_store: Any, asm_seed: int
    ) -> None:
        """Float seconds, milliseconds, 32-bit seconds or 64-bit nanoseconds each lose some of
        these; a backend that cannot hold one may refuse it (DATA-2), never alter it."""
        for number, moment in enumerate(_moments(asm_seed)):
            tag = f"{number}-{moment:%Y%m%d%H%M%S%f}"
            session = a_session(
                id=f"ses-moment-{tag}", created_at=moment, updated_at=moment, deleted_at=moment
            )
            run = a_run(session, id=f"run-moment-{tag}", started_at=moment, ended_at=moment)
            event = an_event(session, run, id=f"evt-moment-{tag}", timestamp=moment)
            if not _accepted(asm_store.save_session, session, moment):
                continue
            how = f"({moment.isoformat()})"
            _assert_exact(session, asm_store.get_session(session.id), f"get_session {how}")
            if _accepted(asm_store.save_run, run, moment):
                _assert_exact(run, asm_store.get_run(run.id), f"get_run {how}")
            if _accepted(asm_store.append_events, [event], moment):
                stored = asm_store.get_events(session.id)
                _assert_exact(event.with_sequence(1), stored[0], f"get_events {how}")

    @rule("DATA-1")
    def test_timestamps_from_other_time_zones_come_back_in_utc(self, asm_store: Any) -> None:
        india = timezone(timedelta(hours=5, minutes=30))
        pacific = timezone(timedelta(hours=-8))
        local = datetime(2026, 6, 1, 23, 45, 0, 123456, tzinfo=india)
        # Built without validation, so the store, not the model, must normalise them.
        session = Session.model_construct(
            **{**a_session().__dict__, "created_at": local, "updated_at": local}
        )
        run = Run.model_construct(
            **{**a_run(session.id).__dict__, "started_at": local.astimezone(pacific)}
        )
        event = Event.model_construct(
            **{**an_event(session.id).__dict__, "timestamp": local.astimezone(pacific)}
        )
        in_utc = local.astimezone(UTC)

        asm_store.save_session(session)
        asm_store.save_run(run)
        asm_store.append_event(event)

        for what, value in (
            ("Session.created_at", asm_store.get_session(session.id).created_at),
            ("Run.started_at", asm_store.get_run(run.id).started_at),
            ("Event.timestamp", asm_store.get_events(session.id)[0].timestamp),
        ):
            assert value == in_utc and value.utcoffset() == timedelta(0), (
                f"{what}: an aware {local.isoformat()} must come back as {in_utc.isoformat()} "
                f"(UTC), got {value!r}"
            )

    # -- DATA-3: ids are compared exactly -------------------------------------------------------
    @rule("DATA-3")
    @pytest.mark.parametrize(("one", "other"), ID_PAIRS.values(), ids=list(ID_PAIRS))
    def test_session_ids_never_collide(self, asm_store: Any, one: str, other: str) -> None:
        first = a_session(id=one, agent_id="agent-one")
        second = a_session(id=other, agent_id="agent-other")

        asm_store.save_session(first)
        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            asm_store.get_session(other)
        asm_store.save_session(second)
        assert asm_store.get_session(one) == first, f"{one!r} was overwritten by {other!r}"
        assert asm_store.get_session(other) == second
        assert len(asm_store.list_sessions()) == 2
        asm_store.delete_session(one)
        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            asm_store.get_session(one)
        assert asm_store.get_session(other) == second, f"deleting {one!r} removed {other!r}"

    @rule("DATA-3")
    @pytest.mark.parametrize(("one", "other"), ID_PAIRS.values(), ids=list(ID_PAIRS))
    def test_run_ids_never_collide(self, asm_store: Any, one: str, other: str) -> None:
        _save_sessions(asm_store, "ses-first", "ses-second")
        first = a_run("ses-first", id=one)
        second = a_run("ses-second", id=other)

        asm_store.save_run(first)
        with expect_error(ErrorCode.RUN_NOT_FOUND):
            asm_store.get_run(other)
        asm_store.save_run(second)
        assert asm_store.get_run(one) == first, f"{one!r} was overwritten by {other!r}"
        assert asm_store.get_run(other) == second
        asm_store.delete_session("ses-first")
        with expect_error(ErrorCode.RUN_NOT_FOUND):
            asm_store.get_run(one)
        assert asm_store.get_run(other) == second, f"deleting {one!r} removed {other!r}"

    @rule("DATA-3")
    @pytest.mark.parametrize(("one", "other"), ID_PAIRS.values(), ids=list(ID_PAIRS))
    def test_event_ids_never_collide(self, asm_store: Any, one: str, other: str) -> None:
        _save_sessions(asm_store, "ses-events")
        first = an_event("ses-events", id=one, data={"which": "one"})
        second = an_event("ses-events", id=other, data={"which": "other"})

        stored_first = asm_store.append_event_with_sequence(first)
        stored_second = asm_store.append_event_with_sequence(second)

        assert stored_second == second.with_sequence(2), (
            f"event id {other!r} was treated as a duplicate of {one!r}"
        )
        assert asm_store.get_events("ses-events") == [stored_first, stored_second]
        assert asm_store.append_event_with_sequence(first) == stored_first

    @rule("DATA-3")
    @pytest.mark.parametrize(("one", "other"), ID_PAIRS.values(), ids=list(ID_PAIRS))
    def test_session_scoped_reads_use_exact_ids(self, asm_store: Any, one: str, other: str) -> None:
        for session_id, count in ((one, 2), (other, 1)):
            asm_store.save_session(a_session(id=session_id))
            asm_store.save_run(a_running_run(session_id, id=f"run-of-{len(session_id)}-{count}"))
            asm_store.append_events([an_event(session_id) for _ in range(count)])

        for session_id, count in ((one, 2), (other, 1)):
            events = asm_store.get_events(session_id)
            assert [e.session_id for e in events] == [session_id] * count, (
                f"get_events({session_id!r}) returned events of another session"
            )
            assert asm_store.get_latest_sequence(session_id) == count
            runs = asm_store.list_runs(session_id)
            assert [r.session_id for r in runs] == [session_id]
            active = asm_store.get_active_run(session_id)
            assert active is not None and active.session_id == session_id

    @rule("DATA-3")
    def test_agent_and_run_filters_compare_exactly(self, asm_store: Any) -> None:
        _save_sessions(asm_store, "ses-events")
        ids = [value for pair in ID_PAIRS.values() for value in pair]
        for index, value in enumerate(ids):
            asm_store.save_session(a_session(id=f"ses-{index}", agent_id=value))
            asm_store.append_event(an_event("ses-events", value, data={"index": index}))

        for index, value in enumerate(ids):
            found = [s.id for s in asm_store.list_sessions(agent_id=value)]
            assert found == [f"ses-{index}"], f"list_sessions(agent_id={value!r}) gave {found}"
            events = asm_store.get_events("ses-events", run_id=value)
            assert [e.data["index"] for e in events] == [index], (
                f"get_events(run_id={value!r}) gave events of runs "
                f"{[e.run_id for e in events]!r:.200}"
            )


__all__ = ["TestData"]
