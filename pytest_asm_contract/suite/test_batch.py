"""BATCH: append_events returns one stored event per input, atomically and without interleaving."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.threads import run_indexed
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.model import Event, EventType, Session
from pytest_asm_contract.suite._builders import (
    a_session,
    an_event,
    expect_error,
    in_number_order,
    sequences,
    some_events,
    stored_view,
)


def _unchecked_event(**fields: Any) -> Event:
    """An Event built without validation (``model_construct``), as a buggy caller might."""
    return Event.model_construct(**fields)


def _invalid_element(kind: str, session: Session) -> object:
    """Something a caller might pass in a batch that is not a valid Event."""
    if kind == "dict":
        return {"type": "message_sent", "session_id": session.id}
    if kind == "None":
        return None
    if kind == "unknown-type":
        return _unchecked_event(type="no_such_type", session_id=session.id)
    if kind == "empty-session-id":
        return _unchecked_event(type=EventType.MESSAGE_SENT, session_id="")
    if kind == "naive-timestamp":
        return _unchecked_event(
            type=EventType.MESSAGE_SENT, session_id=session.id, timestamp=datetime(2026, 1, 1)
        )
    raise AssertionError(f"unknown invalid element kind {kind!r}")


INVALID_KINDS = ["dict", "None", "unknown-type", "empty-session-id", "naive-timestamp"]
POSITIONS = {"first": 0, "middle": 2, "last": 4}


def _blocks(numbers: list[int]) -> list[list[int]]:
    """``numbers`` cut into runs of consecutive integers."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs


class TestBatch:
    @rule("BATCH-1")
    def test_returns_one_event_per_input_in_input_order(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        batch = [an_event(session, id=event_id) for event_id in ("evt-c", "evt-a", "evt-b")]

        returned = asm_store.append_events(batch)

        assert [e.id for e in returned] == ["evt-c", "evt-a", "evt-b"], (
            "append_events must return the events in input order (not sorted by id or time)"
        )
        assert sequences(returned) == [1, 2, 3], "a new session's batch is numbered 1, 2, 3"
        assert [stored_view(e) for e in returned] == batch, "returned events differ from the input"
        assert asm_store.get_events(session.id) == returned, "stored events differ from returned"

    @rule("BATCH-1")
    def test_new_events_continue_the_session_numbering(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        asm_store.append_events(some_events(session, 2))

        returned = asm_store.append_events(some_events(session, 3))

        assert sequences(returned) == [3, 4, 5], (
            "a batch's new events get consecutive numbers after the session's highest, in order"
        )
        assert asm_store.get_latest_sequence(session.id) == 5

    @rule("BATCH-1")
    def test_duplicates_map_to_the_stored_events(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        earlier = asm_store.append_event_with_sequence(an_event(session, id="evt-earlier"))
        fresh = an_event(session, id="evt-fresh", data={"copy": "first"})
        batch = [
            an_event(session, id="evt-earlier", data={"copy": "retry"}),
            fresh,
            an_event(session, id="evt-fresh", data={"copy": "second"}),
            an_event(session, id="evt-last"),
        ]

        returned = asm_store.append_events(batch)

        assert len(returned) == 4, "one returned event per input element, duplicates included"
        assert returned[0] == earlier, "an id already stored returns the stored event"
        assert returned[1] == fresh.with_sequence(2)
        assert returned[2] == returned[1], "a repeated id returns its first occurrence's event"
        assert returned[3].id == "evt-last" and returned[3].sequence_number == 3, (
            "duplicates consume no number: the next new event gets 3"
        )
        assert sequences(asm_store.get_events(session.id)) == [1, 2, 3]

    @rule("BATCH-2")
    def test_empty_batch_returns_empty_list(self, asm_store: Any) -> None:
        assert asm_store.append_events([]) == []

    @rule("BATCH-2")
    def test_empty_batch_changes_nothing(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        before = in_number_order(asm_store.append_events(some_events(session, 2)))

        assert asm_store.append_events([]) == []

        assert asm_store.get_events(session.id) == before
        assert asm_store.get_latest_sequence(session.id) == 2
        assert asm_store.append_event_with_sequence(an_event(session)).sequence_number == 3

    @rule("BATCH-3")
    @pytest.mark.parametrize("position", list(POSITIONS))
    @pytest.mark.parametrize("kind", INVALID_KINDS)
    def test_invalid_element_rejects_the_whole_batch(
        self, asm_store: Any, kind: str, position: str
    ) -> None:
        session = a_session()
        asm_store.save_session(session)
        before = in_number_order(asm_store.append_events(some_events(session, 2)))
        batch: list[object] = list(some_events(session, 4))
        batch.insert(POSITIONS[position], _invalid_element(kind, session))

        with expect_error(ErrorCode.VALIDATION_ERROR):
            asm_store.append_events(batch)

        assert asm_store.get_events(session.id) == before, (
            f"a batch with an invalid element ({kind}, {position}) must store nothing"
        )
        assert asm_store.get_latest_sequence(session.id) == 2
        after = asm_store.append_event_with_sequence(an_event(session))
        assert after.sequence_number == 3, (
            "the rejected batch must consume no sequence number: the next append gets 3, "
            f"got {after.sequence_number}"
        )

    @rule("BATCH-3")
    def test_rejected_batch_stores_none_of_its_valid_events(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        valid = some_events(session, 3)
        invalid = _invalid_element("unknown-type", session)

        with expect_error(ErrorCode.VALIDATION_ERROR):
            asm_store.append_events([*valid, invalid])

        assert asm_store.get_events(session.id) == [], "the rejected batch left events behind"
        # A store that kept any of them (say, in its id index) would return it as a duplicate.
        retried = in_number_order(asm_store.append_events(valid))
        assert [stored_view(e) for e in retried] == valid
        assert sequences(retried) == [1, 2, 3], (
            "after a rejected batch, the same valid events append as new events numbered 1..3"
        )

    @rule("BATCH-4")
    def test_mixed_batch_numbers_each_session_in_one_block(self, asm_store: Any) -> None:
        first, second, third = a_session(), a_session(), a_session()
        for session in (first, second, third):
            asm_store.save_session(session)
        asm_store.append_events(some_events(first, 2))
        asm_store.append_events(some_events(second, 5))
        batch = [
            an_event(first, data={"n": 1}),
            an_event(second, data={"n": 1}),
            an_event(first, data={"n": 2}),
            an_event(third, data={"n": 1}),
            an_event(second, data={"n": 2}),
            an_event(first, data={"n": 3}),
        ]

        # Read by id: the result's order is BATCH-1's.
        returned = {e.id: e for e in asm_store.append_events(batch)}

        numbers = {
            session.id: [
                returned[e.id].sequence_number for e in batch if e.session_id == session.id
            ]
            for session in (first, second, third)
        }
        assert numbers == {first.id: [3, 4, 5], second.id: [6, 7], third.id: [1]}, (
            "each session's new events continue that session's own numbering, in input order"
        )
        for session, count in ((first, 5), (second, 7), (third, 1)):
            assert sequences(asm_store.get_events(session.id)) == list(range(1, count + 1))
            assert asm_store.get_latest_sequence(session.id) == count

    @rule("BATCH-4")
    def test_mixed_batch_with_duplicates_keeps_blocks(self, asm_store: Any) -> None:
        first, second = a_session(), a_session()
        for session in (first, second):
            asm_store.save_session(session)
        known = asm_store.append_event_with_sequence(an_event(first, id="evt-known"))
        batch = [
            an_event(second),
            an_event(first, id="evt-known"),
            an_event(first),
            an_event(second),
            an_event(first),
        ]

        returned = {e.id: e for e in asm_store.append_events(batch)}

        assert returned[known.id] == known
        assert [returned[e.id].sequence_number for e in batch] == [1, 1, 2, 2, 3]

    @rule("BATCH-5")
    def test_concurrent_batches_to_one_session_do_not_interleave(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        batches = [
            [an_event(session, data={"batch": b, "i": i}) for i in range(10)] for b in range(10)
        ]

        returned = run_indexed(len(batches), lambda b: asm_store.append_events(batches[b]))

        for index, (batch, result) in enumerate(zip(batches, returned, strict=True)):
            assert [e.id for e in result] == [e.id for e in batch]
            numbers = [e.sequence_number for e in result]
            first = numbers[0] or 0
            assert numbers == list(range(first, first + len(batch))), (
                f"batch {index} was interleaved with other batches: it got numbers {numbers}"
            )
        stored = asm_store.get_events(session.id)
        assert sequences(stored) == list(range(1, 101))
        assert sorted(stored, key=lambda e: e.id) == sorted(
            (e for result in returned for e in result), key=lambda e: e.id
        ), "stored events differ from what the concurrent batches returned"

    @rule("BATCH-5")
    def test_concurrent_mixed_batches_keep_per_session_blocks(self, asm_store: Any) -> None:
        first, second = a_session(), a_session()
        for session in (first, second):
            asm_store.save_session(session)
        batches = [
            [an_event(first if i % 2 else second, data={"batch": b, "i": i}) for i in range(8)]
            for b in range(8)
        ]

        returned = run_indexed(len(batches), lambda b: asm_store.append_events(batches[b]))

        for index, result in enumerate(returned):
            for session in (first, second):
                numbers = [e.sequence_number or 0 for e in result if e.session_id == session.id]
                assert len(_blocks(numbers)) == 1, (
                    f"batch {index}'s events of one session were interleaved with other "
                    f"batches: numbers {numbers}"
                )
        for session in (first, second):
            assert sequences(asm_store.get_events(session.id)) == list(range(1, 33))


__all__ = ["TestBatch"]
