"""Reading the state back: after every write, the store must hold what the model holds.

Functions of the :class:`~.referee.Referee`. :func:`check_state` compares what the last write may
have changed (the machine's invariant calls it after every write), :func:`final_check` compares
everything at the end of an example; the single reads (``check_session`` ...) are also the
operations of the machine's ``read_one`` rule.
"""

from __future__ import annotations

from typing import Any

from pytest_asm_contract._contract.model import Session
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.comparisons import compare_list, compare_log, context_rule
from pytest_asm_contract._machine.constants import (
    EVENT_WRITES,
    MUTATION_KEY,
    RUN_WRITES,
    SESSION_WRITES,
)
from pytest_asm_contract._machine.referee import LastWrite, Referee
from pytest_asm_contract._machine.values import confusable, contains_nul, exact_difference


def check_state(referee: Referee, *, full: bool = False) -> None:
    """Compare the store with the model where the last write may have changed it (the
    sessions it touched, and ids confusable with theirs); ``full``: everything, as at the end
    of every example, which catches damage a write did elsewhere."""
    referee.dirty = False
    referee.comparing = True
    try:
        _compare_state(referee, full)
    finally:
        referee.comparing = False


def final_check(referee: Referee) -> None:
    """Compare everything once more at the end of the example."""
    referee.last = LastWrite(op="end of example")
    check_state(referee, full=True)


def _compare_state(referee: Referee, full: bool) -> None:
    last = referee.last
    op = last.op
    touched = set(referee.pools.sessions) if full else set(last.sessions)
    touched |= {s for s in referee.pools.sessions for t in last.sessions if confusable(s, t)}
    sessions_changed = full or op in SESSION_WRITES
    runs_changed = full or op in RUN_WRITES
    events_changed = full or op in EVENT_WRITES
    for sid in referee.pools.sessions:
        if sid in touched and events_changed:
            check_events(referee, sid)
            check_latest(referee, sid, in_invariant=True)
        if sid in touched and sessions_changed:
            check_session(referee, sid, read_rule="SES-1", in_invariant=True)
        if sid in touched and runs_changed:
            check_runs(referee, sid)
            check_active_run(referee, sid, in_invariant=True)
    if sessions_changed:
        check_all_sessions(referee)
    if runs_changed:
        wide = full or op == "delete_session"
        for rid in referee.pools.runs if wide else sorted(last.runs):
            check_run(referee, rid, in_invariant=True)


def check_events(referee: Referee, sid: str) -> None:
    """get_events of a session, unfiltered: its whole log."""
    expected = referee.model.events_of(sid)
    code = repro.lazy_call("get_events", sid)
    value, error = referee.call(lambda: referee.store.get_events(sid))
    outcome = referee.model.get_events(sid)

    def check(found: Any) -> None:
        compare_log(referee, sid, code, expected, found)

    referee.settle(
        outcome,
        code,
        value,
        error,
        op="get_events",
        ok_rule=context_rule(referee, "EVT-2", sid),
        fail_rule="EVT-2",
        check=check,
        read=True,
    )


def check_latest(referee: Referee, sid: str, *, in_invariant: bool) -> None:
    """get_latest_sequence of a session; ``in_invariant``: read back after a write."""
    outcome = referee.model.get_latest_sequence(sid)
    code = repro.lazy_call("get_latest_sequence", sid)
    value, error = referee.call(lambda: referee.store.get_latest_sequence(sid))
    deleted_now = referee.last.op == "delete_session" and referee.last.deleted == sid

    def check(found: Any) -> None:
        if type(found) is not int or found != outcome.result:
            stale = sid in referee.restarted and found == referee.restarted[sid] + outcome.result
            rule_id = "SES-4" if in_invariant and (deleted_now or stale) else "SEQ-2"
            referee.mismatch(
                rule_id,
                f"get_latest_sequence({sid!r}) returned {found!r}; the "
                f"session has {outcome.result} stored events",
                code,
                "result",
                outcome.result,
            )

    if referee.settle(
        outcome,
        code,
        value,
        error,
        op="get_latest_sequence",
        ok_rule="SEQ-2",
        fail_rule="SEQ-2",
        check=check,
        read=True,
    ) and referee.model.latest_sequence(sid):
        referee.coverage.hit("latest sequence of a session with events read")


def check_session(referee: Referee, sid: str, *, read_rule: str, in_invariant: bool) -> None:
    """get_session; ``read_rule`` is the rule a plain read (outside the invariant) checks."""
    outcome = referee.model.get_session(sid)
    code = repro.lazy_call("get_session", sid)
    value, error = referee.call(lambda: referee.store.get_session(sid))
    last = referee.last
    if in_invariant:
        if outcome.must_fail:
            fail_rule = (
                "SES-4"
                if last.op == "delete_session" and last.deleted == sid
                else context_rule(referee, "SES-2", sid)
            )
            ok_rule = fail_rule
        else:
            ok_rule = context_rule(
                referee,
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
            referee.exact_mismatch(rule_id, what, code, "result", outcome.result)
        referee.mismatch(rule_id, what, code, "result", outcome.result)

    ok = referee.settle(
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
        referee.coverage.hit("unknown session read")


def check_runs(referee: Referee, sid: str) -> None:
    """list_runs of a session, unfiltered."""
    outcome = referee.model.list_runs(sid)
    code = repro.lazy_call("list_runs", sid)
    value, error = referee.call(lambda: referee.store.list_runs(sid))
    rule_id = context_rule(referee, "RUN-2", sid)
    if rule_id == "RUN-2" and referee.last.op == "save_run":
        rule_id = "RUN-1"

    def check(found: Any) -> None:
        if isinstance(found, list):
            got = [getattr(r, "id", None) for r in found]
            if len(set(got)) != len(got):
                referee.mismatch(
                    "IDEM-2",
                    f"list_runs({sid!r}) holds one run twice: {got!r}",
                    code,
                    "[r.id for r in result]",
                    [r.id for r in outcome.result],
                )
        compare_list(
            referee, rule_id, "list_runs", code, outcome.result, found, "[r.id for r in result]"
        )

    referee.settle(
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


def check_active_run(referee: Referee, sid: str, *, in_invariant: bool) -> None:
    """get_active_run of a session."""
    outcome = referee.model.get_active_run(sid)
    code = repro.lazy_call("get_active_run", sid)
    value, error = referee.call(lambda: referee.store.get_active_run(sid))
    rule_id = "RUN-3"
    if in_invariant and referee.last.op == "delete_session":
        rule_id = "SES-4"
    elif in_invariant and referee.last.rejected_rule is not None:
        rule_id = referee.last.rejected_rule

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
            referee.mismatch(
                rule_id,
                what,
                code,
                "getattr(result, 'id', None)",
                getattr(expected, "id", None),
            )
        referee.mismatch(rule_id, what, code, "result", expected)

    ok = referee.settle(
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
        referee.coverage.hit("active run found")


def check_all_sessions(referee: Referee) -> None:
    """list_sessions, unfiltered."""
    outcome = referee.model.list_sessions()
    code = repro.lazy_call("list_sessions")
    value, error = referee.call(lambda: referee.store.list_sessions())
    last = referee.last
    rule_id = context_rule(referee, "SES-3", None)
    if rule_id == "SES-3" and last.op == "save_session":
        rule_id = "SES-1"

    def check(found: Any) -> None:
        if isinstance(found, list):
            got = [getattr(s, "id", None) for s in found]
            want = [s.id for s in outcome.result]
            if len(set(got)) != len(got):
                referee.mismatch(
                    "IDEM-2",
                    f"list_sessions holds one session twice: {got!r}",
                    code,
                    "[s.id for s in result]",
                    want,
                )
            hidden = [s.id for s in outcome.result if s.deleted_at and s.id not in got]
            if hidden:
                referee.mismatch(
                    "SES-5",
                    f"list_sessions hides the soft-deleted sessions "
                    f"{hidden!r}; deleted_at is plain data",
                    code,
                    "[s.id for s in result]",
                    want,
                )
        compare_list(
            referee, rule_id, "list_sessions", code, outcome.result, found, "[s.id for s in result]"
        )

    referee.settle(
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


def check_run(referee: Referee, rid: str, *, in_invariant: bool) -> None:
    """get_run of a pool id."""
    outcome = referee.model.get_run(rid)
    code = repro.lazy_call("get_run", rid)
    value, error = referee.call(lambda: referee.store.get_run(rid))
    rule_id = context_rule(referee, "RUN-1", None) if in_invariant else "RUN-1"

    def check(found: Any) -> None:
        difference = exact_difference(outcome.result, found)
        if difference is not None:
            what = f"get_run({rid!r}) differs from the last saved run: {difference}"
            if outcome.result == found:
                referee.exact_mismatch(rule_id, what, code, "result", outcome.result)
            referee.mismatch(rule_id, what, code, "result", outcome.result)

    referee.settle(
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
