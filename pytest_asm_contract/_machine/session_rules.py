"""Rules for sessions and runs: the example's setup, saves, reads, listings and deletes."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from pytest_asm_contract._contract.model import RunStatus, SessionStatus
from pytest_asm_contract._machine import reads, writes
from pytest_asm_contract._machine.checks import (
    check_active_run,
    check_latest,
    check_run,
    check_session,
    check_state,
)
from pytest_asm_contract._machine.drawing import Drawing
from pytest_asm_contract._machine.inputs import (
    INITIAL_SESSIONS,
    INSIDE_OFFSET,
    ONE_IN_FOUR,
    PAGE_ARGUMENTS,
    Pools,
    pools,
)
from pytest_asm_contract._machine.values import confusable


class SessionAndRunRules(Drawing):
    """Saves, reads, lists and deletes sessions; saves and lists runs."""

    # -- setup ----------------------------------------------------------------------------------
    @initialize(chosen=pools(), data=st.data())
    def start(self, chosen: Pools, data: st.DataObject) -> None:
        """Choose the example's pools, then save some sessions, as an agent platform would."""
        self.pools = self.referee.pools = chosen
        self._cache_strategies()
        if any(confusable(a, b) for a in chosen.sessions for b in chosen.sessions):
            self.referee.coverage.hit("confusable ids in one example")
        for sid in chosen.sessions[: data.draw(INITIAL_SESSIONS)]:
            self.referee.act(writes.save_session, self._session(data, session_id=sid))
            check_state(self.referee)

    # -- sessions -------------------------------------------------------------------------------
    @rule(data=st.data())
    def save_session(self, data: st.DataObject) -> None:
        self.referee.act(writes.save_session, self._session(data))

    @rule(data=st.data())
    def read_one(self, data: st.DataObject) -> None:
        """get_session, get_run, get_active_run or get_latest_sequence of a pool id."""
        which = data.draw(st.integers(0, 3))
        act = self.referee.act
        if which == 0:
            act(check_session, self._session_id(data), read_rule="SES-1", in_invariant=False)
        elif which == 1:
            act(check_run, data.draw(self.any_run), in_invariant=False)
        elif which == 2:
            act(check_active_run, self._session_id(data), in_invariant=False)
        else:
            act(check_latest, self._session_id(data), in_invariant=False)

    @rule(data=st.data())
    def list_sessions(self, data: st.DataObject) -> None:
        model = self.referee.model
        present = sorted(s.status for s in model.sessions.values())
        status = self._status_filter(data, list(SessionStatus), present)
        agent_id = data.draw(st.one_of(st.none(), self.any_agent))
        limit, offset = data.draw(PAGE_ARGUMENTS)
        if data.draw(INSIDE_OFFSET):
            matching = model.list_sessions(status=status, agent_id=agent_id)
            offset = self._offset_into(data, matching, offset)
        kwargs = {"status": status, "agent_id": agent_id, "limit": limit, "offset": offset}
        self.referee.act(reads.list_sessions, kwargs)

    @rule(data=st.data())
    def delete_session(self, data: st.DataObject) -> None:
        self.referee.act(writes.delete_session, self._session_id(data))

    # -- runs -----------------------------------------------------------------------------------
    @rule(data=st.data())
    def save_run(self, data: st.DataObject) -> None:
        self.referee.act(writes.save_run, self._run(data))

    @rule(data=st.data())
    def list_runs(self, data: st.DataObject) -> None:
        model = self.referee.model
        with_runs = sorted({r.session_id for r in model.runs.values()})
        prefer_with_runs = bool(with_runs) and data.draw(ONE_IN_FOUR) > 0
        sid: str = self._pick(data, with_runs) if prefer_with_runs else self._session_id(data)
        present = sorted(r.status for r in model.runs_of(sid))
        status = self._status_filter(data, list(RunStatus), present)
        limit, offset = data.draw(PAGE_ARGUMENTS)
        if data.draw(INSIDE_OFFSET):
            offset = self._offset_into(data, model.list_runs(sid, status=status), offset)
        kwargs = {"status": status, "limit": limit, "offset": offset}
        self.referee.act(reads.list_runs, sid, kwargs)
