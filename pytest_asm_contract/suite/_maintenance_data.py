"""Builders and snapshots shared by the MNT checks (``test_maintenance.py``,
``test_maintenance_pruning.py``, ``test_maintenance_execute.py``).

Every check runs against a fixed clock (``NOW``) and states what it expects by hand: the kit
shares no selection code with the stores it checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.maintenance import RetentionPolicy
from pytest_asm_contract._contract.model import Event, EventType, Run, Session, SessionStatus
from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract.suite._builders import a_run, an_event

#: The clock every maintenance call of the suite is given.
NOW = datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
TERMINAL = (SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED)
NOT_TERMINAL = (SessionStatus.PENDING, SessionStatus.ACTIVE, SessionStatus.PAUSED)

#: The limits of ``RetentionPolicy`` that select something; ``a_policy`` turns them all off.
_LIMITS_OFF: dict[str, Any] = {
    "max_session_age_days": None,
    "max_completed_session_age_days": None,
    "max_events_per_session": None,
    "hard_delete_after_days": None,
}


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def a_policy(**fields: Any) -> RetentionPolicy:
    """A policy that selects nothing but what ``fields`` turn on (exemptions as the defaults)."""
    return RetentionPolicy(**{**_LIMITS_OFF, **fields})


def a_stored_session(session_id: str, **fields: Any) -> Session:
    """A session with every field set, so that a change to any of them shows."""
    fields.setdefault("agent_id", "agent-mnt")
    fields.setdefault("parent_session_id", "ses-parent")
    fields.setdefault("metadata", {"n": 2**63 - 1, "x": 0.1, "nested": {"l": [1, "two", None]}})
    fields.setdefault("context", {"goal": "keep every field"})
    fields.setdefault("tags", ["zeta", "alpha"])
    fields.setdefault("created_at", days_ago(400))
    fields.setdefault("updated_at", days_ago(200))
    return Session(id=session_id, **fields)


def a_meta(session_id: str, artifact_id: str) -> ArtifactMeta:
    return ArtifactMeta(id=artifact_id, session_id=session_id, key=f"{session_id}/{artifact_id}")


def typed_events(store: Any, session_id: str, types: Iterable[str]) -> list[Event]:
    """Append one event per type (ids ``<session>-<n>``, n from 1); the stored events."""
    events = [
        an_event(session_id, type=EventType(kind), id=f"{session_id}-{n}", data={"n": n})
        for n, kind in enumerate(types, 1)
    ]
    return list(store.append_events(events))


def numbers(events: Iterable[Event]) -> list[int | None]:
    return [e.sequence_number for e in events]


def session_or_none(store: Any, session_id: str) -> Session | None:
    """The stored session, or None when the store raises session_not_found."""
    try:
        found: Session = store.get_session(session_id)
    except StoreError as error:
        if error.code is not ErrorCode.SESSION_NOT_FOUND:
            raise
        return None
    return found


@dataclasses.dataclass(frozen=True)
class Held:
    """What the port shows of one session id: its record, runs, events, counter and (with a
    registry) artifact metadata."""

    session: Session | None
    runs: list[Run]
    events: list[Event]
    latest: int
    artifacts: list[ArtifactMeta] | None

    @classmethod
    def read(cls, store: Any, session_id: str, registry: Any = None) -> Held:
        return cls(
            session_or_none(store, session_id),
            list(store.list_runs(session_id)),
            list(store.get_events(session_id)),
            store.get_latest_sequence(session_id),
            None if registry is None else list(registry.list_by_session(session_id)),
        )

    @property
    def gone(self) -> bool:
        """Removed as delete_session removes a session (metadata checked where read)."""
        return (
            self.session is None
            and not self.runs
            and not self.events
            and self.latest == 0
            and not self.artifacts
        )


def snapshot(
    store: Any, session_ids: Iterable[str], registry: Any = None, *, listing: bool = True
) -> dict[str, Any]:
    """Everything the port shows of these session ids, and (``listing``) the list of every
    session."""
    held: dict[str, Any] = {sid: Held.read(store, sid, registry) for sid in session_ids}
    if listing:
        held["<list_sessions>"] = store.list_sessions()
    return held


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The keys of two snapshots whose contents differ."""
    return sorted(key for key in before if before[key] != after.get(key))


def soft_delete_marks(
    store: Any, maintenance: Any, policy: RetentionPolicy, *sessions: Session
) -> tuple[int, set[str]]:
    """Save ``sessions`` and soft delete at ``NOW``: what it returned and which ids it marked.
    Fails when a session's deleted_at moved to anything but ``NOW``."""
    for session in sessions:
        store.save_session(session)
    marked: int = maintenance.soft_delete_expired_sessions(policy, now=NOW)
    found: set[str] = set()
    for session in sessions:
        stamp = store.get_session(session.id).deleted_at
        if stamp != session.deleted_at:
            assert stamp == NOW, (
                f"MNT-1: soft delete sets deleted_at to now ({NOW}); {session.id!r} has {stamp}"
            )
            found.add(session.id)
    return marked, found


#: A session's events for the pruning checks: numbers 1..8, by type. The listed types (the
#: default prune_event_types_first) hold 2, 4, 6, 8; the others 3, 5; 1 and 7 are never pruned.
PRUNE_TYPES = (
    "run_started",
    "message_streamed",
    "message_sent",
    "token_usage_updated",
    "message_sent",
    "message_streamed",
    "run_completed",
    "message_streamed",
)


def prune_world(
    store: Any, session_id: str = "p", types: Iterable[str] = PRUNE_TYPES
) -> list[Event]:
    """An active session holding one event per type (ids ``p-1``, ...); the stored events."""
    store.save_session(a_stored_session(session_id, status=SessionStatus.ACTIVE))
    return typed_events(store, session_id, types)


# -- the world of the execute checks, and what each step must do to it, by hand ----------------
EXECUTE_POLICY = a_policy(
    max_session_age_days=365,
    max_completed_session_age_days=30,
    max_events_per_session=3,
    hard_delete_after_days=30,
)
SOFT = frozenset({"x-soft-completed", "x-soft-old", "x-soft-busy"})
HARD = frozenset({"x-hard", "x-hard-empty"})
#: Sessions execute prunes to 3 events: how many each holds before.
PRUNED = {"x-soft-busy": 5, "x-prune": 6}
UNTOUCHED = frozenset({"x-active", "x-recent", "x-deleted-recently"})
#: Artifact metadata of sessions that do not exist (with a registry).
GHOSTS = ("art-ghost-1", "art-ghost-2")


def execute_world(store: Any, registry: Any) -> list[str]:
    """Sessions for every step of execute under ``EXECUTE_POLICY`` (and, with a registry,
    metadata of existing and missing sessions); the session ids to watch."""
    completed, active = SessionStatus.COMPLETED, SessionStatus.ACTIVE
    young = {"created_at": days_ago(100)}  # within max_session_age_days
    sessions = [
        a_stored_session("x-soft-completed", status=completed, **young, updated_at=days_ago(31)),
        a_stored_session("x-soft-old", created_at=days_ago(400), updated_at=days_ago(1)),
        a_stored_session(
            "x-soft-busy", status=SessionStatus.FAILED, **young, updated_at=days_ago(40)
        ),
        a_stored_session("x-active", status=active, created_at=days_ago(900)),
        a_stored_session("x-recent", status=completed, **young, updated_at=days_ago(10)),
        a_stored_session("x-deleted-recently", status=completed, deleted_at=days_ago(10)),
        a_stored_session("x-hard", status=completed, deleted_at=days_ago(31)),
        a_stored_session("x-hard-empty", deleted_at=days_ago(100)),
        a_stored_session("x-prune", status=active, updated_at=days_ago(1)),
    ]
    for session in sessions:
        store.save_session(session)
    store.save_run(a_run("x-hard", id="x-hard-run"))
    # over the limit too, but hard deleted before pruning runs: its events count for no prune
    typed_events(store, "x-hard", ["message_sent"] * 6)
    for session_id, held in (*PRUNED.items(), ("x-active", 3)):
        typed_events(store, session_id, ["message_sent"] * held)
    if registry is not None:
        for artifact_id in GHOSTS:
            registry.register(a_meta("x-ghost", artifact_id))
        for session_id in ("x-soft-completed", "x-deleted-recently", "x-active"):
            registry.register(a_meta(session_id, f"art-{session_id}"))
    return [s.id for s in sessions] + ["x-ghost"]


_ACTIVE = EXECUTE_POLICY.model_dump(mode="json")
#: Policies that do not validate (section 3: counts are positive ints, statuses and event types
#: valid values), each beside limits that would otherwise change ``execute_world``.
INVALID_POLICIES: list[tuple[str, object]] = [
    (f"{field}={value!r}", {**_ACTIVE, field: value})
    for field, value in (
        ("max_events_per_session", 0),
        ("max_session_age_days", -1),
        ("max_completed_session_age_days", 0),
        ("hard_delete_after_days", -30),
        ("batch_size", 0),
        ("max_events_per_session", "3"),
        ("max_events_per_session", 2.5),
        ("hard_delete_after_days", True),
        ("exempt_statuses", ["archived"]),
        ("exempt_statuses", "active"),
        ("exempt_tags", [7]),
        ("prune_event_types_first", ["message_whispered"]),
        ("no_such_limit", 1),
    )
] + [
    ("None", None),
    ("a-string", "max_events_per_session=3"),
    ("an-int", 3),
    ("pairs", [("max_events_per_session", 3)]),
    ("unvalidated-model", RetentionPolicy.model_construct(max_events_per_session=0)),
]


def optional_registry(request: pytest.FixtureRequest, store: Any) -> Any:
    """The artifact registry built from ``store`` when one is configured, else None: the checks
    that use one for part of what they check run without it too."""
    if getattr(store, "asm_artifact_registry_unavailable", None):
        return None
    try:
        factory = request.getfixturevalue("asm_artifact_registry_factory")
    except pytest.skip.Exception:
        return None
    return factory(store)


__all__ = [
    "EXECUTE_POLICY",
    "GHOSTS",
    "HARD",
    "INVALID_POLICIES",
    "MICROSECOND",
    "NOT_TERMINAL",
    "NOW",
    "PRUNED",
    "PRUNE_TYPES",
    "SOFT",
    "TERMINAL",
    "UNTOUCHED",
    "Held",
    "a_meta",
    "a_policy",
    "a_stored_session",
    "changed",
    "days_ago",
    "execute_world",
    "numbers",
    "optional_registry",
    "prune_world",
    "session_or_none",
    "snapshot",
    "soft_delete_marks",
    "typed_events",
]
