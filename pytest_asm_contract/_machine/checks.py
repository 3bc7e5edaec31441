"""The invariant: after every write, the store reads back what the model holds."""

from __future__ import annotations

from typing import Any

from hypothesis.stateful import invariant

from pytest_asm_contract._contract.model import Session
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.comparisons import Comparisons
from pytest_asm_contract._machine.constants import (
    EVENT_WRITES,
    MUTATION_KEY,
    RUN_WRITES,
    SESSION_WRITES,
)
from pytest_asm_contract._machine.oracle import confusable, contains_nul, exact_difference


class StateChecks(Comparisons):
    """Reads the state a write may have changed back from the store and compares it."""

    @invariant()
    def store_matches_model(self) -> None:
        self.coverage.steps += 1
        if self.dirty:
            self._check_state()

    def _check_state(self, *, full: bool = False) -> None:
        """Compare the store with the model where the last write may have changed it (the
        sessions it touched, and ids confusable with theirs); ``full``: everything, as at the end
        of every example, which catches damage a write did elsewhere."""
        self.dirty = False
        self.comparing = True
        try:
            self._compare_state(full)
        finally:
            self.comparing = False

    def _compare_state(self, full: bool) -> None:
        last = self.last
        op = last.op
        touched = set(self.pools.sessions) if full else set(last.sessions)
        touched |= {s for s in self.pools.sessions for t in last.sessions if confusable(s, t)}
        sessions_changed = full or op in SESSION_WRITES
        runs_changed = full or op in RUN_WRITES
        events_changed = full or op in EVENT_WRITES
        for sid in self.pools.sessions:
            if sid in touched and events_changed:
                self._check_events(sid)
                self._check_latest(sid, in_invariant=True)
            if sid in touched and sessions_changed:
                self._check_session(sid, read_rule="SES-1", in_invariant=True)
            if sid in touched and runs_changed:
                self._check_runs(sid)
                self._check_active_run(sid, in_invariant=True)
        if sessions_changed:
            self._check_all_sessions()
        if runs_changed:
            wide = full or op == "delete_session"
            for rid in self.pools.runs if wide else sorted(last.runs):
                self._check_run(rid, in_invariant=True)

    def _check_events(self, sid: str) -> None:
        expected = self.model.events_of(sid)
        code = repro.lazy_call("get_events", sid)
        value, error = self._call(lambda: self.store.get_events(sid))
        outcome = self.model.get_events(sid)

        def check(found: Any) -> None:
            self._compare_log(sid, code, expected, found)

        self._settle(
            outcome,
            code,
            value,
            error,
            op="get_events",
            ok_rule=self._context_rule("EVT-2", sid),
            fail_rule="EVT-2",
            check=check,
            read=True,
        )

    def _check_latest(self, sid: str, *, in_invariant: bool) -> None:
        outcome = self.model.get_latest_sequence(sid)
        code = repro.lazy_call("get_latest_sequence", sid)
        value, error = self._call(lambda: self.store.get_latest_sequence(sid))
        deleted_now = self.last.op == "delete_session" and self.last.deleted == sid

        def check(found: Any) -> None:
            if type(found) is not int or found != outcome.result:
                stale = sid in self.restarted and found == self.restarted[sid] + outcome.result
                rule_id = "SES-4" if in_invariant and (deleted_now or stale) else "SEQ-2"
                self._mismatch(
                    rule_id,
                    f"get_latest_sequence({sid!r}) returned {found!r}; the "
                    f"session has {outcome.result} stored events",
                    code,
                    "result",
                    outcome.result,
                )

        if self._settle(
            outcome,
            code,
            value,
            error,
            op="get_latest_sequence",
            ok_rule="SEQ-2",
            fail_rule="SEQ-2",
            check=check,
            read=True,
        ) and self.model.latest_sequence(sid):
            self.coverage.hit("latest sequence of a session with events read")

    def _check_session(self, sid: str, *, read_rule: str, in_invariant: bool) -> None:
        outcome = self.model.get_session(sid)
        code = repro.lazy_call("get_session", sid)
        value, error = self._call(lambda: self.store.get_session(sid))
        last = self.last
        if in_invariant:
            if outcome.must_fail:
                fail_rule = (
                    "SES-4"
                    if last.op == "delete_session" and last.deleted == sid
                    else self._context_rule("SES-2", sid)
                )
                ok_rule = fail_rule
            else:
                ok_rule = self._context_rule(
                    "DATA-3"
                    if last.op == "delete_session" and confusable(sid, last.deleted or "")
                    else "SES-1",
                    sid,
                )
                fail_rule = ok_rule
        else:
            ok_rule, fail_rule = read_rule, "SES-2"

        def check(found: Any) -> None:
            difference = exact_difference(outcome.result, found)
            if difference is None:
                return
            rule_id = ok_rule
            if isinstance(found, Session) and MUTATION_KEY in found.metadata:
                rule_id = "SES-1"
            elif rule_id == "SES-1" and contains_nul(outcome.result):
                rule_id = "DATA-2"
            elif rule_id == "SES-1" and outcome.result == found:
                rule_id = "DATA-1"
            what = f"get_session({sid!r}) differs from the last saved session: {difference}"
            if outcome.result == found:
                self._exact_mismatch(rule_id, what, code, "result", outcome.result)
            self._mismatch(rule_id, what, code, "result", outcome.result)

        ok = self._settle(
            outcome,
            code,
            value,
            error,
            op="get_session",
            ok_rule=ok_rule,
            fail_rule=fail_rule,
            check=check,
            read=True,
        )
        if not ok and outcome.must_fail:
            self.coverage.hit("unknown session read")

    def _check_runs(self, sid: str) -> None:
        outcome = self.model.list_runs(sid)
        code = repro.lazy_call("list_runs", sid)
        value, error = self._call(lambda: self.store.list_runs(sid))
        rule_id = self._context_rule("RUN-2", sid)
        if rule_id == "RUN-2" and self.last.op == "save_run":
            rule_id = "RUN-1"

        def check(found: Any) -> None:
            if isinstance(found, list):
                got = [getattr(r, "id", None) for r in found]
                if len(set(got)) != len(got):
                    self._mismatch(
                        "IDEM-2",
                        f"list_runs({sid!r}) holds one run twice: {got!r}",
                        code,
                        "[r.id for r in result]",
                        [r.id for r in outcome.result],
                    )
            self._compare_list(
                rule_id, "list_runs", code, outcome.result, found, "[r.id for r in result]"
            )

        self._settle(
            outcome,
            code,
            value,
            error,
            op="list_runs",
            ok_rule=rule_id,
            fail_rule=rule_id,
            check=check,
            read=True,
        )

    def _check_active_run(self, sid: str, *, in_invariant: bool) -> None:
        outcome = self.model.get_active_run(sid)
        code = repro.lazy_call("get_active_run", sid)
        value, error = self._call(lambda: self.store.get_active_run(sid))
        rule_id = "RUN-3"
        if in_invariant and self.last.op == "delete_session":
            rule_id = "SES-4"
        elif in_invariant and self.last.rejected_rule is not None:
            rule_id = self.last.rejected_rule

        def check(found: Any) -> None:
            expected = outcome.result
            if exact_difference(expected, found) is None:
                return
            what = (
                f"get_active_run({sid!r}) returned "
                f"{getattr(found, 'id', found)!r} (status "
                f"{getattr(getattr(found, 'status', None), 'value', None)!r}); expected "
                f"{getattr(expected, 'id', None)!r}, the running run with the latest "
                "started_at"
            )
            if expected is None or found is None or found.id != expected.id:
                self._mismatch(
                    rule_id,
                    what,
                    code,
                    "getattr(result, 'id', None)",
                    getattr(expected, "id", None),
                )
            self._mismatch(rule_id, what, code, "result", expected)

        ok = self._settle(
            outcome,
            code,
            value,
            error,
            op="get_active_run",
            ok_rule=rule_id,
            fail_rule=rule_id,
            check=check,
            read=True,
        )
        if ok and outcome.result is not None:
            self.coverage.hit("active run found")

    def _check_all_sessions(self) -> None:
        outcome = self.model.list_sessions()
        code = repro.lazy_call("list_sessions")
        value, error = self._call(lambda: self.store.list_sessions())
        last = self.last
        rule_id = self._context_rule("SES-3", None)
        if rule_id == "SES-3" and last.op == "save_session":
            rule_id = "SES-1"

        def check(found: Any) -> None:
            if isinstance(found, list):
                got = [getattr(s, "id", None) for s in found]
                want = [s.id for s in outcome.result]
                if len(set(got)) != len(got):
                    self._mismatch(
                        "IDEM-2",
                        f"list_sessions holds one session twice: {got!r}",
                        code,
                        "[s.id for s in result]",
                        want,
                    )
                hidden = [s.id for s in outcome.result if s.deleted_at and s.id not in got]
                if hidden:
                    self._mismatch(
                        "SES-5",
                        f"list_sessions hides the soft-deleted sessions "
                        f"{hidden!r}; deleted_at is plain data",
                        code,
                        "[s.id for s in result]",
                        want,
                    )
            self._compare_list(
                rule_id, "list_sessions", code, outcome.result, found, "[s.id for s in result]"
            )

        self._settle(
            outcome,
            code,
            value,
            error,
            op="list_sessions",
            ok_rule=rule_id,
            fail_rule=rule_id,
            check=check,
            read=True,
        )

    def _check_run(self, rid: str, *, in_invariant: bool) -> None:
        outcome = self.model.get_run(rid)
        code = repro.lazy_call("get_run", rid)
        value, error = self._call(lambda: self.store.get_run(rid))
        rule_id = self._context_rule("RUN-1", None) if in_invariant else "RUN-1"

        def check(found: Any) -> None:
            difference = exact_difference(outcome.result, found)
            if difference is not None:
                what = f"get_run({rid!r}) differs from the last saved run: {difference}"
                if outcome.result == found:
                    self._exact_mismatch(rule_id, what, code, "result", outcome.result)
                self._mismatch(rule_id, what, code, "result", outcome.result)

        self._settle(
            outcome,
            code,
            value,
            error,
            op="get_run",
            ok_rule=rule_id,
            fail_rule=rule_id,
            check=check,
            read=True,
        )
