"""The judged writes: each runs one write on the store and on the model, and judges the result.

Functions of the :class:`~.referee.Referee`, handed to :meth:`~.referee.Referee.act` with the
inputs a rule drew. Each notes what the write touches (for the read-back that follows), runs it,
checks what it returned and records the coverage it reached. The ones that may fail return
whether the store took the write.
"""

from __future__ import annotations

from typing import Any

from pytest_asm_contract._contract.model import Event, ExecutionResult, Run, Session
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.comparisons import compare_appended
from pytest_asm_contract._machine.constants import MUTATION_KEY
from pytest_asm_contract._machine.oracle import NEW
from pytest_asm_contract._machine.referee import Referee


# -- sessions and runs --------------------------------------------------------------------------
def save_session(referee: Referee, session: Session) -> bool:
    replacing = session.id in referee.model.sessions
    referee.begin_write("save_session", "SES-1", [session.id])
    outcome = referee.model.save_session(session)
    code = repro.lazy_call("save_session", session)
    value, error = referee.call(lambda: referee.store.save_session(session))
    ok = referee.settle(
        outcome, code, value, error, op="save_session", ok_rule="SES-1", fail_rule="SES-1"
    )
    if ok:
        referee.coverage.hit("session saved")
        if replacing:
            referee.coverage.hit("session replaced by a new save")
        referee.note_nul(session)
    return ok


def delete_session(referee: Referee, sid: str) -> None:
    model = referee.model
    had_content = bool(model.events_of(sid) or model.runs_of(sid))
    referee.begin_write("delete_session", "SES-4", [sid])
    referee.last.deleted = sid
    outcome = model.delete_session(sid)
    removed = {e.id: e for e in model.events_of(sid)}
    code = repro.lazy_call("delete_session", sid)
    value, error = referee.call(lambda: referee.store.delete_session(sid))
    if referee.settle(
        outcome, code, value, error, op="delete_session", ok_rule="SES-4", fail_rule="SES-4"
    ):
        if had_content:
            referee.coverage.hit("session with runs or events deleted")
        if removed:
            referee.restarted[sid] = referee.ever_numbered[sid]
            referee.removed.update(removed)


def save_run(referee: Referee, run: Run) -> bool:
    referee.begin_write("save_run", "RUN-1", [run.session_id], [run.id])
    outcome = referee.model.save_run(run)
    code = repro.lazy_call("save_run", run)
    value, error = referee.call(lambda: referee.store.save_run(run))
    ok = referee.settle(
        outcome, code, value, error, op="save_run", ok_rule="RUN-1", fail_rule="RUN-1"
    )
    if ok:
        referee.coverage.hit("run saved")
        referee.note_nul(run)
    return ok


# -- appends ------------------------------------------------------------------------------------
def append_single(referee: Referee, event: Event, *, with_sequence: bool) -> None:
    """append_event_with_sequence, or append_event (which must return None)."""
    op = "append_event_with_sequence" if with_sequence else "append_event"
    op_rule = "SEQ-1" if with_sequence else "EVT-1"
    session_id, event_id = getattr(event, "session_id", None), getattr(event, "id", None)
    referee.begin_write(op, op_rule, [session_id] if isinstance(session_id, str) else [])
    referee.last.inputs = {event_id: event} if isinstance(event_id, str) else {}
    outcome = referee.model.append_one(event)
    if outcome.kinds:
        referee.last.kinds = {event.id: outcome.kinds[0]}
    code = repro.lazy_call(op, event)
    method = getattr(referee.store, op)
    value, error = referee.call(lambda: method(event))

    def check(returned: Any) -> None:
        if not with_sequence:
            if returned is not None:
                referee.mismatch(
                    "EVT-1",
                    f"append_event returned {returned!r:.80}, not None",
                    code,
                    "result",
                    None,
                )
            return
        compare_appended(
            referee, code, [outcome.result], returned, outcome.kinds, [event], op_rule, single=True
        )

    if referee.settle(
        outcome, code, value, error, op=op, ok_rule=op_rule, fail_rule=op_rule, check=check
    ):
        referee.after_append(outcome, [event])
        referee.coverage.hit(
            "append_event_with_sequence stored an event"
            if with_sequence
            else "append_event stored an event"
        )
    elif outcome.must_fail:
        referee.coverage.hit("invalid single event rejected")


def append_batch(referee: Referee, batch: Any, *, op_label: str = "append_events") -> bool:
    """append_events of ``batch`` (any value: invalid ones must be rejected as a whole)."""
    items: list[Any] = batch if isinstance(batch, list) else []
    sessions = sorted(
        {e.session_id for e in items if isinstance(e, Event) and isinstance(e.session_id, str)}
    )
    referee.begin_write("append_events", "BATCH-1", sessions)
    valid = [e for e in items if isinstance(e, Event)]
    referee.last.inputs = {e.id: e for e in reversed(valid)}
    referee.last.mixed = len(sessions) > 1
    outcome = referee.model.append_batch(batch)
    if outcome.succeeds:
        referee.last.kinds = {}
        for event, kind in zip(valid, outcome.kinds, strict=True):
            referee.last.kinds.setdefault(event.id, kind)
    code = repro.lazy_call("append_events", list(items) if items else batch)
    value, error = referee.call(lambda: referee.store.append_events(batch))

    def check(returned: Any) -> None:
        compare_appended(
            referee, code, outcome.result, returned, outcome.kinds, items, "BATCH-1", single=False
        )

    ok = referee.settle(
        outcome,
        code,
        value,
        error,
        op=op_label,
        ok_rule="BATCH-1",
        fail_rule="BATCH-3",
        check=check,
    )
    if ok:
        referee.after_append(outcome, valid)
        if not items:
            referee.coverage.hit("empty batch")
        if NEW in outcome.kinds:
            referee.coverage.hit("batch stored new events")
        if len(sessions) > 1:
            referee.coverage.hit("batch mixing sessions")
    elif outcome.must_fail:
        referee.coverage.hit("invalid batch rejected")
    return ok


# -- flush --------------------------------------------------------------------------------------
def flush(
    referee: Referee, payload: Any, result: ExecutionResult | None, *, again: bool = False
) -> bool:
    """flush of ``payload`` (``result``: the same, when it is a valid ExecutionResult);
    ``again``: exactly the last flushed payload once more (FLUSH-4)."""
    parts = payload.__dict__ if isinstance(payload, ExecutionResult) else payload
    session_ids: list[str] = []
    run_ids: list[str] = []
    if isinstance(parts, dict):
        for key, target in (("session", session_ids), ("run", run_ids)):
            part = parts.get(key)
            if isinstance(part, Session | Run) and isinstance(part.id, str):
                target.append(part.id)
        if isinstance(parts.get("run"), Run) and isinstance(parts["run"].session_id, str):
            session_ids.append(parts["run"].session_id)
        for event in parts.get("events") or ():
            if isinstance(event, Event) and isinstance(event.session_id, str):
                session_ids.append(event.session_id)
    referee.begin_write("flush", "FLUSH-4" if again else "FLUSH-1", session_ids, run_ids)
    events = list(result.events) if result is not None else []
    if again and isinstance(parts, dict):
        events = list(parts["events"])
    referee.last.inputs = {e.id: e for e in reversed(events) if isinstance(e, Event)}
    outcome = referee.model.flush(payload)
    flushed = parts["events"] if outcome.succeeds and isinstance(parts, dict) else []
    if outcome.succeeds:
        for event, kind in zip(flushed, outcome.kinds, strict=True):
            referee.last.kinds.setdefault(event.id, kind)
    code = repro.lazy_call("flush", payload)
    value, error = referee.call(lambda: referee.store.flush(payload))
    ok = referee.settle(
        outcome,
        code,
        value,
        error,
        op="flush",
        ok_rule="FLUSH-4" if again else "FLUSH-1",
        fail_rule="FLUSH-2",
    )
    if ok:
        referee.after_append(outcome, list(flushed))
        referee.coverage.hit("identical flush repeated" if again else "flush stored")
    elif outcome.must_fail:
        referee.coverage.hit("invalid flush rejected")
    return ok


# -- a caller that changes what it got back -----------------------------------------------------
def mutate(referee: Referee, what: str, sid: str) -> None:
    """Change the first event (``what="events"``) or the session a read returned (EVT-4, SES-1).

    Not a store write, but judged like one: the read-back that follows must not see the change.
    """
    target: Any = None
    if what == "events":
        code = f"store.get_events({repro.render(sid)})[0].data[{MUTATION_KEY!r}] = True"
        value, error = referee.call(lambda: referee.store.get_events(sid))
        if error is None and isinstance(value, list) and value and isinstance(value[0], Event):
            target = value[0].data
    else:
        code = f"store.get_session({repro.render(sid)}).metadata[{MUTATION_KEY!r}] = True"
        value, error = referee.call(lambda: referee.store.get_session(sid))
        if error is None and isinstance(value, Session):
            target = value.metadata
    if not isinstance(target, dict):
        return  # the comparisons report a store that cannot read this back
    target[MUTATION_KEY] = True
    referee.begin_write("mutate_returned", "EVT-4", [sid])
    referee.record(code)
    referee.coverage.hit("caller mutated a returned object")
