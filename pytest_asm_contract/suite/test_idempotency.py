"""IDEM: an event id is stored once; every later append of it returns the first stored event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.threads import run_indexed
from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, EventType, ExecutionResult, Session
from pytest_asm_contract.suite._builders import (
    a_run,
    a_session,
    an_event,
    at,
    sequences,
    some_events,
)

#: One append of one event through a given path; returns the stored event when the path does.
AppendPath = Callable[[Any, Session, Event], Event | None]


def _append_event(store: Any, session: Session, event: Event) -> Event | None:
    store.append_event(event)
    return None


def _append_event_with_sequence(store: Any, session: Session, event: Event) -> Event | None:
    stored: Event = store.append_event_with_sequence(event)
    return stored


def _append_events(store: Any, session: Session, event: Event) -> Event | None:
    stored: list[Event] = store.append_events([event])
    assert len(stored) == 1, f"append_events of one event returned {len(stored)} events"
    return stored[0]


def _flush(store: Any, session: Session, event: Event) -> Event | None:
    store.flush(ExecutionResult(session=session, run=a_run(session), events=[event]))
    return None


PATHS: dict[str, AppendPath] = {
    "append_event": _append_event,
    "append_event_with_sequence": _append_event_with_sequence,
    "append_events": _append_events,
    "flush": _flush,
}


def _saved_session(store: Any) -> Session:
    session = a_session()
    store.save_session(session)
    return session


def _rewritten(event: Event, **update: Any) -> Event:
    """The same id with different content: what a retry with changed data looks like."""
    update.setdefault("data", {"copy": "second"})
    update.setdefault("type", EventType.TOOL_CALL_COMPLETED)
    update.setdefault("timestamp", at(99))
    return event.model_copy(update=update)


def _same_id_appender(
    append: AppendPath, store: Any, session: Session, event: Event
) -> Callable[[int], Event | None]:
    """Racer ``i`` appends ``event``'s id with data of its own, so a last write would show."""

    def call(index: int) -> Event | None:
        return append(store, session, _rewritten(event, data={"racer": index}))

    return call


class TestIdempotency:
    # -- IDEM-1: same session -----------------------------------------------------------------
    @rule("IDEM-1")
    @pytest.mark.parametrize("path", sorted(PATHS))
    def test_duplicate_returns_the_original_whatever_the_path(
        self, asm_store: Any, path: str
    ) -> None:
        session = _saved_session(asm_store)
        original = asm_store.append_event_with_sequence(an_event(session, data={"copy": "first"}))

        returned = PATHS[path](asm_store, session, _rewritten(original, sequence_number=None))

        if returned is not None:
            assert returned == original, (
                f"{path} of an id already stored must return the stored event unchanged "
                "(first write wins)"
            )
        assert asm_store.get_events(session.id) == [original], (
            f"{path} of an id already stored must store nothing"
        )
        assert asm_store.get_latest_sequence(session.id) == 1

    @rule("IDEM-1")
    @pytest.mark.parametrize("path", sorted(PATHS))
    def test_an_id_stored_by_any_path_is_not_stored_again(self, asm_store: Any, path: str) -> None:
        session = _saved_session(asm_store)
        event = an_event(session, data={"copy": "first"})
        PATHS[path](asm_store, session, event)
        (original,) = asm_store.get_events(session.id)

        returned = asm_store.append_event_with_sequence(_rewritten(event))

        assert returned == original, (
            f"an id first stored by {path} must come back as stored, whatever the new copy holds"
        )
        assert asm_store.get_events(session.id) == [original]

    @rule("IDEM-1")
    def test_duplicate_keeps_its_number_among_later_events(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        first, *_ = asm_store.append_events(some_events(session, 3))
        returned = asm_store.append_event_with_sequence(_rewritten(first))
        assert returned == first, "a duplicate must not be re-numbered"
        assert asm_store.get_latest_sequence(session.id) == 3, "a duplicate consumes no number"
        assert sequences(asm_store.get_events(session.id)) == [1, 2, 3]

    # -- IDEM-1: another session --------------------------------------------------------------
    @rule("IDEM-1")
    @pytest.mark.parametrize("path", sorted(PATHS))
    def test_id_of_another_session_is_never_stored_twice(self, asm_store: Any, path: str) -> None:
        owner, intruder = _saved_session(asm_store), _saved_session(asm_store)
        original = asm_store.append_event_with_sequence(an_event(owner, data={"copy": "first"}))
        moved = _rewritten(original, session_id=intruder.id, sequence_number=None)

        try:
            returned = PATHS[path](asm_store, intruder, moved)
        except StoreError as error:
            assert error.code is ErrorCode.ALREADY_EXISTS, (
                f"an id stored under another session may only raise already_exists, "
                f"got {error.code.value}: {error.message}"
            )
        else:
            if returned is not None:
                assert returned == original, (
                    f"{path} of an id stored under another session must return the original "
                    "event (or raise already_exists)"
                )

        assert asm_store.get_events(owner.id) == [original], "the original must stay unchanged"
        assert asm_store.get_events(intruder.id) == [], (
            "an event id is global: the id was stored a second time under another session"
        )
        assert asm_store.get_latest_sequence(intruder.id) == 0

    # -- IDEM-3: repeats inside one batch -----------------------------------------------------
    # The batch's result is read by id: its order is BATCH-1's.
    @rule("IDEM-3")
    def test_repeat_in_a_batch_maps_to_its_first_occurrence(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        a, b = an_event(session, data={"copy": "first"}), an_event(session)
        returned = asm_store.append_events([a, b, _rewritten(a), a])
        assert len(returned) == 4, "one returned event per input element"
        repeats = [e for e in returned if e.id == a.id]
        assert repeats == [a.with_sequence(1)] * 3, (
            "a repeated id inside a batch must map to the stored event of its first occurrence"
        )
        assert asm_store.get_events(session.id) == [a.with_sequence(1), b.with_sequence(2)]
        assert asm_store.get_latest_sequence(session.id) == 2, "the repeat consumed a number"

    @rule("IDEM-3")
    def test_repeat_in_a_flush_is_stored_once(self, asm_store: Any) -> None:
        session = a_session()
        a, b = an_event(session, data={"copy": "first"}), an_event(session)
        asm_store.flush(
            ExecutionResult(session=session, run=a_run(session), events=[a, _rewritten(a), b])
        )
        assert asm_store.get_events(session.id) == [a.with_sequence(1), b.with_sequence(2)]

    @rule("IDEM-3", "IDEM-1")
    def test_repeat_of_a_stored_id_in_a_batch(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        stored = asm_store.append_event_with_sequence(an_event(session))
        fresh = an_event(session)
        returned = asm_store.append_events([_rewritten(stored), fresh, _rewritten(stored)])
        assert sorted(returned, key=lambda e: e.id != stored.id) == [
            stored,
            stored,
            fresh.with_sequence(2),
        ], "both repeats of a stored id return the stored event; the new one gets 2"
        assert asm_store.get_latest_sequence(session.id) == 2

    # -- IDEM-4: racing appends of one new id -------------------------------------------------
    @rule("IDEM-4")
    @pytest.mark.parametrize("path", ["append_event_with_sequence", "append_events"])
    def test_racing_appends_of_one_id_store_it_once(self, asm_store: Any, path: str) -> None:
        session = _saved_session(asm_store)
        racers, rounds = 16, 3
        append = PATHS[path]
        for round_index in range(rounds):
            event = an_event(session)
            results = run_indexed(racers, _same_id_appender(append, asm_store, session, event))
            copies = [e for e in asm_store.get_events(session.id) if e.id == event.id]
            assert len(copies) == 1, (
                f"{racers} threads appended one new id at once and the store kept "
                f"{len(copies)} copies; exactly one must be stored"
            )
            winner = copies[0]
            assert winner.sequence_number == round_index + 1, (
                f"the racing id got number {winner.sequence_number}, expected {round_index + 1}"
            )
            assert all(r == winner for r in results), (
                "every racing caller must get the one stored event back, with the same number; "
                f"got numbers {sorted({str(r.sequence_number) if r else 'none' for r in results})}"
            )

    @rule("IDEM-4")
    def test_racing_appends_of_one_id_across_sessions(self, asm_store: Any) -> None:
        sessions = [_saved_session(asm_store) for _ in range(4)]
        event = an_event(sessions[0])

        def append(index: int) -> Event | None:
            session = sessions[index % len(sessions)]
            try:
                stored: Event = asm_store.append_event_with_sequence(
                    _rewritten(event, session_id=session.id)
                )
            except StoreError as error:
                if error.code is not ErrorCode.ALREADY_EXISTS:
                    raise
                return None
            return stored

        run_indexed(16, append)
        copies = [e for s in sessions for e in asm_store.get_events(s.id) if e.id == event.id]
        assert len(copies) == 1, (
            f"one id appended at once under {len(sessions)} sessions was stored "
            f"{len(copies)} times; an event id is global"
        )
        assert copies[0].sequence_number == 1


__all__ = ["TestIdempotency"]
