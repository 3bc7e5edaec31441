"""FLUSH: flush(result) persists a finished run's session, run and events as one atomic step.

FLUSH-3 (backend failures at any step) needs fault injection and is checked elsewhere.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.threads import run_threads
from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import (
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
    in_number_order,
    sequences,
    some_events,
)

OTHER_SESSION = "ses-someone-else"


def _unchecked_result(**fields: Any) -> ExecutionResult:
    """An ExecutionResult built without validation (``model_construct``), as a buggy caller might
    (the constructor would reject the bad payloads these tests need)."""
    return ExecutionResult.model_construct(**fields)


def _unchecked(model: type[Event | Session | Run], **fields: Any) -> Any:
    return model.model_construct(**fields)


def _finished(session: Session, run: Run) -> tuple[Session, Run]:
    """The versions of ``session`` and ``run`` a finished run would flush."""
    return (
        session.model_copy(update={"status": SessionStatus.COMPLETED, "metadata": {"v": "after"}}),
        run.model_copy(
            update={"status": RunStatus.COMPLETED, "output": {"answer": 42}, "ended_at": at(60)}
        ),
    )


def _flushed_events(session: Session, run: Run) -> list[Event]:
    return [
        an_event(session, run, EventType.RUN_STARTED, timestamp=at(1)),
        an_event(session, None, EventType.MESSAGE_RECEIVED, timestamp=at(2)),
        an_event(session, run, EventType.RUN_COMPLETED, timestamp=at(3)),
    ]


#: name -> (payload builder(session, run, events), expected error code)
BadPayload = Callable[[Session, Run, list[Event]], object]
BAD_PAYLOADS: dict[str, tuple[BadPayload, ErrorCode]] = {
    "None": (lambda s, r, e: None, ErrorCode.VALIDATION_ERROR),
    "list": (lambda s, r, e: [s, r, e], ErrorCode.VALIDATION_ERROR),
    "str": (lambda s, r, e: "result", ErrorCode.VALIDATION_ERROR),
    "mapping-without-session": (
        lambda s, r, e: {"run": r, "events": e},
        ErrorCode.VALIDATION_ERROR,
    ),
    "mapping-without-run": (
        lambda s, r, e: {"session": s, "events": e},
        ErrorCode.VALIDATION_ERROR,
    ),
    "mapping-without-events": (
        lambda s, r, e: {"session": s, "run": r},
        ErrorCode.VALIDATION_ERROR,
    ),
    "events-None": (
        lambda s, r, e: _unchecked_result(session=s, run=r, events=None),
        ErrorCode.VALIDATION_ERROR,
    ),
    "event-unknown-type": (
        lambda s, r, e: _unchecked_result(
            session=s,
            run=r,
            events=[e[0], _unchecked(Event, type="no_such_type", session_id=s.id), *e[1:]],
        ),
        ErrorCode.VALIDATION_ERROR,
    ),
    "event-dict": (
        lambda s, r, e: _unchecked_result(
            session=s,
            run=r,
            events=[e[0], {"type": "message_sent", "session_id": s.id}, *e[1:]],
        ),
        ErrorCode.VALIDATION_ERROR,
    ),
    "event-None": (
        lambda s, r, e: _unchecked_result(session=s, run=r, events=[*e, None]),
        ErrorCode.VALIDATION_ERROR,
    ),
    "invalid-session": (
        lambda s, r, e: _unchecked_result(
            session=_unchecked(Session, **{**s.__dict__, "agent_id": ""}), run=r, events=e
        ),
        ErrorCode.VALIDATION_ERROR,
    ),
    "invalid-run": (
        lambda s, r, e: _unchecked_result(
            session=s, run=_unchecked(Run, **{**r.__dict__, "turn_count": -1}), events=e
        ),
        ErrorCode.VALIDATION_ERROR,
    ),
    "event-of-another-session": (
        lambda s, r, e: _unchecked_result(
            session=s, run=r, events=[e[0], an_event(OTHER_SESSION, r), *e[1:]]
        ),
        ErrorCode.SESSION_MISMATCH,
    ),
    "run-of-another-session": (
        lambda s, r, e: _unchecked_result(
            session=s,
            run=r.model_copy(update={"session_id": OTHER_SESSION}),
            events=[event.model_copy(update={"run_id": None}) for event in e],
        ),
        ErrorCode.SESSION_MISMATCH,
    ),
    "event-of-another-run": (
        lambda s, r, e: _unchecked_result(
            session=s, run=r, events=[*e[:2], an_event(s, "run-someone-else"), *e[2:]]
        ),
        ErrorCode.RUN_MISMATCH,
    ),
}


def _read_state(store: Any, session: Session, run: Run) -> dict[str, object]:
    """What a reader sees of ``session``, ``run`` and their events, absence included."""
    state: dict[str, object] = {}
    records: list[tuple[str, Callable[[], object], ErrorCode]] = [
        ("session", lambda: store.get_session(session.id), ErrorCode.SESSION_NOT_FOUND),
        ("run", lambda: store.get_run(run.id), ErrorCode.RUN_NOT_FOUND),
    ]
    for name, read, missing in records:
        try:
            state[name] = read()
        except StoreError as error:
            if error.code is not missing:
                raise
            state[name] = "absent"
    state["events"] = store.get_events(session.id)
    state["latest sequence"] = store.get_latest_sequence(session.id)
    state["other session's events"] = store.get_events(OTHER_SESSION)
    return state


def _change(old: object, new: object) -> str:
    """A short description of how a record read before differs from the one read after."""
    if isinstance(old, BaseModel) and type(old) is type(new):
        fields = [
            name for name in type(old).model_fields if getattr(old, name) != getattr(new, name)
        ]
        return ", ".join(f"{f} {getattr(old, f)!r} -> {getattr(new, f)!r}" for f in fields)
    return f"{old!r} -> {new!r}"


class TestFlush:
    @rule("FLUSH-1")
    def test_flush_persists_session_run_and_events(self, asm_store: Any) -> None:
        session = a_session(status=SessionStatus.COMPLETED)
        run = a_run(session, status=RunStatus.COMPLETED, ended_at=at(60))
        events = _flushed_events(session, run)

        asm_store.flush(ExecutionResult(session=session, run=run, events=events))

        assert asm_store.get_session(session.id) == session, "flushed session not readable"
        assert asm_store.get_run(run.id) == run, "flushed run not readable"
        assert asm_store.list_runs(session.id) == [run]
        assert asm_store.get_events(session.id) == [
            event.with_sequence(n) for n, event in enumerate(events, start=1)
        ], "flushed events must read back in order, numbered 1..n"
        assert asm_store.get_latest_sequence(session.id) == len(events)

    @rule("FLUSH-1")
    def test_flush_replaces_the_saved_session_and_run(self, asm_store: Any) -> None:
        session = a_session(status=SessionStatus.ACTIVE, metadata={"v": "before"})
        run = a_running_run(session)
        asm_store.save_session(session)
        asm_store.save_run(run)
        done_session, done_run = _finished(session, run)

        asm_store.flush(ExecutionResult(session=done_session, run=done_run, events=[]))

        assert asm_store.get_session(session.id) == done_session
        assert asm_store.get_run(run.id) == done_run
        assert asm_store.get_active_run(session.id) is None, "the flushed run is no longer running"
        assert asm_store.get_events(session.id) == []

    @rule("FLUSH-1")
    def test_flushed_events_continue_the_session_numbering(self, asm_store: Any) -> None:
        session = a_session()
        run = a_running_run(session)
        asm_store.save_session(session)
        asm_store.save_run(run)
        earlier = in_number_order(asm_store.append_events(some_events(session, 2, run)))
        events = _flushed_events(session, run)

        asm_store.flush(ExecutionResult(session=session, run=run, events=events))

        stored = asm_store.get_events(session.id)
        assert stored[:2] == earlier
        assert stored[2:] == [event.with_sequence(n) for n, event in enumerate(events, start=3)]
        assert sequences(stored) == [1, 2, 3, 4, 5]

    @rule("FLUSH-2")
    def test_flush_accepts_a_mapping(self, asm_store: Any) -> None:
        session = a_session()
        run = a_run(session)
        events = _flushed_events(session, run)

        asm_store.flush({"session": session, "run": run, "events": events})

        assert asm_store.get_session(session.id) == session
        assert asm_store.get_run(run.id) == run
        assert [e.id for e in asm_store.get_events(session.id)] == [e.id for e in events]

    @rule("FLUSH-2")
    @pytest.mark.parametrize("before", ["saved-before", "absent-before"])
    @pytest.mark.parametrize("payload", list(BAD_PAYLOADS))
    def test_invalid_payload_raises_and_persists_nothing(
        self, asm_store: Any, payload: str, before: str
    ) -> None:
        session = a_session(status=SessionStatus.ACTIVE, metadata={"v": "before"})
        run = a_running_run(session)
        if before == "saved-before":
            asm_store.save_session(session)
            asm_store.save_run(run)
            asm_store.append_events(some_events(session, 2, run))
        expected = _read_state(asm_store, session, run)
        done_session, done_run = _finished(session, run)
        build, code = BAD_PAYLOADS[payload]

        with expect_error(code):
            asm_store.flush(build(done_session, done_run, _flushed_events(session, run)))

        after = _read_state(asm_store, session, run)
        changed = [name for name in expected if after[name] != expected[name]]
        assert not changed, f"a rejected flush ({payload}) changed " + "; ".join(
            f"the {name}: {_change(expected[name], after[name])}" for name in changed
        )
        latest = asm_store.get_latest_sequence(session.id)
        if before == "absent-before":
            asm_store.save_session(session)  # for stores with referential_integrity
        again = asm_store.append_event_with_sequence(an_event(session, run))
        assert again.sequence_number == latest + 1, "the rejected flush consumed sequence numbers"

    @rule("FLUSH-4")
    def test_flushing_twice_keeps_one_copy(self, asm_store: Any) -> None:
        session = a_session(status=SessionStatus.COMPLETED)
        run = a_run(session, status=RunStatus.COMPLETED)
        events = _flushed_events(session, run)
        result = ExecutionResult(session=session, run=run, events=events)

        asm_store.flush(result)
        asm_store.flush(result)

        assert asm_store.get_events(session.id) == [
            event.with_sequence(n) for n, event in enumerate(events, start=1)
        ], "a repeated flush must not store its events again"
        assert asm_store.get_latest_sequence(session.id) == len(events)
        assert asm_store.get_session(session.id) == session
        assert asm_store.get_run(run.id) == run
        assert asm_store.list_runs(session.id) == [run]

    @rule("FLUSH-4")
    def test_retried_flush_keeps_stored_events_and_adds_new_ones(self, asm_store: Any) -> None:
        session = a_session(status=SessionStatus.ACTIVE)
        run = a_running_run(session)
        events = _flushed_events(session, run)
        asm_store.flush(ExecutionResult(session=session, run=run, events=events[:2]))
        done_session, done_run = _finished(session, run)
        retried = [events[0].model_copy(update={"data": {"changed": True}}), *events[1:]]

        asm_store.flush(ExecutionResult(session=done_session, run=done_run, events=retried))

        assert asm_store.get_events(session.id) == [
            event.with_sequence(n) for n, event in enumerate(events, start=1)
        ], "events already stored keep their first copy and number; only new ones are added"
        assert asm_store.get_session(session.id) == done_session
        assert asm_store.get_run(run.id) == done_run

    @rule("FLUSH-5")
    @pytest.mark.parametrize("before", ["saved-before", "absent-before"])
    def test_concurrent_reader_never_sees_part_of_a_flush(
        self, asm_store: Any, before: str
    ) -> None:
        for round_number in range(5):
            violations = _watch_one_flush(asm_store, before == "saved-before", readers=4)
            assert not violations, (
                f"round {round_number}: a reader saw part of a flush: " + "; ".join(violations[:5])
            )


def _watch_one_flush(store: Any, saved_before: bool, readers: int) -> list[str]:
    """Flush one result while ``readers`` threads keep reading; return what they saw wrong.

    Every read must show the state before the flush or the state after it, and once a reader has
    seen any part of the flush (or the flush has returned) it must never see the old state again.
    """
    session = a_session(status=SessionStatus.ACTIVE, metadata={"v": "before"})
    run = a_running_run(session)
    if saved_before:
        store.save_session(session)
        store.save_run(run)
    done_session, done_run = _finished(session, run)
    events = [an_event(session, run, data={"i": i}) for i in range(20)]
    result = ExecutionResult(session=done_session, run=done_run, events=events)
    stored_after = [event.with_sequence(n) for n, event in enumerate(events, start=1)]

    def classify(name: str, read: Callable[[], object], old: object, new: object) -> str:
        try:
            value = read()
        except StoreError as error:
            if not saved_before and error.code in (
                ErrorCode.SESSION_NOT_FOUND,
                ErrorCode.RUN_NOT_FOUND,
            ):
                return "before"
            raise
        if value == old:
            return "before"
        if value == new:
            return "after"
        return f"neither: {name} read as {value!r}"

    observations: list[tuple[str, Callable[[], str]]] = [
        (
            "events",
            lambda: classify("events", lambda: store.get_events(session.id), [], stored_after),
        ),
        (
            "session",
            lambda: classify(
                "session", lambda: store.get_session(session.id), session, done_session
            ),
        ),
        ("run", lambda: classify("run", lambda: store.get_run(run.id), run, done_run)),
        (
            "latest sequence",
            lambda: classify(
                "latest sequence", lambda: store.get_latest_sequence(session.id), 0, len(events)
            ),
        ),
    ]
    flushed = threading.Event()
    violations: list[str] = []

    def read_until_flushed(index: int) -> None:
        order = observations[index % 4 :] + observations[: index % 4]
        seen_after: str | None = None
        try:
            while True:
                done = flushed.is_set()
                for name, observe in order:
                    state = observe()
                    if state == "after":
                        seen_after = seen_after or name
                    elif state != "before":
                        violations.append(f"reader {index}: {state}")
                        return
                    elif done:
                        violations.append(
                            f"reader {index}: the {name} still showed its old state after "
                            "flush returned"
                        )
                        return
                    elif seen_after:
                        violations.append(
                            f"reader {index}: saw the flushed {seen_after}, then the old {name}"
                        )
                        return
                if done:
                    return
        except Exception as error:
            violations.append(f"reader {index} failed: {type(error).__name__}: {error}")

    def flush() -> None:
        try:
            store.flush(result)
        except Exception as error:
            violations.append(f"flush failed: {type(error).__name__}: {error}")
        finally:
            flushed.set()

    work: dict[str, Callable[[], None]] = {"flush": flush}
    work.update({f"reader-{i}": functools.partial(read_until_flushed, i) for i in range(readers)})
    run_threads(work)
    return violations


__all__ = ["TestFlush"]
