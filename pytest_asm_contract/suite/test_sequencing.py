"""SEQ: per-session sequence numbers start at 1, have no gaps or repeats, and never show holes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.threads import Countdown, run_indexed, run_threads
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.model import Event, EventType, ExecutionResult, Session
from pytest_asm_contract._plugin.marks import mark_violated
from pytest_asm_contract.suite._builders import (
    a_run,
    a_session,
    an_event,
    expect_error,
    in_number_order,
    sequences,
    some_events,
)


def _saved_session(store: Any) -> Session:
    session = a_session()
    store.save_session(session)
    return session


def _flush(store: Any, session: Session, events: list[Event]) -> None:
    store.flush(ExecutionResult(session=session, run=a_run(session), events=events))


def _invalid_unknown_type(session: Session) -> Event:
    return Event.model_construct(
        id="evt-invalid-type",
        type="no_such_type",  # type: ignore[arg-type]  # invalid on purpose
        session_id=session.id,
    )


def _invalid_nan_data(session: Session) -> Event:
    return Event.model_construct(
        id="evt-invalid-data",
        type=EventType.MESSAGE_SENT,
        session_id=session.id,
        data={"x": float("nan")},
    )


#: Ways to attempt one write that must be rejected: (store, session, invalid event) -> None.
REJECTED_WRITES: dict[str, Callable[[Any, Session, Event], Any]] = {
    "append_event": lambda store, _, bad: store.append_event(bad),
    "append_event_with_sequence": lambda store, _, bad: store.append_event_with_sequence(bad),
    "append_events": lambda store, session, bad: store.append_events([an_event(session), bad]),
    "flush": lambda store, session, bad: _flush(store, session, [an_event(session), bad]),
}


INVALID = pytest.mark.parametrize(
    "invalid", [_invalid_unknown_type, _invalid_nan_data], ids=["unknown-type", "nan-in-data"]
)


def _check_rejected_write_consumes_no_number(
    item: pytest.Item, store: Any, path: str, invalid: Callable[[Session], Event]
) -> None:
    session = _saved_session(store)
    store.append_event(an_event(session))
    with expect_error(ErrorCode.VALIDATION_ERROR):
        REJECTED_WRITES[path](store, session, invalid(session))
    left = sequences(store.get_events(session.id))
    assert left == [1], f"a {path} rejected as invalid stored part of itself: numbers {left}"
    # Every write path after it: a store may keep the numbers of a rejected write for one path only.
    store.append_event_with_sequence(an_event(session))
    store.append_events([an_event(session)])
    _flush(store, session, [an_event(session)])
    numbers = sequences(store.get_events(session.id))
    if numbers != [1, 2, 3, 4]:
        # The rejection itself was clean (nothing stored): the numbering broke SEQ-1's "a
        # failed write consumes no number", whichever rule the rejected write belongs to.
        mark_violated(item, "SEQ-1")
        pytest.fail(
            f"a {path} rejected as invalid consumed sequence numbers: after it, "
            f"append_event_with_sequence, append_events and flush stored {numbers}, "
            "expected [1, 2, 3, 4]",
            pytrace=False,
        )


class TestSequencing:
    # -- SEQ-1: 1, then +1 --------------------------------------------------------------------
    @rule("SEQ-1")
    def test_first_event_gets_one_then_each_next(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        numbers = [asm_store.append_event_with_sequence(an_event(session)) for _ in range(3)]
        assert sequences(numbers) == [1, 2, 3], (
            "a session's first event gets 1 and each next event the previous + 1"
        )
        assert sequences(asm_store.get_events(session.id)) == [1, 2, 3]

    @rule("SEQ-1")
    def test_numbers_continue_across_append_paths(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        assert asm_store.append_event_with_sequence(an_event(session)).sequence_number == 1
        # In whatever order the batch comes back (that is BATCH-1's): the numbers continue.
        batch = sequences(asm_store.append_events(some_events(session, 2)))
        assert sorted(n or 0 for n in batch) == [2, 3], batch
        asm_store.append_event(an_event(session))
        _flush(asm_store, session, [an_event(session)])
        assert sequences(asm_store.get_events(session.id)) == [1, 2, 3, 4, 5], (
            "every append path (single, batch, append_event, flush) continues one numbering"
        )

    @rule("SEQ-1")
    @INVALID
    @pytest.mark.parametrize("path", ["append_event", "append_event_with_sequence"])
    def test_rejected_write_consumes_no_number(
        self,
        request: pytest.FixtureRequest,
        asm_store: Any,
        path: str,
        invalid: Callable[[Session], Event],
    ) -> None:
        _check_rejected_write_consumes_no_number(request.node, asm_store, path, invalid)

    # A rejected batch or flush that consumed numbers stored part of itself: BATCH-3 and FLUSH-2
    # say nothing of it may be numbered.
    @rule("BATCH-3", "SEQ-1")
    @INVALID
    def test_rejected_batch_consumes_no_number(
        self, request: pytest.FixtureRequest, asm_store: Any, invalid: Callable[[Session], Event]
    ) -> None:
        _check_rejected_write_consumes_no_number(request.node, asm_store, "append_events", invalid)

    @rule("FLUSH-2", "SEQ-1")
    @INVALID
    def test_rejected_flush_consumes_no_number(
        self, request: pytest.FixtureRequest, asm_store: Any, invalid: Callable[[Session], Event]
    ) -> None:
        _check_rejected_write_consumes_no_number(request.node, asm_store, "flush", invalid)

    @rule("SEQ-1")
    def test_numbers_continue_when_other_sessions_are_deleted(
        self, request: pytest.FixtureRequest, asm_store: Any
    ) -> None:
        # Each session keeps its own next number whatever is deleted around it, first, middle
        # or last (numbering state kept by position or shared between sessions shows here).
        sessions = [_saved_session(asm_store) for _ in range(4)]
        for count, session in enumerate(sessions, 1):
            for _ in range(count):
                asm_store.append_event(an_event(session))
        numbered = [[e.sequence_number for e in asm_store.get_events(s.id)] for s in sessions]
        starts = {numbers[0] if numbers else None for numbers in numbered}
        for count, numbers in enumerate(numbered, 1):
            if numbers != list(range(1, count + 1)) and len(starts) > 1:
                # Before any delete, sessions start at different numbers: other sessions'
                # appends moved them (a store that numbers every session wrongly alike is SEQ-1's).
                mark_violated(request.node, "SEQ-4")
                pytest.fail(
                    f"appends to four sessions in turn gave them the numbers {numbered}, not "
                    "1..n each: numbering is per session, and appends to one session never "
                    "affect another",
                    pytrace=False,
                )
        kept = {session.id: count for count, session in enumerate(sessions, 1)}
        for doomed in (sessions[0], sessions[2], sessions[3]):
            asm_store.delete_session(doomed.id)
            del kept[doomed.id]
            for session_id in kept:
                kept[session_id] += 1
                got = asm_store.append_event_with_sequence(an_event(session_id)).sequence_number
                if got != kept[session_id]:
                    # Whether or not the deletes worked (SES-4's), numbering must continue.
                    mark_violated(request.node, "SEQ-1")
                    pytest.fail(
                        f"after deleting session {doomed.id!r}, the next event of "
                        f"{session_id!r} got {got}; its highest number was "
                        f"{kept[session_id] - 1}",
                        pytrace=False,
                    )

    @rule("CONC-1", "SEQ-1")
    def test_concurrent_appends_leave_no_gap_or_repeat(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        threads, per_thread = 8, 25

        def append(index: int) -> list[int | None]:
            return [
                asm_store.append_event_with_sequence(an_event(session)).sequence_number
                for _ in range(per_thread)
            ]

        numbers = run_indexed(threads, append)
        handed_out = sorted(n or 0 for batch in numbers for n in batch)
        total = threads * per_thread
        assert handed_out == list(range(1, total + 1)), (
            f"{threads} threads appending {per_thread} events each must get exactly "
            f"1..{total}; repeated: {sorted({n for n in handed_out if handed_out.count(n) > 1})}"
        )
        assert sequences(asm_store.get_events(session.id)) == list(range(1, total + 1))

    # -- SEQ-2: get_latest_sequence -----------------------------------------------------------
    @rule("SEQ-2")
    def test_latest_sequence_is_zero_without_events(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        assert asm_store.get_latest_sequence(session.id) == 0
        assert asm_store.get_latest_sequence("ses_unknown") == 0, (
            "an unknown session has latest sequence 0 (not an error)"
        )

    @rule("SEQ-2")
    def test_latest_sequence_counts_stored_events(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        asm_store.append_event(an_event(session))
        assert asm_store.get_latest_sequence(session.id) == 1
        asm_store.append_events(some_events(session, 3))
        assert asm_store.get_latest_sequence(session.id) == 4, (
            "get_latest_sequence returns the highest assigned number, not the next one"
        )

    @rule("SEQ-2")
    def test_latest_sequence_ignores_rejected_writes(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        asm_store.append_event(an_event(session))
        with expect_error(ErrorCode.VALIDATION_ERROR):
            asm_store.append_event(_invalid_unknown_type(session))
        assert asm_store.get_latest_sequence(session.id) == 1

    @rule("SEQ-2")
    def test_latest_sequence_counts_every_append_path(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        asm_store.append_event(an_event(session))
        asm_store.append_event_with_sequence(an_event(session))
        asm_store.append_events(some_events(session, 2))
        _flush(asm_store, session, [an_event(session)])
        assert asm_store.get_latest_sequence(session.id) == 5, (
            "get_latest_sequence must count the events of every append path, flush included"
        )

    @rule("IDEM-1", "SEQ-2")
    def test_latest_sequence_ignores_duplicates(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        event = an_event(session)
        asm_store.append_event(event)
        asm_store.append_event(event)
        assert asm_store.get_latest_sequence(session.id) == 1

    # -- SEQ-3: the caller's number is ignored ------------------------------------------------
    @rule("SEQ-3")
    def test_supplied_number_is_ignored_on_single_append(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        stored = asm_store.append_event_with_sequence(an_event(session, sequence_number=42))
        assert stored.sequence_number == 1, "the store assigns numbers; the caller's 42 is ignored"
        asm_store.append_event(an_event(session, sequence_number=99))
        assert sequences(asm_store.get_events(session.id)) == [1, 2]

    @rule("SEQ-3")
    def test_supplied_numbers_are_ignored_in_a_batch(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        batch = [an_event(session, sequence_number=n) for n in (7, 3, 3)]
        returned = asm_store.append_events(batch)
        assert sorted(sequences(returned), key=lambda n: n or 0) == [1, 2, 3], sequences(returned)
        assert sequences(asm_store.get_events(session.id)) == [1, 2, 3]

    @rule("SEQ-3")
    def test_supplied_number_never_replaces_a_stored_event(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        first = asm_store.append_event_with_sequence(an_event(session))
        clash = asm_store.append_event_with_sequence(an_event(session, sequence_number=1))
        assert clash.sequence_number == 2
        assert asm_store.get_events(session.id) == [first, clash], (
            "an event carrying an existing number must be stored under the next number"
        )

    # -- SEQ-4: numbering is per session ------------------------------------------------------
    @rule("SEQ-4")
    def test_sessions_are_numbered_independently(self, asm_store: Any) -> None:
        one, two = _saved_session(asm_store), _saved_session(asm_store)
        got: dict[str, list[int | None]] = {one.id: [], two.id: []}
        for session in (one, two, one, two, one):
            stored = asm_store.append_event_with_sequence(an_event(session))
            got[session.id].append(stored.sequence_number)
        assert got == {one.id: [1, 2, 3], two.id: [1, 2]}, (
            "each session has its own numbering starting at 1"
        )
        assert asm_store.get_latest_sequence(one.id) == 3
        assert asm_store.get_latest_sequence(two.id) == 2

    @rule("SEQ-4")
    def test_appends_to_one_session_leave_another_unchanged(self, asm_store: Any) -> None:
        one, two = _saved_session(asm_store), _saved_session(asm_store)
        before = in_number_order(asm_store.append_events(some_events(one, 2)))
        asm_store.append_events(some_events(two, 5))
        asm_store.append_event(an_event(two))
        assert asm_store.get_events(one.id) == before
        assert asm_store.get_latest_sequence(one.id) == 2
        assert asm_store.append_event_with_sequence(an_event(one)).sequence_number == 3

    # -- SEQ-5: no holes for a tailing reader -------------------------------------------------
    @rule("SEQ-5")
    def test_tailing_reader_never_sees_a_hole(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        writers, per_writer = 4, 50
        total = writers * per_writer
        writing = Countdown(writers)
        holes: list[str] = []
        seen: list[Event] = []

        def write(index: int) -> None:
            try:
                for i in range(per_writer):
                    asm_store.append_event(an_event(session, data={"w": index, "i": i}))
            finally:
                writing.done()

        def tail() -> None:
            cursor = 0
            while True:
                finished = writing.finished.is_set()
                batch = asm_store.get_events(session.id, after=cursor)
                numbers = sequences(batch)
                expected = list(range(cursor + 1, cursor + 1 + len(batch)))
                if numbers != expected:
                    holes.append(f"after={cursor} returned {numbers}")
                    return
                seen.extend(batch)
                cursor += len(batch)
                if finished and not batch:
                    return

        work: dict[str, Callable[[], None]] = {"reader": tail}
        work.update({f"writer-{i}": functools.partial(write, i) for i in range(writers)})
        run_threads(work)

        assert not holes, (
            "a reader tailing with get_events(after=cursor) must get cursor+1, cursor+2, ... "
            f"with nothing missing or repeated, but {holes[0]}; a number that becomes visible "
            "after a higher one is skipped by such a reader forever"
        )
        assert sequences(seen) == list(range(1, total + 1))
        assert seen == asm_store.get_events(session.id), "the tail must end with every event"

    @rule("SEQ-5")
    def test_lower_numbers_are_visible_once_an_append_returns(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        writers, per_writer = 4, 25
        holes: list[str] = []

        def write(index: int) -> None:
            for i in range(per_writer):
                stored = asm_store.append_event_with_sequence(
                    an_event(session, data={"w": index, "i": i})
                )
                number = stored.sequence_number or 0
                visible = sequences(asm_store.get_events(session.id, before=number + 1))
                missing = sorted(set(range(1, number + 1)) - {n or 0 for n in visible})
                if missing:
                    holes.append(f"append returned {number} while {missing} were not visible")

        run_indexed(writers, write)
        assert not holes, (
            "once an append has returned number n, every lower number of the session must be "
            f"visible (a reader that saw n would otherwise skip them): {holes[0]}"
        )


__all__ = ["TestSequencing"]
