"""The Maintenance port's public methods, once for every reference implementation.

Each method validates its arguments (a policy, a clock) before anything changes, then hands them
to the implementation's hooks; ``execute`` runs the five steps in the spec's order and records a
failing step in the report's ``errors`` while the others still run (MNT-4). What is due and what
a prune removes is decided here, by plain functions over plain values, so that every backend
selects alike; an implementation holds only how it reads and writes its backend, each session's
delete or prune in one atomic step (MNT-7).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pytest_asm_contract._contract.errors import StoreError, validation_error
from pytest_asm_contract._contract.maintenance import (
    MaintenanceReport,
    RetentionPolicy,
    as_retention_policy,
)
from pytest_asm_contract._contract.model import EventType, Session, SessionStatus
from pytest_asm_contract._contract.validation import check_id

TERMINAL = frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED})
#: Never pruned, whatever the policy lists (MNT-3).
KEPT_TYPES = frozenset({EventType.RUN_STARTED, EventType.RUN_COMPLETED})


def as_now(now: object) -> datetime:
    """``now`` as an aware UTC datetime (None: the current time), else ``validation_error``."""
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise validation_error(f"now must be a timezone-aware datetime, got {now!r:.80}")
    return now.astimezone(UTC)


@dataclass(frozen=True)
class Cutoffs:
    """The moments before which a policy's ages have passed (None: that limit is off)."""

    created_before: datetime | None  # max_session_age_days
    completed_before: datetime | None  # max_completed_session_age_days (updated_at)
    deleted_before: datetime | None  # hard_delete_after_days (deleted_at)

    @classmethod
    def of(cls, policy: RetentionPolicy, now: datetime) -> Cutoffs:
        def before(days: int | None) -> datetime | None:
            if days is None:
                return None
            try:
                return now - timedelta(days=days)
            except OverflowError:  # before the first representable moment: nothing is that old
                return None

        return cls(
            before(policy.max_session_age_days),
            before(policy.max_completed_session_age_days),
            before(policy.hard_delete_after_days),
        )


def soft_delete_due(session: Session, policy: RetentionPolicy, cutoffs: Cutoffs) -> bool:
    """MNT-1: not yet soft-deleted, not exempt, and past one of the two ages ("older than" is
    strict: a session exactly at the cutoff stays)."""
    if session.deleted_at is not None or session.status in policy.exempt_statuses:
        return False
    if any(tag in policy.exempt_tags for tag in session.tags):
        return False
    created = cutoffs.created_before
    completed = cutoffs.completed_before
    return (created is not None and session.created_at < created) or (
        completed is not None and session.status in TERMINAL and session.updated_at < completed
    )


def hard_delete_due(session: Session, cutoffs: Cutoffs) -> bool:
    """MNT-2: soft-deleted longer ago than ``hard_delete_after_days``."""
    deleted = cutoffs.deleted_before
    return deleted is not None and session.deleted_at is not None and session.deleted_at < deleted


def prune_selection(
    events: Iterable[tuple[str, EventType | str, int]], policy: RetentionPolicy
) -> list[str]:
    """MNT-3: the ids to remove from a session holding ``events`` as (id, type, sequence): the
    listed types first, lowest sequence first, then the lowest-sequence others; never
    run_started or run_completed; as many as the session holds over the limit, or as many as are
    removable when fewer are."""
    limit = policy.max_events_per_session
    held = sorted(events, key=lambda event: event[2])
    if limit is None or len(held) <= limit:
        return []
    # EventType is a StrEnum: a type read back as its string value compares and hashes alike
    listed = set(policy.prune_event_types_first)
    removable = [e for e in held if e[1] not in KEPT_TYPES]
    first = [e for e in removable if e[1] in listed]
    then = [e for e in removable if e[1] not in listed]
    return [event_id for event_id, _, _ in (first + then)[: len(held) - limit]]


class MaintenanceFront:
    """The six operations of the Maintenance port (MNT-1..MNT-7), validated, over hooks."""

    # -- the hooks an implementation provides --------------------------------------------------
    def _soft_delete(
        self, policy: RetentionPolicy, cutoffs: Cutoffs, now: datetime
    ) -> Iterator[int]:
        """Mark what ``soft_delete_due`` selects, in atomic steps (batches of ``batch_size``),
        yielding how many each step marked once it committed."""
        raise NotImplementedError

    def _hard_delete_due(self, cutoffs: Cutoffs) -> Sequence[str]:
        """Ids of the sessions ``hard_delete_due`` selects now."""
        raise NotImplementedError

    def _hard_delete(self, session_id: str, cutoffs: Cutoffs) -> bool:
        """Delete the session as ``delete_session`` does if, checked in the same atomic step, it
        is still due (a client may have saved it since); whether it did."""
        raise NotImplementedError

    def _prune(self, session_id: str, policy: RetentionPolicy) -> int:
        """Remove ``prune_selection`` of the session's events, read and removed in one atomic
        step; how many."""
        raise NotImplementedError

    def _sessions_over(self, limit: int) -> Sequence[str]:
        """Ids of the sessions holding more than ``limit`` events."""
        raise NotImplementedError

    def _clean_orphaned_artifacts(self) -> int:
        raise NotImplementedError

    def _clean_orphaned_counters(self) -> int:
        raise NotImplementedError

    def _health_check(self) -> list[str]:
        raise NotImplementedError

    # -- the port -------------------------------------------------------------------------------
    def soft_delete_expired_sessions(self, policy: object, *, now: object = None) -> int:
        checked, moment = as_retention_policy(policy), as_now(now)
        return sum(self._soft_delete(checked, Cutoffs.of(checked, moment), moment))

    def hard_delete_expired_sessions(self, policy: object, *, now: object = None) -> int:
        checked, moment = as_retention_policy(policy), as_now(now)
        return self._hard_delete_all(Cutoffs.of(checked, moment), None)

    def prune_session_events(self, session_id: str, policy: object) -> int:
        checked_id, checked = check_id(session_id, "session_id"), as_retention_policy(policy)
        if checked.max_events_per_session is None:
            return 0
        return self._prune(checked_id, checked)

    def clean_orphaned_artifacts(self) -> int:
        return self._clean_orphaned_artifacts()

    def health_check(self) -> list[str]:
        return self._health_check()

    def execute(self, policy: object, *, now: object = None) -> MaintenanceReport:
        checked, moment = as_retention_policy(policy), as_now(now)
        started = time.perf_counter()
        cutoffs = Cutoffs.of(checked, moment)
        errors: list[str] = []

        def step(name: str, run: Callable[[], int]) -> int:
            try:
                return run()
            except StoreError as error:
                errors.append(f"{name}: {error}")
                return 0

        return MaintenanceReport(
            sessions_soft_deleted=_counted(
                "soft_delete_expired_sessions", self._soft_delete(checked, cutoffs, moment), errors
            ),
            sessions_hard_deleted=step(
                "hard_delete_expired_sessions", lambda: self._hard_delete_all(cutoffs, errors)
            ),
            events_pruned=step("prune_session_events", lambda: self._prune_all(checked, errors)),
            artifacts_cleaned=step("clean_orphaned_artifacts", self._clean_orphaned_artifacts),
            orphaned_sequences_cleaned=step(
                "clean_orphaned_sequences", self._clean_orphaned_counters
            ),
            duration_ms=(time.perf_counter() - started) * 1000,
            errors=errors,
        )

    def _hard_delete_all(self, cutoffs: Cutoffs, errors: list[str] | None) -> int:
        due = self._hard_delete_due(cutoffs)
        return _each("hard delete", due, lambda sid: int(self._hard_delete(sid, cutoffs)), errors)

    def _prune_all(self, policy: RetentionPolicy, errors: list[str]) -> int:
        limit = policy.max_events_per_session
        if limit is None:
            return 0
        over = self._sessions_over(limit)
        return _each("prune", over, lambda sid: self._prune(sid, policy), errors)


def _counted(what: str, steps: Iterator[int], errors: list[str]) -> int:
    """The sum of the counts of the steps that committed; a failing step goes to ``errors``."""
    done = 0
    try:
        for count in steps:
            done += count
    except StoreError as error:
        errors.append(f"{what}: {error}")
    return done


def _each(
    what: str, session_ids: Sequence[str], run: Callable[[str], int], errors: list[str] | None
) -> int:
    """Sum of ``run`` over the sessions, each its own atomic step. With ``errors`` (``execute``),
    a session that fails is recorded there and the others still run, so the count stays the
    effect; without, the first failure is raised."""
    done = 0
    for session_id in session_ids:
        try:
            done += run(session_id)
        except StoreError as error:
            if errors is None:
                raise
            errors.append(f"{what} of session {session_id!r}: {error}")
    return done


__all__ = [
    "KEPT_TYPES",
    "TERMINAL",
    "Cutoffs",
    "MaintenanceFront",
    "as_now",
    "hard_delete_due",
    "prune_selection",
    "soft_delete_due",
]
