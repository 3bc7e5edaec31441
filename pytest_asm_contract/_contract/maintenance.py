"""The Maintenance port's types (query-maintenance.md section 3): the retention policy, the
report of a maintenance run, and the ``Maintenance`` Protocol.

Like the QueryAPI, a maintenance object is a plain object built from the store it serves. Every
method takes ``now`` (an aware datetime; default the current UTC time) so that retention can be
checked against a fixed clock. A policy is validated before anything changes: bad values raise
``validation_error``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol, runtime_checkable

from pydantic import Field, StrictInt, StrictStr

from pytest_asm_contract._contract.model import EventType, SessionStatus, _Frozen
from pytest_asm_contract._contract.validation import coerce

#: A count or a number of days: a positive int (None, where allowed, means no limit).
Positive = Annotated[StrictInt, Field(gt=0)]
Count = Annotated[StrictInt, Field(ge=0)]


class RetentionPolicy(_Frozen):
    """What maintenance removes, and what it never touches."""

    #: Soft-delete sessions of any status created longer ago than this.
    max_session_age_days: Positive | None = None
    #: Soft-delete terminal sessions (completed, failed, cancelled) not updated for this long.
    max_completed_session_age_days: Positive | None = 90
    #: Prune a session's events down to this many.
    max_events_per_session: Positive | None = None
    #: Hard-delete sessions soft-deleted longer ago than this.
    hard_delete_after_days: Positive | None = 30
    exempt_statuses: list[SessionStatus] = Field(
        default_factory=lambda: [SessionStatus.ACTIVE, SessionStatus.PAUSED]
    )
    exempt_tags: list[StrictStr] = Field(default_factory=lambda: ["pinned"])
    #: Pruned before any other type, lowest sequence first.
    prune_event_types_first: list[EventType] = Field(
        default_factory=lambda: [EventType.MESSAGE_STREAMED, EventType.TOKEN_USAGE_UPDATED]
    )
    batch_size: Positive = 100


class MaintenanceReport(_Frozen):
    """What one ``execute`` did, step by step."""

    sessions_soft_deleted: Count = 0
    sessions_hard_deleted: Count = 0
    events_pruned: Count = 0
    artifacts_cleaned: Count = 0
    orphaned_sequences_cleaned: Count = 0
    duration_ms: float = Field(default=0.0, ge=0)
    #: One line per step that failed; the other steps still ran.
    errors: list[StrictStr] = Field(default_factory=list)


def as_retention_policy(value: object) -> RetentionPolicy:
    """``value`` as a ``RetentionPolicy`` (a dict is validated), else ``validation_error``."""
    return coerce(RetentionPolicy, value, "retention policy")


@runtime_checkable
class Maintenance(Protocol):
    """Retention, pruning and integrity checks over one store's backend (MNT-1..MNT-7)."""

    def execute(
        self, policy: RetentionPolicy, *, now: datetime | None = None
    ) -> MaintenanceReport: ...

    def soft_delete_expired_sessions(
        self, policy: RetentionPolicy, *, now: datetime | None = None
    ) -> int: ...

    def hard_delete_expired_sessions(
        self, policy: RetentionPolicy, *, now: datetime | None = None
    ) -> int: ...

    def prune_session_events(self, session_id: str, policy: RetentionPolicy) -> int: ...

    def clean_orphaned_artifacts(self) -> int: ...

    def health_check(self) -> list[str]: ...


#: The Maintenance port's operations, as the spec names them.
MAINTENANCE_OPERATIONS: tuple[str, ...] = (
    "execute",
    "soft_delete_expired_sessions",
    "hard_delete_expired_sessions",
    "prune_session_events",
    "clean_orphaned_artifacts",
    "health_check",
)

__all__ = [
    "MAINTENANCE_OPERATIONS",
    "Maintenance",
    "MaintenanceReport",
    "RetentionPolicy",
    "as_retention_policy",
]
