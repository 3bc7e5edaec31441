"""Immutable data model of the port (contract section 1), as frozen pydantic v2 models."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Annotated, TypeAlias

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
)
from pydantic import Strict as StrictMode
from pydantic.types import FiniteFloat, StrictInt
from typing_extensions import TypeAliasType

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
ID_MAX_LENGTH = 255


class SessionStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"

    @property
    def terminal(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING)


class EventType(enum.StrEnum):
    SESSION_CREATED = "session_created"
    SESSION_STARTED = "session_started"
    SESSION_PAUSED = "session_paused"
    SESSION_RESUMED = "session_resumed"
    SESSION_COMPLETED = "session_completed"
    SESSION_FAILED = "session_failed"
    SESSION_CANCELLED = "session_cancelled"
    RUN_STARTED = "run_started"
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    RUN_CANCELLED = "run_cancelled"
    RUN_TIMEOUT = "run_timeout"
    MESSAGE_SENT = "message_sent"
    MESSAGE_RECEIVED = "message_received"
    MESSAGE_STREAMED = "message_streamed"
    TOOL_CALL_STARTED = "tool_call_started"
    TOOL_CALL_COMPLETED = "tool_call_completed"
    TOOL_CALL_FAILED = "tool_call_failed"
    ERROR_OCCURRED = "error_occurred"
    ERROR_RECOVERED = "error_recovered"
    TOKEN_USAGE_UPDATED = "token_usage_updated"
    TURN_COMPLETED = "turn_completed"
    WORKSPACE_SNAPSHOT_TAKEN = "workspace_snapshot_taken"
    WORKSPACE_DIFF_COMPUTED = "workspace_diff_computed"
    POLICY_VIOLATION = "policy_violation"
    TOOL_APPROVAL_REQUESTED = "tool_approval_requested"
    TOOL_APPROVAL_GRANTED = "tool_approval_granted"
    TOOL_APPROVAL_DENIED = "tool_approval_denied"


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A timezone-aware datetime, normalised to UTC (naive values are rejected).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
#: Ids: any non-empty string of at most 255 characters, compared exactly.
Id = Annotated[StrictStr, Field(min_length=1, max_length=ID_MAX_LENGTH)]
Int64 = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]


def _only_float(value: object) -> object:
    # StrictFloat still accepts ints (and turns 2**63 into a float); JSON trees keep them apart.
    if type(value) is not float:
        raise ValueError("expected a float")
    return value


def _array_only(value: object) -> object:
    # Lax lists also take sets and generators, whose order nobody chose (tags keep their order).
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


JsonFloat = Annotated[float, BeforeValidator(_only_float), Field(allow_inf_nan=False)]

#: A JSON array: a list, or a tuple (stored as a list, as ``json.dumps`` writes it). Strict,
#: so that a set, a generator or a dict view is refused rather than turned into a list in an
#: order nobody chose.
JsonList = Annotated[list["JsonValue"], StrictMode()]
JsonTuple = Annotated[tuple["JsonValue", ...], StrictMode(), AfterValidator(list)]

#: A JSON tree: None, bool, 64-bit int, finite float, str, array, dict with str keys. The union
#: is tried left to right and the first branch that accepts a value wins: a JSON array from
#: text is validated once (a "smart" union would also try the tuple branch, at every level of
#: nesting, doubling the work per level), and the float branch, whose Python validator raises
#: for every other type, comes last so that strings and containers never reach it.
JsonValue = TypeAliasType(
    "JsonValue",
    "Annotated[StrictBool | Int64 | StrictStr | JsonList | dict[str, JsonValue] | JsonTuple"
    " | JsonFloat | None, Field(union_mode='left_to_right')]",
)
JsonObject: TypeAlias = dict[str, JsonValue]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class Session(_Frozen):
    id: Id = Field(default_factory=lambda: _new_id("ses_"))
    agent_id: Id
    status: SessionStatus = SessionStatus.PENDING
    parent_session_id: Id | None = None
    metadata: JsonObject = Field(default_factory=dict)
    context: JsonObject = Field(default_factory=dict)
    tags: Annotated[list[StrictStr], BeforeValidator(_array_only)] = Field(default_factory=list)
    created_at: UtcDatetime = Field(default_factory=utc_now)
    updated_at: UtcDatetime = Field(default_factory=utc_now)
    deleted_at: UtcDatetime | None = None


class Run(_Frozen):
    id: Id = Field(default_factory=lambda: _new_id("run_"))
    session_id: Id
    status: RunStatus = RunStatus.PENDING
    input: JsonObject | None = None
    output: JsonObject | None = None
    error: JsonObject | None = None
    metadata: JsonObject = Field(default_factory=dict)
    turn_count: Annotated[StrictInt, Field(ge=0, le=INT64_MAX)] = 0
    token_usage: JsonObject = Field(default_factory=dict)
    cost_usd: FiniteFloat | None = None
    started_at: UtcDatetime = Field(default_factory=utc_now)
    ended_at: UtcDatetime | None = None
    provider: StrictStr | None = None
    provider_metadata: JsonObject = Field(default_factory=dict)


class Event(_Frozen):
    id: Id = Field(default_factory=lambda: _new_id("evt_"))
    type: EventType
    timestamp: UtcDatetime = Field(default_factory=utc_now)
    session_id: Id
    run_id: Id | None = None
    data: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    sequence_number: Annotated[StrictInt, Field(ge=1, le=INT64_MAX)] | None = None
    schema_version: Annotated[StrictInt, Field(ge=1, le=INT64_MAX)] = 1
    provider: StrictStr | None = None
    correlation_id: StrictStr | None = None

    def with_sequence(self, sequence_number: int) -> Event:
        """The same event carrying the number a store assigned to it.

        What ``model_copy(update=...)`` returns, built directly: stores call this once per
        stored event, and the generic copy costs more than twice as much.
        """
        copy = object.__new__(type(self))
        values = self.__dict__.copy()
        values["sequence_number"] = sequence_number
        object.__setattr__(copy, "__dict__", values)
        object.__setattr__(
            copy, "__pydantic_fields_set__", self.__pydantic_fields_set__ | {"sequence_number"}
        )
        extra, private = self.__pydantic_extra__, self.__pydantic_private__
        object.__setattr__(copy, "__pydantic_extra__", None if extra is None else dict(extra))
        object.__setattr__(copy, "__pydantic_private__", None if private is None else dict(private))
        return copy


class ExecutionResult(_Frozen):
    session: Session
    run: Run
    events: list[Event] = Field(default_factory=list)
    provider_metadata: JsonObject = Field(default_factory=dict)


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "Event",
    "EventType",
    "ExecutionResult",
    "Id",
    "JsonObject",
    "JsonValue",
    "Run",
    "RunStatus",
    "Session",
    "SessionStatus",
    "UtcDatetime",
    "utc_now",
]
