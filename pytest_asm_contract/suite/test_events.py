"""EVT: appending events and reading them back, filtered, in sequence order, unchanged."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.model import Event, EventType, Session
from pytest_asm_contract.suite._builders import (
    a_run,
    a_session,
    an_event,
    at,
    expect_error,
    ids_of,
    sequences,
    some_events,
    stored_view,
)

MSG = EventType.MESSAGE_SENT
TOOL = EventType.TOOL_CALL_STARTED


def _saved_session(store: Any) -> Session:
    session = a_session()
    store.save_session(session)
    return session


def _eight_events(store: Any) -> tuple[Session, list[Event]]:
    """A session with runs r1 and r2 and eight events, so that every filter removes some."""
    session = _saved_session(store)
    for run_id in ("r1", "r2"):
        store.save_run(a_run(session, id=run_id))
    layout = [
        ("r1", MSG, 1),
        ("r2", TOOL, 2),
        ("r1", TOOL, 3),
        (None, MSG, 4),
        ("r1", MSG, 5),
        ("r2", MSG, 6),
        ("r1", TOOL, 7),
        ("r1", MSG, 8),
    ]
    events = [
        an_event(session, run, type, timestamp=at(second), data={"n": second})
        for run, type, second in layout
    ]
    # One at a time: the filters are EVT-3's, the batch's return order is BATCH-1's.
    return session, [store.append_event_with_sequence(event) for event in events]


def _expected(
    stored: list[Event],
    *,
    run_id: str | None = None,
    type: EventType | None = None,
    since: datetime | None = None,
    after: int | None = None,
    before: int | None = None,
    limit: int | None = None,
) -> list[Event]:
    """What get_events must return from ``stored`` (in sequence order) for these filters."""
    found = [
        e
        for e in stored
        if (run_id is None or e.run_id == run_id)
        and (type is None or e.type == type)
        and (since is None or e.timestamp >= since)
        and (after is None or (e.sequence_number or 0) > after)
        and (before is None or (e.sequence_number or 0) < before)
    ]
    return found[:limit]


class TestEvents:
    # -- EVT-1: append_event ------------------------------------------------------------------
    @rule("EVT-1")
    def test_append_event_returns_none(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        result = asm_store.append_event(an_event(session))
        assert result is None, f"append_event must return None, got {result!r}"

    @rule("EVT-1")
    def test_append_event_stores_and_numbers_the_event(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        first = an_event(session, data={"k": [1, {"x": None}]}, metadata={"m": 1})
        asm_store.append_event(first)
        second = asm_store.append_event_with_sequence(an_event(session))
        assert asm_store.get_events(session.id) == [first.with_sequence(1), second]
        assert second.sequence_number == 2, (
            "append_event and append_event_with_sequence share one numbering"
        )

    @rule("IDEM-1", "EVT-1")
    def test_append_event_is_idempotent_like_append_with_sequence(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        event = an_event(session, data={"v": 1})
        asm_store.append_event(event)
        asm_store.append_event(event.model_copy(update={"data": {"v": 2}}))
        again = asm_store.append_event_with_sequence(event)
        assert again == event.with_sequence(1), (
            "an id stored by append_event must come back from append_event_with_sequence as "
            "stored, with its number"
        )
        assert asm_store.get_events(session.id) == [event.with_sequence(1)], (
            "append_event must not store an id twice"
        )

    @rule("EVT-1", capability="referential_integrity")
    def test_event_of_unknown_session_is_rejected(self, asm_store: Any) -> None:
        event = an_event("ses_never_saved")
        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            asm_store.append_event(event)
        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            asm_store.append_event_with_sequence(event)
        assert asm_store.get_events("ses_never_saved") == []
        assert asm_store.get_latest_sequence("ses_never_saved") == 0

    # -- EVT-2: order -------------------------------------------------------------------------
    @rule("EVT-2")
    def test_events_come_back_in_sequence_order(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        # Ids and timestamps both run against the order of appending.
        for index, event_id in enumerate(["evt-c", "evt-b", "evt-a"]):
            asm_store.append_event(an_event(session, id=event_id, timestamp=at(10 - index)))
        found = asm_store.get_events(session.id)
        assert ids_of(found) == ["evt-c", "evt-b", "evt-a"], (
            "get_events must order by sequence number, not by timestamp or id"
        )
        assert sequences(found) == [1, 2, 3]

    @rule("EVT-2")
    def test_events_read_back_equal_to_what_was_returned(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        # One call per event: what a batch returns is BATCH-1's, checked in test_batch.
        returned = [asm_store.append_event_with_sequence(e) for e in some_events(session, 3)]
        returned.append(asm_store.append_event_with_sequence(an_event(session)))
        assert asm_store.get_events(session.id) == returned

    @rule("EVT-2")
    def test_unknown_session_has_no_events(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        asm_store.append_events(some_events(session, 2))
        assert asm_store.get_events("ses_unknown") == []

    @rule("EVT-2")
    def test_events_of_other_sessions_are_not_returned(self, asm_store: Any) -> None:
        session, other = _saved_session(asm_store), _saved_session(asm_store)
        mine = asm_store.append_event_with_sequence(an_event(session))
        asm_store.append_events(some_events(other, 2))
        assert asm_store.get_events(session.id) == [mine]

    # -- EVT-3: filters -----------------------------------------------------------------------
    @rule("EVT-3")
    def test_run_id_filter(self, asm_store: Any) -> None:
        session, _ = _eight_events(asm_store)
        assert sequences(asm_store.get_events(session.id, run_id="r1")) == [1, 3, 5, 7, 8]
        assert sequences(asm_store.get_events(session.id, run_id="r2")) == [2, 6]
        assert asm_store.get_events(session.id, run_id="r-unknown") == []

    @rule("EVT-3")
    def test_type_filter_accepts_enum_and_string(self, asm_store: Any) -> None:
        session, _ = _eight_events(asm_store)
        assert sequences(asm_store.get_events(session.id, type=TOOL)) == [2, 3, 7]
        assert sequences(asm_store.get_events(session.id, type="tool_call_started")) == [2, 3, 7]
        assert sequences(asm_store.get_events(session.id, type="message_sent")) == [1, 4, 5, 6, 8]
        assert asm_store.get_events(session.id, type=EventType.POLICY_VIOLATION) == []

    @rule("EVT-3")
    def test_since_is_inclusive(self, asm_store: Any) -> None:
        session, _ = _eight_events(asm_store)
        assert sequences(asm_store.get_events(session.id, since=at(5))) == [5, 6, 7, 8], (
            "since keeps events whose timestamp is >= since (an event exactly at since included)"
        )
        just_after = at(5) + timedelta(microseconds=1)
        assert sequences(asm_store.get_events(session.id, since=just_after)) == [6, 7, 8]

    @rule("EVT-3")
    def test_since_compares_instants_across_time_zones(self, asm_store: Any) -> None:
        session, _ = _eight_events(asm_store)
        elsewhere = at(5).astimezone(timezone(timedelta(hours=5, minutes=30)))
        assert sequences(asm_store.get_events(session.id, since=elsewhere)) == [5, 6, 7, 8], (
            "since is an instant: the same moment in another time zone selects the same events"
        )

    @rule("EVT-3")
    def test_after_is_strict(self, asm_store: Any) -> None:
        session, _ = _eight_events(asm_store)
        assert sequences(asm_store.get_events(session.id, after=5)) == [6, 7, 8], (
            "after=n keeps sequence numbers > n"
        )
        assert sequences(asm_store.get_events(session.id, after=0)) == list(range(1, 9))
        assert asm_store.get_events(session.id, after=8) == []

    @rule("EVT-3")
    def test_before_is_strict(self, asm_store: Any) -> None:
        session, _ = _eight_events(asm_store)
        assert sequences(asm_store.get_events(session.id, before=3)) == [1, 2], (
            "before=n keeps sequence numbers < n"
        )
        assert asm_store.get_events(session.id, before=1) == []
        assert asm_store.get_events(session.id, before=0) == []

    @rule("EVT-3")
    def test_after_and_before_make_a_window(self, asm_store: Any) -> None:
        session, _ = _eight_events(asm_store)
        assert sequences(asm_store.get_events(session.id, after=2, before=6)) == [3, 4, 5]
        assert asm_store.get_events(session.id, after=4, before=5) == []

    @rule("EVT-3")
    def test_limit_applies_after_the_other_filters(self, asm_store: Any) -> None:
        session, _ = _eight_events(asm_store)

        def seqs(**filters: Any) -> list[int | None]:
            return sequences(asm_store.get_events(session.id, **filters))

        assert seqs(limit=3) == [1, 2, 3]
        assert seqs(type=TOOL, limit=2) == [2, 3], "limit counts only events that match"
        assert seqs(run_id="r2", limit=1) == [2]
        assert seqs(after=4, limit=2) == [5, 6]
        assert seqs(since=at(6), limit=2) == [6, 7]
        assert seqs(run_id="r1", type=MSG, after=1, limit=2) == [5, 8]
        assert seqs(limit=100) == list(range(1, 9))

    @rule("EVT-3")
    def test_limit_zero_gives_nothing(self, asm_store: Any) -> None:
        session, _ = _eight_events(asm_store)
        assert asm_store.get_events(session.id, limit=0) == [], "limit=0 means no events, not all"
        assert asm_store.get_events(session.id, run_id="r1", limit=0) == []

    @rule("EVT-3")
    def test_filters_combine_with_and(self, asm_store: Any) -> None:
        session, stored = _eight_events(asm_store)
        choices: dict[str, list[Any]] = {
            "run_id": [None, "r1"],
            "type": [None, MSG],
            "since": [None, at(2)],
            "after": [None, 3],
            "before": [None, 8],
            "limit": [None, 1],
        }
        wrong = []
        for values in itertools.product(*choices.values()):
            filters = {k: v for k, v in zip(choices, values, strict=True) if v is not None}
            got = asm_store.get_events(session.id, **filters)
            want = _expected(stored, **filters)
            if got != want:
                wrong.append(f"{filters}: got {sequences(got)}, want {sequences(want)}")
        assert not wrong, "filters must combine with AND:\n" + "\n".join(wrong)

    @rule("EVT-3")
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"limit": -1},
            {"after": -1},
            {"before": -1},
            {"type": "no_such_type"},
            {"since": datetime(2026, 1, 1, 12, 0, 0)},  # naive on purpose
        ],
        ids=["limit-negative", "after-negative", "before-negative", "type-unknown", "since-naive"],
    )
    def test_invalid_filters_raise_validation_error(
        self, asm_store: Any, kwargs: dict[str, Any]
    ) -> None:
        session = _saved_session(asm_store)
        asm_store.append_event(an_event(session, timestamp=at(0)))
        with expect_error(ErrorCode.VALIDATION_ERROR):
            asm_store.get_events(session.id, **kwargs)

    # -- EVT-4: stored events never change ----------------------------------------------------
    @rule("EVT-4")
    def test_mutating_a_read_event_does_not_change_the_store(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        event = an_event(session, data={"nested": {"items": [1, 2]}}, metadata={"m": "x"})
        asm_store.append_event(event)
        read = asm_store.get_events(session.id)[0]
        read.data["nested"]["items"].append(3)
        read.data["added"] = True
        read.metadata.clear()
        assert asm_store.get_events(session.id) == [event.with_sequence(1)], (
            "get_events must hand out copies: changing a returned event's dicts changed the store"
        )

    @rule("EVT-4")
    def test_mutating_an_appended_result_does_not_change_the_store(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        event = an_event(session, data={"nested": {"items": [1]}})
        returned = asm_store.append_event_with_sequence(event)
        returned.data["nested"]["items"].append(2)
        (batch_returned,) = asm_store.append_events([an_event(session, data={"k": [0]})])
        batch_returned.data["k"].append(1)
        found = asm_store.get_events(session.id)
        assert [e.data for e in found] == [{"nested": {"items": [1]}}, {"k": [0]}], (
            "the event an append returns must be a copy, not the stored object"
        )

    @rule("EVT-4")
    def test_mutating_the_input_after_append_does_not_change_the_store(
        self, asm_store: Any
    ) -> None:
        session = _saved_session(asm_store)
        single = an_event(session, data={"nested": {"items": [1]}})
        batch = [an_event(session, data={"k": [0]})]
        asm_store.append_event(single)
        asm_store.append_events(batch)
        single_data: Any = single.data  # the caller still holds the dicts it passed in
        batch_data: Any = batch[0].data
        single_data["nested"]["items"].append(2)
        batch_data["k"].append(1)
        single.metadata["late"] = True
        found = asm_store.get_events(session.id)
        assert [e.data for e in found] == [{"nested": {"items": [1]}}, {"k": [0]}], (
            "the store must keep its own copy of an appended event"
        )
        assert found[0].metadata == {}

    # First write wins (IDEM-1), so the stored event never changes (EVT-4).
    @rule("IDEM-1", "EVT-4")
    def test_reappending_an_id_does_not_overwrite_it(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        original = an_event(session, data={"v": "original"}, timestamp=at(1))
        asm_store.append_event(original)
        changed = original.model_copy(
            update={"data": {"v": "changed"}, "timestamp": at(2), "type": TOOL}
        )
        asm_store.append_event(changed)
        asm_store.append_event_with_sequence(changed)
        asm_store.append_events([changed])
        assert [stored_view(e) for e in asm_store.get_events(session.id)] == [original], (
            "a stored event never changes: re-appending its id with other content overwrote it"
        )


__all__ = ["TestEvents"]
