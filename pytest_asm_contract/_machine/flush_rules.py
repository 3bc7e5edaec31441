"""Rules for flush: valid results, invalid ones, and the same result flushed again."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from pytest_asm_contract._contract.model import ExecutionResult, Session
from pytest_asm_contract._machine.drawing import Drawing
from pytest_asm_contract._machine.inputs import INVALID_EVENTS, INVALID_SESSIONS, NON_MODELS


class FlushRules(Drawing):
    """flush of a drawn result, of an invalid one, and of the last flushed result again."""

    @rule(data=st.data())
    def flush(self, data: st.DataObject) -> None:
        session = self._session(data)
        run = self._run(data, session_id=session.id)
        count = data.draw(st.integers(0, 4))
        events = []
        for _ in range(count):
            if self.used_event_ids and data.draw(st.integers(0, 3)) == 0:
                eid = self._pick(data, self.used_event_ids)
                events.append(
                    self._event(
                        data,
                        session_id=session.id,
                        run_id=self._pick(data, [None, run.id]),
                        event_id=eid,
                    )
                )
            else:
                events.append(
                    self._event(
                        data,
                        session_id=session.id,
                        run_id=self._pick(data, [None, run.id]),
                    )
                )
        result = ExecutionResult(session=session, run=run, events=events)
        payload: Any = result
        if data.draw(st.integers(0, 3)) == 0:
            payload = {"session": session, "run": run, "events": events}
        self._flush(payload, result)

    @rule(data=st.data())
    def flush_invalid(self, data: st.DataObject) -> None:
        session = self._session(data)
        run = self._run(data, session_id=session.id)
        events = [
            self._event(data, session_id=session.id, run_id=run.id)
            for _ in range(data.draw(st.integers(0, 2)))
        ]
        kind = data.draw(
            st.sampled_from(
                [
                    "not-a-result",
                    "missing-events",
                    "run-of-other-session",
                    "event-of-other-session",
                    "event-of-other-run",
                    "invalid-event",
                    "invalid-session",
                ]
            )
        )
        others = [s for s in self.pools.sessions if s != session.id]
        payload: Any
        if kind == "not-a-result":
            payload = data.draw(NON_MODELS)
        elif kind == "missing-events":
            payload = {"session": session, "run": run}
        elif kind == "run-of-other-session":
            payload = ExecutionResult(
                session=session,
                run=run.model_copy(update={"session_id": self._pick(data, others)}),
                events=events,
            )
        elif kind == "event-of-other-session":
            stray = self._event(data, session_id=self._pick(data, others), run_id=None)
            payload = ExecutionResult(session=session, run=run, events=[*events, stray])
        elif kind == "event-of-other-run":
            other_runs = [r for r in self.pools.runs if r != run.id]
            stray = self._event(data, session_id=session.id, run_id=self._pick(data, other_runs))
            payload = ExecutionResult(session=session, run=run, events=[stray, *events])
        elif kind == "invalid-event":
            bad = self._for_session(data.draw(INVALID_EVENTS), session.id)
            position = data.draw(st.integers(0, len(events)))
            payload = ExecutionResult.model_construct(
                session=session,
                run=run,
                events=[*events[:position], bad, *events[position:]],
                provider_metadata={},
            )
        else:
            bad_session = data.draw(INVALID_SESSIONS)
            if bad_session.id:
                bad_session = Session.model_construct(**{**bad_session.__dict__, "id": session.id})
            payload = ExecutionResult.model_construct(
                session=bad_session,
                run=run,
                events=events,
                provider_metadata={},
            )
        self._flush(payload, None)

    @precondition(lambda self: self.last_flush is not None)
    @rule()
    def flush_again(self) -> None:
        """Flush exactly the last flushed result again (FLUSH-4)."""
        self._flush(self.last_flush, None, again=True)
