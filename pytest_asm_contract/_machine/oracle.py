"""An independent, pure model of the session-store contract: what a correct store would do.

The state machine (:mod:`pytest_asm_contract._machine`) runs every operation against the store
under test and against this model, and compares. The model is written from the contract text
alone; it shares no code with the reference stores or with the validation helpers,
so a mistake there cannot hide the same mistake in a store.

Every write returns an :class:`Outcome`: the value a successful call returns and the model state
after it, plus the error codes the contract allows instead. Some operations have two correct
outcomes: an append that repeats an id stored under another session may return the original event
or raise ``already_exists`` (IDEM-1), and a value the backend cannot hold (a NUL character) may be
rejected with ``validation_error`` (DATA-2). When the store takes the error branch the model does
not change, and the next comparison checks that the store did not change either.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.model import (
    ID_MAX_LENGTH,
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)

# The value helpers moved to ``values``; importing them from here keeps working.
from pytest_asm_contract._machine.values import confusable as confusable
from pytest_asm_contract._machine.values import contains_nul as contains_nul
from pytest_asm_contract._machine.values import exact_difference as exact_difference
from pytest_asm_contract._machine.values import plain as plain
from pytest_asm_contract._machine.values import validated as validated

VALIDATION = ErrorCode.VALIDATION_ERROR
NO_ERRORS: frozenset[ErrorCode] = frozenset()

# How an element of an append or flush relates to what was stored before it.
NEW = "new"  # a new id: stored with the next number of its session
KNOWN = "known"  # an id stored before, in the same session: the original comes back (IDEM-1)
FOREIGN = "foreign"  # an id stored (or earlier in the batch) under another session (IDEM-1)
REPEAT = "repeat"  # an id that already appeared earlier in the same batch (IDEM-3)


# -- argument checks (SES-3, RUN-2, EVT-3) ------------------------------------------------------
def _count_ok(value: object) -> bool:
    return value is None or (type(value) is int and value >= 0)


def _enum_ok(
    enum_type: type[SessionStatus] | type[RunStatus] | type[EventType], value: object
) -> bool:
    return value is None or (isinstance(value, str) and value in {m.value for m in enum_type})


def _page(items: list[Any], limit: int | None, offset: int | None) -> list[Any]:
    start = offset or 0
    return items[start:] if limit is None else items[start : start + limit]


def id_ok(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= ID_MAX_LENGTH


# -- outcomes -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the contract allows one operation to do.

    ``succeeds``: whether a successful call is allowed; then it returns ``result`` and leaves the
    model in state ``after``. ``errors``: codes the call may raise instead (leaving the state as it
    was); when ``succeeds`` is false it must raise one of them. ``reasons`` says why it may or must
    fail. ``kinds`` classifies each appended element (NEW, KNOWN, FOREIGN, REPEAT).
    """

    succeeds: bool
    result: Any = None
    after: ContractModel | None = None
    errors: frozenset[ErrorCode] = NO_ERRORS
    reasons: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    @property
    def must_fail(self) -> bool:
        return not self.succeeds


def _fail(codes: Iterable[ErrorCode], *reasons: str) -> Outcome:
    return Outcome(succeeds=False, errors=frozenset(codes), reasons=reasons)


def _read(result: Any, *args: Any) -> Outcome:
    """A read that succeeds with ``result``; NUL in an argument may be rejected (DATA-2)."""
    if contains_nul(list(args)):
        return Outcome(True, result, errors=frozenset({VALIDATION}), reasons=("NUL in argument",))
    return Outcome(True, result)


class ContractModel:
    """The state a correct store holds, and what each port operation does to it.

    ``referential_integrity``: model a store that declares that capability (run and event writes
    for an unknown session raise session_not_found).
    """

    def __init__(self, *, referential_integrity: bool = False) -> None:
        self.referential_integrity = referential_integrity
        self.sessions: dict[str, Session] = {}
        self.runs: dict[str, Run] = {}
        self.logs: dict[str, list[Event]] = {}  # per session, in sequence order (index + 1)
        self.by_id: dict[str, Event] = {}  # event ids are global (IDEM-1)

    def clone(self) -> ContractModel:
        other = copy.copy(self)
        other.sessions = dict(self.sessions)
        other.runs = dict(self.runs)
        other.logs = {sid: list(log) for sid, log in self.logs.items()}
        other.by_id = dict(self.by_id)
        return other

    # -- reads ----------------------------------------------------------------------------------
    def session_ids(self) -> set[str]:
        """Every session id the model holds anything for."""
        return (
            set(self.sessions)
            | {sid for sid, log in self.logs.items() if log}
            | {r.session_id for r in self.runs.values()}
        )

    def events_of(self, session_id: str) -> list[Event]:
        return list(self.logs.get(session_id, ()))

    def latest_sequence(self, session_id: str) -> int:
        return len(self.logs.get(session_id, ()))

    def get_session(self, session_id: str) -> Outcome:
        session = self.sessions.get(session_id)
        if session is None:
            codes = {ErrorCode.SESSION_NOT_FOUND}
            if contains_nul(session_id):
                codes.add(VALIDATION)
            return _fail(codes, f"no session {session_id!r}")
        return _read(session, session_id)

    def list_sessions(
        self,
        *,
        status: object = None,
        agent_id: object = None,
        limit: object = None,
        offset: object = None,
    ) -> Outcome:
        if not (_enum_ok(SessionStatus, status) and _count_ok(limit) and _count_ok(offset)):
            return _fail({VALIDATION}, "invalid status, limit or offset")
        chosen = sorted(
            (
                s
                for s in self.sessions.values()
                if (status is None or s.status == status)
                and (agent_id is None or s.agent_id == agent_id)
            ),
            key=lambda s: (s.created_at, s.id),
        )
        return _read(_page(chosen, limit, offset), agent_id)  # type: ignore[arg-type]

    def get_run(self, run_id: str) -> Outcome:
        run = self.runs.get(run_id)
        if run is None:
            codes = {ErrorCode.RUN_NOT_FOUND}
            if contains_nul(run_id):
                codes.add(VALIDATION)
            return _fail(codes, f"no run {run_id!r}")
        return _read(run, run_id)

    def runs_of(self, session_id: str) -> list[Run]:
        return sorted(
            (r for r in self.runs.values() if r.session_id == session_id),
            key=lambda r: (r.started_at, r.id),
        )

    def list_runs(
        self, session_id: str, *, status: object = None, limit: object = None, offset: object = None
    ) -> Outcome:
        if not (_enum_ok(RunStatus, status) and _count_ok(limit) and _count_ok(offset)):
            return _fail({VALIDATION}, "invalid status, limit or offset")
        chosen = [r for r in self.runs_of(session_id) if status is None or r.status == status]
        return _read(_page(chosen, limit, offset), session_id)  # type: ignore[arg-type]

    def active_run(self, session_id: str) -> Run | None:
        running = [r for r in self.runs_of(session_id) if r.status == RunStatus.RUNNING]
        return max(running, key=lambda r: (r.started_at, r.id)) if running else None

    def get_active_run(self, session_id: str) -> Outcome:
        return _read(self.active_run(session_id), session_id)

    def get_events(
        self,
        session_id: str,
        *,
        run_id: object = None,
        type: object = None,
        since: object = None,
        after: object = None,
        before: object = None,
        limit: object = None,
        wait_timeout_ms: object = None,
    ) -> Outcome:
        valid = (
            (run_id is None or id_ok(run_id))
            and _enum_ok(EventType, type)
            and (since is None or (isinstance(since, datetime) and since.utcoffset() is not None))
            and all(_count_ok(v) for v in (after, before, limit, wait_timeout_ms))
        )
        if not valid:
            return _fail({VALIDATION}, "invalid filter")
        chosen = [
            e
            for e in self.logs.get(session_id, ())
            if (run_id is None or e.run_id == run_id)
            and (type is None or e.type == type)
            and (since is None or e.timestamp >= since)  # type: ignore[operator]
            and (after is None or (e.sequence_number or 0) > after)  # type: ignore[operator]
            and (before is None or (e.sequence_number or 0) < before)  # type: ignore[operator]
        ]
        if limit is not None:
            chosen = chosen[: int(limit)]  # type: ignore[call-overload]
        return _read(chosen, session_id, run_id)

    def get_latest_sequence(self, session_id: str) -> Outcome:
        return _read(self.latest_sequence(session_id), session_id)

    # -- writes ---------------------------------------------------------------------------------
    def save_session(self, value: object) -> Outcome:
        session = validated(Session, value)
        if session is None:
            return _fail({VALIDATION}, "not a valid Session")
        after = self.clone()
        after.sessions[session.id] = session
        return self._may_reject_nul(Outcome(True, None, after), value)

    def delete_session(self, session_id: str) -> Outcome:
        if not id_ok(session_id):
            return _fail({VALIDATION}, "invalid session id")
        after = self.clone()
        after.sessions.pop(session_id, None)
        for run_id in [r.id for r in after.runs.values() if r.session_id == session_id]:
            del after.runs[run_id]
        for event in after.logs.pop(session_id, []):
            del after.by_id[event.id]
        return self._may_reject_nul(Outcome(True, None, after), session_id)

    def save_run(self, value: object) -> Outcome:
        run = validated(Run, value)
        if run is None:
            return _fail({VALIDATION}, "not a valid Run")
        if self.referential_integrity and run.session_id not in self.sessions:
            return _fail({ErrorCode.SESSION_NOT_FOUND}, f"no session {run.session_id!r}")
        after = self.clone()
        after.runs[run.id] = run
        return self._may_reject_nul(Outcome(True, None, after), value)

    def append_one(self, value: object) -> Outcome:
        """append_event_with_sequence (and append_event, which returns None instead)."""
        event = validated(Event, value)
        if event is None:
            return _fail({VALIDATION}, "not a valid Event")
        outcome = self._append([event], value)
        if outcome.succeeds:
            outcome = dataclasses.replace(outcome, result=outcome.result[0])
        return outcome

    def append_batch(self, values: object) -> Outcome:
        """append_events: all elements validated first (BATCH-3), then stored in order."""
        if isinstance(values, str | bytes | Mapping) or not isinstance(values, Sequence):
            return _fail({VALIDATION}, "not a list of events")
        batch = [validated(Event, value) for value in values]
        bad = [index for index, event in enumerate(batch) if event is None]
        if bad:
            return _fail({VALIDATION}, f"invalid element at index {bad[0]}")
        return self._append([e for e in batch if e is not None], values)

    def _append(self, batch: list[Event], original: object) -> Outcome:
        if self.referential_integrity:
            unknown = sorted({e.session_id for e in batch} - set(self.sessions))
            if unknown:
                return _fail({ErrorCode.SESSION_NOT_FOUND}, f"no session {unknown[0]!r}")
        after = self.clone()
        stored, kinds, foreign = after._store_all(batch, before=self)
        errors = {ErrorCode.ALREADY_EXISTS} if foreign else set()
        outcome = Outcome(True, stored, after, frozenset(errors), kinds=kinds)
        if foreign:
            outcome = dataclasses.replace(outcome, reasons=("id stored under another session",))
        return self._may_reject_nul(outcome, original)

    def _store_all(
        self, batch: list[Event], before: ContractModel
    ) -> tuple[list[Event], tuple[str, ...], bool]:
        stored: list[Event] = []
        kinds: list[str] = []
        seen: set[str] = set()
        foreign = False
        for event in batch:
            existing = self.by_id.get(event.id)
            if existing is not None:
                if existing.session_id != event.session_id:
                    kind = FOREIGN
                elif event.id in seen and event.id not in before.by_id:
                    kind = REPEAT
                else:
                    kind = KNOWN
                foreign = foreign or existing.session_id != event.session_id
                stored.append(existing)
            else:
                log = self.logs.setdefault(event.session_id, [])
                new = event.model_copy(update={"sequence_number": len(log) + 1})
                log.append(new)
                self.by_id[new.id] = new
                stored.append(new)
                kind = NEW
            kinds.append(kind)
            seen.add(event.id)
        return stored, tuple(kinds), foreign

    def flush(self, payload: object) -> Outcome:
        """flush: validate everything (FLUSH-2), then session, run and events in one step."""
        problems, result = flush_problems(payload)
        if problems or result is None:
            return _fail(problems or {VALIDATION}, "invalid flush payload")
        after = self.clone()
        after.sessions[result.session.id] = result.session
        after.runs[result.run.id] = result.run
        _, kinds, foreign = after._store_all(list(result.events), before=self)
        errors = {ErrorCode.ALREADY_EXISTS} if foreign else set()
        outcome = Outcome(True, None, after, frozenset(errors), kinds=kinds)
        return self._may_reject_nul(outcome, payload)

    @staticmethod
    def _may_reject_nul(outcome: Outcome, value: object) -> Outcome:
        if contains_nul(value):
            return dataclasses.replace(
                outcome,
                errors=outcome.errors | {VALIDATION},
                reasons=(*outcome.reasons, "a NUL character the backend may not hold (DATA-2)"),
            )
        return outcome


def flush_problems(payload: object) -> tuple[set[ErrorCode], ExecutionResult | None]:
    """Every error code an invalid flush payload may raise (a store may check in any order).

    Returns the codes (empty for a valid payload) and, when valid, the validated result.
    """
    if isinstance(payload, ExecutionResult):
        fields: Mapping[str, Any] = payload.__dict__
    elif isinstance(payload, Mapping):
        fields = payload
    else:
        return {VALIDATION}, None
    if any(key not in fields for key in ("session", "run", "events")):
        return {VALIDATION}, None
    problems: set[ErrorCode] = set()
    session = validated(Session, fields["session"])
    run = validated(Run, fields["run"])
    raw_events = fields["events"]
    events: list[Event | None] = []
    if isinstance(raw_events, str | bytes | Mapping) or not isinstance(raw_events, Sequence):
        problems.add(VALIDATION)
    else:
        events = [validated(Event, e) for e in raw_events]
    if session is None or run is None or any(e is None for e in events):
        problems.add(VALIDATION)
    if session is not None:
        if run is not None and run.session_id != session.id:
            problems.add(ErrorCode.SESSION_MISMATCH)
        for event in events:
            if event is None:
                continue
            if event.session_id != session.id:
                problems.add(ErrorCode.SESSION_MISMATCH)
            if run is not None and event.run_id is not None and event.run_id != run.id:
                problems.add(ErrorCode.RUN_MISMATCH)
    metadata = fields.get("provider_metadata", {})
    if problems or session is None or run is None:
        return problems, None
    try:
        result = ExecutionResult(
            session=session,
            run=run,
            events=[e for e in events if e is not None],
            provider_metadata=metadata,
        )
    except ValidationError:
        return {VALIDATION}, None
    return problems, result
