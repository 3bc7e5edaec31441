"""An independent model of the Maintenance port (MNT-1..MNT-5) over the session store's state.

Written from query-maintenance.md section 3 alone: it shares no code with the reference stores.
Numbers come from a counter per session that pruning never lowers; a pruned id is forgotten, so
appending it again stores it anew (MNT-3).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from pytest_asm_contract._contract.maintenance import RetentionPolicy
from pytest_asm_contract._contract.model import Event, EventType, Session, SessionStatus
from pytest_asm_contract._contract.query import ArtifactMeta

_ENDED = (SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED)
_NEVER_PRUNED = (EventType.RUN_STARTED, EventType.RUN_COMPLETED)


@dataclasses.dataclass
class Counts:
    """What ``execute`` reports, as the model computes it."""

    soft: int = 0
    hard: int = 0
    pruned: int = 0
    artifacts: int = 0


class MaintenanceModel:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.logs: dict[str, list[Event]] = {}
        self.counters: dict[str, int] = {}
        self.owner: dict[str, str] = {}  # stored event id -> its session
        self.artifacts: dict[str, ArtifactMeta] = {}

    # -- the session store's writes -------------------------------------------------------------
    def save_session(self, session: Session) -> None:
        self.sessions[session.id] = session

    def append_events(self, batch: list[Event]) -> list[Event]:
        returned = []
        for event in batch:
            if event.id in self.owner:
                stored = next(e for e in self.logs[event.session_id] if e.id == event.id)
                returned.append(stored)
                continue
            number = self.counters.get(event.session_id, 0) + 1
            self.counters[event.session_id] = number
            stored = event.model_copy(update={"sequence_number": number})
            self.logs.setdefault(event.session_id, []).append(stored)
            self.owner[event.id] = event.session_id
            returned.append(stored)
        return returned

    def delete_session(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        for event in self.logs.pop(session_id, []):
            del self.owner[event.id]
        self.counters.pop(session_id, None)
        for key in [k for k, m in self.artifacts.items() if m.session_id == session_id]:
            del self.artifacts[key]

    def register(self, meta: ArtifactMeta) -> None:
        self.artifacts[meta.id] = meta

    # -- maintenance ----------------------------------------------------------------------------
    def soft_delete(self, policy: RetentionPolicy, now: datetime) -> int:
        marked = [s for s in self.sessions.values() if self._expired(s, policy, now)]
        for session in marked:
            self.sessions[session.id] = session.model_copy(update={"deleted_at": now})
        return len(marked)

    @staticmethod
    def _expired(session: Session, policy: RetentionPolicy, now: datetime) -> bool:
        if session.deleted_at is not None or session.status in policy.exempt_statuses:
            return False
        if set(session.tags) & set(policy.exempt_tags):
            return False
        by_age = policy.max_session_age_days
        if by_age is not None and session.created_at < now - timedelta(days=by_age):
            return True
        ended = policy.max_completed_session_age_days
        return (
            ended is not None
            and session.status in _ENDED
            and session.updated_at < now - timedelta(days=ended)
        )

    def hard_delete(self, policy: RetentionPolicy, now: datetime) -> int:
        days = policy.hard_delete_after_days
        if days is None:
            return 0
        cutoff = now - timedelta(days=days)
        due = [
            s.id
            for s in self.sessions.values()
            if s.deleted_at is not None and s.deleted_at < cutoff
        ]
        for session_id in due:
            self.delete_session(session_id)
        return len(due)

    def prune(self, session_id: str, policy: RetentionPolicy) -> int:
        limit = policy.max_events_per_session
        log = self.logs.get(session_id, [])
        if limit is None or len(log) <= limit:
            return 0
        candidates = [e for e in log if e.type not in _NEVER_PRUNED]
        first = set(policy.prune_event_types_first)
        ranked = sorted(candidates, key=lambda e: (e.type not in first, e.sequence_number))
        doomed = {e.id for e in ranked[: len(log) - limit]}
        self.logs[session_id] = [e for e in log if e.id not in doomed]
        for event_id in doomed:
            del self.owner[event_id]
        return len(doomed)

    def clean_orphaned_artifacts(self) -> int:
        orphans = [k for k, m in self.artifacts.items() if m.session_id not in self.sessions]
        for key in orphans:
            del self.artifacts[key]
        return len(orphans)

    def execute(self, policy: RetentionPolicy, now: datetime) -> Counts:
        counts = Counts(self.soft_delete(policy, now), self.hard_delete(policy, now))
        for session_id in sorted(self.logs):
            counts.pruned += self.prune(session_id, policy)
        counts.artifacts = self.clean_orphaned_artifacts()
        return counts


__all__ = ["Counts", "MaintenanceModel"]
