"""POLL: get_events(wait_timeout_ms=...) is accepted everywhere, and long-polls with long_poll.

Readers run in threads; a join with a generous timeout only guards against a hang. A reader thread
announces that it is about to call the store before the test appends, so the append usually lands
while the reader waits; the expected result is the same whichever runs first.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.model import Event, EventType, Session
from pytest_asm_contract._contract.port import declared_capabilities
from pytest_asm_contract.suite._builders import (
    a_running_run,
    a_session,
    an_event,
    in_number_order,
    some_events,
)

#: How long a call may take before the test calls it hung. Only a broken store gets near it.
HANG_GUARD_SECONDS = 10.0
#: How long a call that must return at once (no long_poll) may take before the test says it blocked.
AT_ONCE_GUARD_SECONDS = 10.0
#: A wait that a correct store never reaches in these tests: an append ends it first.
LONG_WAIT_MS = 600_000


class _Reader:
    """``store.get_events(session_id, **kwargs)`` running in its own thread."""

    def __init__(self, store: Any, session_id: str, **kwargs: Any) -> None:
        self.call = (
            f"get_events({session_id!r}, {', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        )
        self._store, self._session_id, self._kwargs = store, session_id, kwargs
        self._calling = threading.Event()
        self._result: list[Event] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.elapsed = 0.0

    def _run(self) -> None:
        self._calling.set()
        started = time.monotonic()
        try:
            self._result = self._store.get_events(self._session_id, **self._kwargs)
        except BaseException as error:
            self._error = error
        finally:
            self.elapsed = time.monotonic() - started

    def start(self) -> _Reader:
        self._thread.start()
        self._calling.wait(HANG_GUARD_SECONDS)
        return self

    def result(self, guard_seconds: float = HANG_GUARD_SECONDS) -> list[Event]:
        self._thread.join(guard_seconds)
        if self._thread.is_alive():
            pytest.fail(f"{self.call} had not returned after {guard_seconds:.0f}s", pytrace=False)
        if self._error is not None:
            raise AssertionError(
                f"{self.call} raised {type(self._error).__name__}: {self._error}"
            ) from self._error
        assert self._result is not None
        return self._result


def _saved_session(store: Any) -> Session:
    session = a_session()
    store.save_session(session)
    return session


class TestPoll:
    @rule("POLL-0")
    def test_wait_timeout_is_accepted_when_events_exist(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        stored = in_number_order(asm_store.append_events(some_events(session, 2)))

        found = _Reader(asm_store, session.id, wait_timeout_ms=LONG_WAIT_MS).start().result()

        assert found == stored, "with matching events stored, get_events returns them at once"

    @rule("POLL-0")
    def test_zero_wait_timeout_returns_at_once(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)

        assert _Reader(asm_store, session.id, wait_timeout_ms=0).start().result() == []

    @rule("POLL-0")
    def test_without_long_poll_a_wait_returns_at_once(self, asm_store: Any) -> None:
        if "long_poll" in declared_capabilities(asm_store):
            pytest.skip("the store declares long_poll, so it may block (POLL-1 checks it)")
        session = _saved_session(asm_store)

        reader = _Reader(asm_store, session.id, wait_timeout_ms=LONG_WAIT_MS).start()

        assert reader.result(AT_ONCE_GUARD_SECONDS) == [], (
            "a store without the long_poll capability ignores wait_timeout_ms"
        )

    @rule("POLL-1")
    @pytest.mark.parametrize(
        "filters",
        [{}, {"run_id": "run-a"}, {"type": EventType.TOOL_CALL_STARTED}, {"after": 1}],
        ids=["no-filter", "run_id", "type", "after"],
    )
    def test_returns_at_once_when_matching_events_exist(
        self, asm_store: Any, filters: dict[str, Any]
    ) -> None:
        session = _saved_session(asm_store)
        asm_store.append_event(an_event(session, "run-b"))
        match = asm_store.append_event_with_sequence(
            an_event(session, "run-a", EventType.TOOL_CALL_STARTED)
        )

        reader = _Reader(asm_store, session.id, wait_timeout_ms=LONG_WAIT_MS, **filters).start()

        assert match in reader.result(), "a stored matching event must end the wait at once"

    @rule("POLL-1")
    @pytest.mark.parametrize(
        "filters",
        [{}, {"after": 2}, {"run_id": "run-a"}, {"type": "tool_call_started"}],
        ids=["empty-session", "after-cursor", "run_id", "type"],
    )
    def test_matching_append_wakes_a_waiting_reader(
        self, asm_store: Any, filters: dict[str, Any]
    ) -> None:
        session = _saved_session(asm_store)
        if "after" in filters:
            asm_store.append_events(some_events(session, 2))

        reader = _Reader(asm_store, session.id, wait_timeout_ms=LONG_WAIT_MS, **filters).start()
        appended = asm_store.append_event_with_sequence(
            an_event(session, "run-a", EventType.TOOL_CALL_STARTED)
        )

        assert reader.result() == [appended], (
            f"{reader.call} must return the matching event appended while it waited"
        )

    @rule("POLL-1")
    @pytest.mark.parametrize("mismatch", ["other-run", "other-type", "other-session"])
    def test_non_matching_append_does_not_end_the_wait(self, asm_store: Any, mismatch: str) -> None:
        session = _saved_session(asm_store)
        asm_store.save_session(a_session(id="ses-other"))
        run = a_running_run(session)
        asm_store.save_run(run)
        filters: dict[str, Any]
        if mismatch == "other-run":
            filters = {"run_id": run.id}
            distractors = [an_event(session, "run-other"), an_event(session, None)]
        elif mismatch == "other-type":
            filters = {"type": EventType.TOOL_CALL_STARTED}
            distractors = [an_event(session, run, EventType.MESSAGE_SENT)]
        else:
            filters = {}
            distractors = [an_event("ses-other", run, EventType.TOOL_CALL_STARTED)]

        reader = _Reader(asm_store, session.id, wait_timeout_ms=LONG_WAIT_MS, **filters).start()
        for distractor in distractors:
            asm_store.append_event(distractor)
        appended = asm_store.append_event_with_sequence(
            an_event(session, run, EventType.TOOL_CALL_STARTED)
        )

        found = reader.result()
        assert found == [appended], (
            f"{reader.call} returned {[(e.session_id, e.run_id, e.type.value) for e in found]}: "
            f"a non-matching append ({mismatch}) must neither end the wait nor be returned; "
            "only the matching event appended after it should come back"
        )

    @rule("POLL-1")
    def test_one_append_wakes_every_waiting_reader(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)

        readers = [
            _Reader(asm_store, session.id, wait_timeout_ms=LONG_WAIT_MS).start() for _ in range(5)
        ]
        appended = asm_store.append_event_with_sequence(an_event(session))

        for index, reader in enumerate(readers):
            assert reader.result() == [appended], f"waiting reader {index} missed the append"

    @rule("POLL-1")
    def test_timeout_without_matching_events_returns_empty(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        asm_store.append_event(an_event(session, "run-other"))

        reader = _Reader(asm_store, session.id, run_id="run-a", wait_timeout_ms=50).start()

        assert reader.result() == [], "when the timeout passes with no match, the result is []"

    @rule("POLL-1")
    def test_does_not_return_before_the_timeout(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        asm_store.append_event(an_event(session, "run-other"))
        timeout_ms = 300

        reader = _Reader(asm_store, session.id, run_id="run-a", wait_timeout_ms=timeout_ms)
        found = reader.start().result()

        assert found == []
        # A lower bound only (with slack for clock granularity): returning early is the bug.
        assert reader.elapsed >= 0.8 * timeout_ms / 1000, (
            f"with no matching event, {reader.call} returned after {reader.elapsed * 1000:.0f} ms,"
            f" before its {timeout_ms} ms timeout: a long_poll store must wait"
        )

    @rule("POLL-1")
    def test_non_matching_appends_do_not_end_the_wait_early(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        asm_store.save_session(a_session(id="ses-other"))
        run = a_running_run(session)
        asm_store.save_run(run)
        wanted = EventType.TOOL_CALL_STARTED
        timeout_ms = 300

        reader = _Reader(
            asm_store, session.id, run_id=run.id, type=wanted, wait_timeout_ms=timeout_ms
        ).start()
        for distractor in (
            an_event(session, "run-other", wanted),
            an_event(session, None, wanted),
            an_event(session, run, EventType.MESSAGE_SENT),
            an_event("ses-other", run, wanted),
        ):
            asm_store.append_event(distractor)
        found = reader.result()

        assert found == [], f"{reader.call} returned non-matching events {found!r:.300}"
        assert reader.elapsed >= 0.8 * timeout_ms / 1000, (
            f"{reader.call} returned [] after {reader.elapsed * 1000:.0f} ms, before its "
            f"{timeout_ms} ms timeout: non-matching appends (other run, no run, other type, other "
            "session) must not end the wait"
        )


__all__ = ["TestPoll"]
