"""Rules for sessions and runs: the example's setup, saves, reads, listings and deletes."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from pytest_asm_contract._contract.model import Run, RunStatus, Session, SessionStatus
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.checks import StateChecks
from pytest_asm_contract._machine.drawing import Drawing
from pytest_asm_contract._machine.inputs import (
    INITIAL_SESSIONS,
    INSIDE_OFFSET,
    ONE_IN_FOUR,
    PAGE_ARGUMENTS,
    Pools,
    pools,
)
from pytest_asm_contract._machine.oracle import confusable


class SessionAndRunRules(StateChecks, Drawing):
    """Saves, reads, lists and deletes sessions; saves and lists runs."""

    # -- setup ----------------------------------------------------------------------------------
    @initialize(chosen=pools(), data=st.data())
    def start(self, chosen: Pools, data: st.DataObject) -> None:
        """Choose the example's pools, then save some sessions, as an agent platform would."""
        self.pools = chosen
        self._cache_strategies()
        if any(confusable(a, b) for a in chosen.sessions for b in chosen.sessions):
            self.coverage.hit("confusable ids in one example")
        for sid in chosen.sessions[: data.draw(INITIAL_SESSIONS)]:
            self._act("_save_session", self._session(data, session_id=sid))
            self._check_state()

    # -- sessions -------------------------------------------------------------------------------
    @rule(data=st.data())
    def save_session(self, data: st.DataObject) -> None:
        self._act("_save_session", self._session(data))

    def _save_session(self, session: Session) -> bool:
        replacing = session.id in self.model.sessions
        self._begin_write("save_session", "SES-1", [session.id])
        outcome = self.model.save_session(session)
        code = repro.lazy_call("save_session", session)
        value, error = self._call(lambda: self.store.save_session(session))
        ok = self._settle(
            outcome, code, value, error, op="save_session", ok_rule="SES-1", fail_rule="SES-1"
        )
        if ok:
            self.coverage.hit("session saved")
            if replacing:
                self.coverage.hit("session replaced by a new save")
            self._note_nul(session)
        return ok

    @rule(data=st.data())
    def read_one(self, data: st.DataObject) -> None:
        """get_session, get_run, get_active_run or get_latest_sequence of a pool id."""
        which = data.draw(st.integers(0, 3))
        if which == 0:
            self._act(
                "_check_session", self._session_id(data), read_rule="SES-1", in_invariant=False
            )
        elif which == 1:
            self._act("_check_run", data.draw(self.any_run), in_invariant=False)
        elif which == 2:
            self._act("_check_active_run", self._session_id(data), in_invariant=False)
        else:
            self._act("_check_latest", self._session_id(data), in_invariant=False)

    @rule(data=st.data())
    def list_sessions(self, data: st.DataObject) -> None:
        present = sorted(s.status for s in self.model.sessions.values())
        status = self._status_filter(data, list(SessionStatus), present)
        agent_id = data.draw(st.one_of(st.none(), self.any_agent))
        limit, offset = data.draw(PAGE_ARGUMENTS)
        if data.draw(INSIDE_OFFSET):
            matching = self.model.list_sessions(status=status, agent_id=agent_id)
            offset = self._offset_into(data, matching, offset)
        kwargs = {"status": status, "agent_id": agent_id, "limit": limit, "offset": offset}
        self._act("_list_sessions", kwargs)

    def _list_sessions(self, kwargs: dict[str, Any]) -> None:
        outcome = self.model.list_sessions(**kwargs)
        code = repro.lazy_call("list_sessions", **kwargs)
        value, error = self._call(lambda: self.store.list_sessions(**kwargs))

        def check(found: Any) -> None:
            agent = kwargs["agent_id"]
            listed = [getattr(s, "agent_id", None) for s in found or ()]
            # A session of a look-alike agent listed for this agent: the filter matched loosely.
            loose = agent is not None and any(
                isinstance(a, str) and confusable(agent, a) for a in listed
            )
            self._compare_list(
                "DATA-3" if loose else "SES-3",
                "list_sessions",
                code,
                outcome.result,
                found,
                "[s.id for s in result]",
            )

        if self._settle(
            outcome,
            code,
            value,
            error,
            op="list_sessions",
            ok_rule="SES-3",
            fail_rule="SES-3",
            check=check,
            read=True,
        ):
            if any(v is not None for v in kwargs.values()):
                self.coverage.hit("sessions listed with filters or paging")
            if any(s.deleted_at is not None for s in outcome.result):
                self.coverage.hit("soft-deleted session listed")
        else:
            self.coverage.hit("invalid list argument rejected")

    @rule(data=st.data())
    def delete_session(self, data: st.DataObject) -> None:
        self._act("_delete_session", self._session_id(data))

    def _delete_session(self, sid: str) -> None:
        had_content = bool(self.model.events_of(sid) or self.model.runs_of(sid))
        self._begin_write("delete_session", "SES-4", [sid])
        self.last.deleted = sid
        outcome = self.model.delete_session(sid)
        removed = {e.id: e for e in self.model.events_of(sid)}
        code = repro.lazy_call("delete_session", sid)
        value, error = self._call(lambda: self.store.delete_session(sid))
        if self._settle(
            outcome, code, value, error, op="delete_session", ok_rule="SES-4", fail_rule="SES-4"
        ):
            if had_content:
                self.coverage.hit("session with runs or events deleted")
            if removed:
                self.restarted[sid] = self.ever_numbered[sid]
                self.removed.update(removed)

    # -- runs -----------------------------------------------------------------------------------
    @rule(data=st.data())
    def save_run(self, data: st.DataObject) -> None:
        self._act("_save_run", self._run(data))

    def _save_run(self, run: Run) -> bool:
        self._begin_write("save_run", "RUN-1", [run.session_id], [run.id])
        outcome = self.model.save_run(run)
        code = repro.lazy_call("save_run", run)
        value, error = self._call(lambda: self.store.save_run(run))
        ok = self._settle(
            outcome, code, value, error, op="save_run", ok_rule="RUN-1", fail_rule="RUN-1"
        )
        if ok:
            self.coverage.hit("run saved")
            self._note_nul(run)
        return ok

    @rule(data=st.data())
    def list_runs(self, data: st.DataObject) -> None:
        with_runs = sorted({r.session_id for r in self.model.runs.values()})
        prefer_with_runs = bool(with_runs) and data.draw(ONE_IN_FOUR) > 0
        sid: str = self._pick(data, with_runs) if prefer_with_runs else self._session_id(data)
        present = sorted(r.status for r in self.model.runs_of(sid))
        status = self._status_filter(data, list(RunStatus), present)
        limit, offset = data.draw(PAGE_ARGUMENTS)
        if data.draw(INSIDE_OFFSET):
            offset = self._offset_into(data, self.model.list_runs(sid, status=status), offset)
        kwargs = {"status": status, "limit": limit, "offset": offset}
        self._act("_list_runs", sid, kwargs)

    def _list_runs(self, sid: str, kwargs: dict[str, Any]) -> None:
        outcome = self.model.list_runs(sid, **kwargs)
        code = repro.lazy_call("list_runs", sid, **kwargs)
        value, error = self._call(lambda: self.store.list_runs(sid, **kwargs))

        def check(found: Any) -> None:
            self._compare_list(
                "RUN-2", "list_runs", code, outcome.result, found, "[r.id for r in result]"
            )

        if self._settle(
            outcome,
            code,
            value,
            error,
            op="list_runs",
            ok_rule="RUN-2",
            fail_rule="RUN-2",
            check=check,
            read=True,
        ):
            if any(v is not None for v in kwargs.values()):
                self.coverage.hit("runs listed with filters or paging")
        else:
            self.coverage.hit("invalid list argument rejected")
