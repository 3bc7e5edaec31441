"""Input checks every store needs, raising the contract's ``StoreError`` codes.

Reference stores use these helpers, and third-party stores may too: they turn whatever a caller
passes (including models built with ``model_construct``, which skips validation) into valid models,
and check list, page and event-filter arguments exactly as rules SES-3, RUN-2 and EVT-3 say.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from pytest_asm_contract._contract.errors import ErrorCode, StoreError, validation_error
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

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
E = TypeVar("E", bound=Any)


def _from_pydantic(error: ValidationError, what: str) -> StoreError:
    problems = [
        {"loc": ".".join(str(part) for part in item["loc"]), "msg": item["msg"]}
        for item in error.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{p['loc'] or '<value>'}: {p['msg']}" for p in problems[:3])
    store_error = validation_error(f"invalid {what}: {summary}", errors=problems)
    store_error.__cause__ = error
    return store_error


def as_model(model: type[M], value: object, what: str | None = None) -> M:
    """``value`` as a fully validated ``model`` (instances are re-validated, never trusted)."""
    name = what or model.__name__
    if not isinstance(value, model):
        raise validation_error(
            f"{name} must be of type {model.__name__}, got {type(value).__name__}",
            expected=model.__name__,
            got=type(value).__name__,
        )
    try:
        return model.model_validate(dict(value.__dict__))
    except ValidationError as error:
        raise _from_pydantic(error, name) from error


def as_session(value: object) -> Session:
    return as_model(Session, value)


def as_run(value: object) -> Run:
    return as_model(Run, value)


def as_event(value: object) -> Event:
    return as_model(Event, value)


_EVENT_LIST = TypeAdapter(list[Event])


def as_events(values: object) -> list[Event]:
    """BATCH-3: every element validated up front, so an invalid one rejects the whole batch."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise validation_error(
            f"expected a list of Event, got {type(values).__name__}", got=type(values).__name__
        )
    items = values if isinstance(values, list) else list(values)
    if all(isinstance(value, Event) for value in items):
        # One validator call for the whole batch (it reads the fields, builds new models): the
        # same checks as one call per event, a quarter less time. An invalid element is named
        # by the per-element path below.
        try:
            return _EVENT_LIST.validate_python([value.__dict__ for value in items])
        except ValidationError:
            pass
    events = []
    for index, value in enumerate(items):
        try:
            events.append(as_model(Event, value, f"event at index {index}"))
        except StoreError as error:
            error.details.setdefault("index", index)
            raise
    return events


def as_execution_result(value: object) -> ExecutionResult:
    """FLUSH-2: a valid ExecutionResult whose run and events all belong to its session and run."""
    if isinstance(value, ExecutionResult):
        fields: Mapping[str, Any] = value.__dict__
    elif isinstance(value, Mapping):
        fields = value
    else:
        raise validation_error(
            f"flush expects an ExecutionResult or a mapping, got {type(value).__name__}",
            got=type(value).__name__,
        )
    missing = [key for key in ("session", "run", "events") if key not in fields]
    if missing:
        raise validation_error(f"flush payload lacks {', '.join(missing)}", missing=missing)
    result = ExecutionResult(
        session=coerce(Session, fields["session"], "flushed session"),
        run=coerce(Run, fields["run"], "flushed run"),
        events=as_events(fields["events"]),
        provider_metadata=fields.get("provider_metadata", {}),
    )
    check_flush_membership(result)
    return result


def coerce(model: type[M], value: object, what: str) -> M:
    """``value`` as a ``model``: a mapping is validated into one, an instance re-validated;
    anything else, or a value that does not validate, raises ``validation_error``."""
    if isinstance(value, Mapping):
        try:
            return model.model_validate(value)
        except ValidationError as error:
            raise _from_pydantic(error, what) from error
    return as_model(model, value, what)


def check_flush_membership(result: ExecutionResult) -> None:
    session_id, run = result.session.id, result.run
    if run.session_id != session_id:
        raise StoreError(
            ErrorCode.SESSION_MISMATCH,
            f"run {run.id!r} belongs to session {run.session_id!r}, not {session_id!r}",
            {"run_id": run.id, "expected": session_id, "got": run.session_id},
        )
    for index, event in enumerate(result.events):
        if event.session_id != session_id:
            raise StoreError(
                ErrorCode.SESSION_MISMATCH,
                f"event {event.id!r} (index {index}) belongs to session {event.session_id!r}, "
                f"not the flushed session {session_id!r}",
                {"event_id": event.id, "index": index, "expected": session_id},
            )
        if event.run_id is not None and event.run_id != run.id:
            raise StoreError(
                ErrorCode.RUN_MISMATCH,
                f"event {event.id!r} (index {index}) belongs to run {event.run_id!r}, "
                f"not the flushed run {run.id!r}",
                {"event_id": event.id, "index": index, "expected": run.id},
            )


def check_id(value: object, what: str = "id") -> str:
    if not isinstance(value, str) or not value or len(value) > ID_MAX_LENGTH:
        raise validation_error(
            f"{what} must be a non-empty string of at most {ID_MAX_LENGTH} characters, "
            f"got {value!r:.80}",
            field=what,
        )
    return value


def _non_negative(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise validation_error(f"{name} must be a non-negative integer, got {value!r}", field=name)
    return value


@dataclasses.dataclass(frozen=True)
class Page:
    """Offset and limit, applied after filtering and ordering (SES-3, RUN-2)."""

    limit: int | None = None
    offset: int = 0

    @classmethod
    def of(cls, limit: object = None, offset: object = None) -> Page:
        return cls(_non_negative(limit, "limit"), _non_negative(offset, "offset") or 0)

    def apply(self, items: Sequence[T]) -> list[T]:
        end = None if self.limit is None else self.offset + self.limit
        return list(items[self.offset : end])


def _enum_filter(enum_type: type[E], value: object, name: str) -> E | None:
    if value is None:
        return None
    try:
        member: E = enum_type(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_type)
        raise validation_error(
            f"unknown {name} {value!r}; expected one of: {allowed}", field=name
        ) from None
    return member


def session_status_filter(value: object) -> SessionStatus | None:
    return _enum_filter(SessionStatus, value, "status")


def run_status_filter(value: object) -> RunStatus | None:
    return _enum_filter(RunStatus, value, "status")


@dataclasses.dataclass(frozen=True)
class EventQuery:
    """The filters of get_events (EVT-3), validated; ``limit`` applies after all the others."""

    run_id: str | None = None
    type: EventType | None = None
    since: datetime | None = None
    after: int | None = None
    before: int | None = None
    limit: int | None = None
    wait_timeout_ms: int | None = None

    @classmethod
    def of(
        cls,
        *,
        run_id: object = None,
        type: object = None,
        since: object = None,
        after: object = None,
        before: object = None,
        limit: object = None,
        wait_timeout_ms: object = None,
    ) -> EventQuery:
        if since is not None and (not isinstance(since, datetime) or since.utcoffset() is None):
            raise validation_error(
                f"since must be a timezone-aware datetime, got {since!r}", field="since"
            )
        return cls(
            run_id=None if run_id is None else check_id(run_id, "run_id"),
            type=_enum_filter(EventType, type, "event type"),
            since=since,
            after=_non_negative(after, "after"),
            before=_non_negative(before, "before"),
            limit=_non_negative(limit, "limit"),
            wait_timeout_ms=_non_negative(wait_timeout_ms, "wait_timeout_ms"),
        )

    def matches(self, event: Event) -> bool:
        """Every filter but ``limit``; ``event`` must carry its sequence number."""
        seq = event.sequence_number or 0
        return (
            (self.run_id is None or event.run_id == self.run_id)
            and (self.type is None or event.type == self.type)
            and (self.since is None or event.timestamp >= self.since)
            and (self.after is None or seq > self.after)
            and (self.before is None or seq < self.before)
        )

    def apply(self, events: Iterable[Event]) -> list[Event]:
        """Filter events already in sequence order, then apply ``limit``."""
        if self.limit == 0:
            return []
        selected = []
        for event in events:
            if self.matches(event):
                selected.append(event)
                if self.limit is not None and len(selected) >= self.limit:
                    break
        return selected
