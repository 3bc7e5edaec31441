"""MNT-1, MNT-2, MNT-5, MNT-6: retention, orphaned artifact metadata and the health check of the
Maintenance object built from the store under test (``--asm-maintenance``).

Each check reads the outcome through the session store's own reads and compares it with what
it computed by hand, on a fixed clock. Pruning (MNT-3, MNT-7) is checked in
``test_maintenance_pruning.py``, execute (MNT-4) in ``test_maintenance_execute.py``.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.maintenance import RetentionPolicy
from pytest_asm_contract._contract.model import ExecutionResult, RunStatus, Session, SessionStatus
from pytest_asm_contract._machine.values import exact_difference
from pytest_asm_contract.suite._builders import a_run, an_event, expect_error
from pytest_asm_contract.suite._maintenance_data import (
    EXECUTE_POLICY,
    MICROSECOND,
    NOT_TERMINAL,
    NOW,
    PRUNE_TYPES,
    TERMINAL,
    Held,
    a_meta,
    a_policy,
    a_stored_session,
    changed,
    days_ago,
    optional_registry,
    snapshot,
    soft_delete_marks,
    typed_events,
)

COMPLETED = SessionStatus.COMPLETED


class TestMaintenance:
    # -- MNT-1: soft delete ---------------------------------------------------------------------
    @rule("MNT-1")
    @pytest.mark.parametrize("status", TERMINAL, ids=str)
    def test_terminal_session_past_the_completed_age_is_soft_deleted(
        self, asm_store: Any, asm_maintenance: Any, status: SessionStatus
    ) -> None:
        due = a_stored_session("due", status=status, updated_at=days_ago(11))
        fresh = a_stored_session("fresh", status=status, updated_at=days_ago(9))
        policy = a_policy(max_completed_session_age_days=10)
        marked, found = soft_delete_marks(asm_store, asm_maintenance, policy, due, fresh)
        assert (marked, found) == (1, {"due"}), (
            f"MNT-1: a {status.value} session not updated for more than "
            "max_completed_session_age_days is soft deleted, a fresher one kept: expected "
            f"{{'due'}} marked and 1 returned, found {found} and {marked}"
        )

    @rule("MNT-1")
    @pytest.mark.parametrize("status", NOT_TERMINAL, ids=str)
    def test_completed_age_applies_to_terminal_sessions_only(
        self, asm_store: Any, asm_maintenance: Any, status: SessionStatus
    ) -> None:
        stale = a_stored_session("stale", status=status, updated_at=days_ago(500))
        policy = a_policy(max_completed_session_age_days=10, exempt_statuses=[])
        marked, found = soft_delete_marks(asm_store, asm_maintenance, policy, stale)
        assert (marked, found) == (0, set()), (
            "MNT-1: max_completed_session_age_days selects terminal sessions only; a "
            f"{status.value} one was marked (returned {marked})"
        )

    @rule("MNT-1")
    @pytest.mark.parametrize("status", [*TERMINAL, *NOT_TERMINAL], ids=str)
    def test_session_of_any_status_past_the_session_age_is_soft_deleted(
        self, asm_store: Any, asm_maintenance: Any, status: SessionStatus
    ) -> None:
        old = a_stored_session("old", status=status, created_at=days_ago(6), updated_at=NOW)
        young = a_stored_session("young", status=status, created_at=days_ago(4), updated_at=NOW)
        policy = a_policy(max_session_age_days=5, exempt_statuses=[])
        marked, found = soft_delete_marks(asm_store, asm_maintenance, policy, old, young)
        assert (marked, found) == (1, {"old"}), (
            f"MNT-1: a {status.value} session created longer ago than max_session_age_days is "
            f"soft deleted whatever its updated_at; marked {found}, returned {marked}"
        )

    @rule("MNT-1")
    @pytest.mark.parametrize(
        ("exempt", "expected"),
        [
            (None, {"pending", "completed"}),
            (["completed", "pending"], {"active", "paused"}),
            ([], {"pending", "completed", "active", "paused"}),
        ],
        ids=["default", "custom", "none"],
    )
    def test_exempt_statuses_are_never_soft_deleted(
        self, asm_store: Any, asm_maintenance: Any, exempt: list[str] | None, expected: set[str]
    ) -> None:
        sessions = [
            a_stored_session(status, status=SessionStatus(status), updated_at=days_ago(300))
            for status in ("pending", "completed", "active", "paused")
        ]
        limits: dict[str, Any] = {"max_session_age_days": 5, "max_completed_session_age_days": 5}
        if exempt is not None:  # None: the default, active and paused
            limits["exempt_statuses"] = exempt
        marked, found = soft_delete_marks(asm_store, asm_maintenance, a_policy(**limits), *sessions)
        assert (marked, found) == (len(expected), expected), (
            f"MNT-1: with exempt_statuses={exempt or ['active', 'paused']} exactly "
            f"{sorted(expected)} are due; marked {sorted(found)}, returned {marked}"
        )

    @rule("MNT-1")
    @pytest.mark.parametrize(
        ("exempt_tags", "kept"),
        [(None, {"t-pinned"}), (["keep", "hold"], {"t-hold"}), ([], set())],
        ids=["default-pinned", "custom", "none"],
    )
    def test_sessions_with_an_exempt_tag_are_never_soft_deleted(
        self, asm_store: Any, asm_maintenance: Any, exempt_tags: list[str] | None, kept: set[str]
    ) -> None:
        tags = {
            "t-pinned": ["x", "pinned"],
            "t-cased": ["Pinned"],
            "t-spaced": ["pinned "],
            "t-hold": ["hold", "y"],
            "t-plain": [],
        }
        sessions = [a_stored_session(sid, status=COMPLETED, tags=t) for sid, t in tags.items()]
        limits: dict[str, Any] = {"max_completed_session_age_days": 5}
        if exempt_tags is not None:  # None: the default, pinned
            limits["exempt_tags"] = exempt_tags
        marked, found = soft_delete_marks(asm_store, asm_maintenance, a_policy(**limits), *sessions)
        expected = set(tags) - kept
        assert (marked, found) == (len(expected), expected), (
            f"MNT-1: a session with a tag in exempt_tags ({exempt_tags or ['pinned']}, compared "
            f"exactly) is kept, the others go: kept {sorted(set(tags) - found)}, expected "
            f"{sorted(kept)} (returned {marked})"
        )

    @rule("MNT-1")
    def test_soft_deleted_sessions_are_left_as_they_are(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        done = [
            a_stored_session(f"d-{n}", status=COMPLETED, deleted_at=days_ago(n)) for n in (1, 1000)
        ]
        policy = a_policy(max_session_age_days=5, max_completed_session_age_days=5)
        marked, found = soft_delete_marks(asm_store, asm_maintenance, policy, *done)
        assert (marked, found) == (0, set()), (
            f"MNT-1: a session already soft deleted keeps its deleted_at; moved {sorted(found)}, "
            f"returned {marked}"
        )

    @rule("MNT-1")
    def test_older_than_is_strict(self, asm_store: Any, asm_maintenance: Any) -> None:
        pending = SessionStatus.PENDING
        past_completed, past_age = days_ago(10) - MICROSECOND, days_ago(20) - MICROSECOND
        sessions = [
            a_stored_session("c-at", status=COMPLETED, created_at=NOW, updated_at=days_ago(10)),
            a_stored_session("c-past", status=COMPLETED, created_at=NOW, updated_at=past_completed),
            a_stored_session("a-at", status=pending, created_at=days_ago(20), updated_at=NOW),
            a_stored_session("a-past", status=pending, created_at=past_age, updated_at=NOW),
        ]
        policy = a_policy(max_session_age_days=20, max_completed_session_age_days=10)
        marked, found = soft_delete_marks(asm_store, asm_maintenance, policy, *sessions)
        assert (marked, found) == (2, {"c-past", "a-past"}), (
            "MNT-1: 'older than' is strict: a session exactly at a cutoff stays, one a "
            f"microsecond older goes; marked {sorted(found)}, returned {marked}"
        )

    @rule("MNT-1")
    @pytest.mark.parametrize(
        ("limits", "expected"),
        [
            ({}, set()),
            ({"max_session_age_days": 50}, {"ancient"}),
            ({"max_completed_session_age_days": 5}, {"finished"}),
            (
                {"max_session_age_days": 50, "max_completed_session_age_days": 5},
                {"ancient", "finished"},
            ),
        ],
        ids=["both-none", "age-only", "completed-only", "both"],
    )
    def test_a_limit_set_to_none_selects_nothing(
        self, asm_store: Any, asm_maintenance: Any, limits: dict[str, int], expected: set[str]
    ) -> None:
        ancient = a_stored_session("ancient", created_at=days_ago(9000), updated_at=days_ago(1))
        finished = a_stored_session(
            "finished", status=COMPLETED, created_at=days_ago(40), updated_at=days_ago(40)
        )
        policy = a_policy(**limits)
        marked, found = soft_delete_marks(asm_store, asm_maintenance, policy, ancient, finished)
        assert (marked, found) == (len(expected), expected), (
            f"MNT-1: a limit set to None selects nothing; with {limits or 'both None'} expected "
            f"{sorted(expected)} marked, found {sorted(found)} (returned {marked})"
        )

    @rule("MNT-1")
    def test_the_default_policy(self, asm_store: Any, asm_maintenance: Any) -> None:
        sessions = [
            a_stored_session("due", status=COMPLETED, updated_at=days_ago(91)),
            a_stored_session(
                "due-just", status=SessionStatus.FAILED, updated_at=days_ago(90) - MICROSECOND
            ),
            a_stored_session("at", status=SessionStatus.CANCELLED, updated_at=days_ago(90)),
            a_stored_session("fresh", status=COMPLETED, updated_at=days_ago(89)),
            a_stored_session("pinned", status=COMPLETED, tags=["pinned"], updated_at=days_ago(91)),
            a_stored_session("paused", status=SessionStatus.PAUSED, created_at=days_ago(9000)),
            a_stored_session("pending", created_at=days_ago(9000)),
        ]
        marked, found = soft_delete_marks(asm_store, asm_maintenance, RetentionPolicy(), *sessions)
        assert (marked, found) == (2, {"due", "due-just"}), (
            "MNT-1: the default policy soft deletes terminal sessions not updated for more than "
            f"90 days, except pinned ones, and nothing by age; marked {sorted(found)}"
        )

    @rule("MNT-1")
    def test_soft_delete_sets_deleted_at_to_now_and_changes_nothing_else(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        due = a_stored_session("due", status=COMPLETED, updated_at=days_ago(31))
        kept = a_stored_session("kept", status=COMPLETED, updated_at=days_ago(29))
        for session in (due, kept):
            asm_store.save_session(session)
            asm_store.save_run(a_run(session.id, id=f"run-{session.id}", started_at=days_ago(40)))
            typed_events(asm_store, session.id, ["message_sent", "message_received"])
        before = snapshot(asm_store, ["due", "kept"])
        elsewhere = NOW.astimezone(timezone(timedelta(hours=2)))  # the same instant
        policy = a_policy(max_completed_session_age_days=30)
        marked = asm_maintenance.soft_delete_expired_sessions(policy, now=elsewhere)
        found = asm_store.get_session("due")
        assert found.updated_at == due.updated_at, (
            f"MNT-1: soft delete must not touch updated_at: was {due.updated_at}, found "
            f"{found.updated_at}"
        )
        expected = Session.model_validate({**due.model_dump(), "deleted_at": NOW})
        difference = exact_difference(expected, found)
        assert difference is None, (
            f"MNT-1: soft delete sets deleted_at = now and changes nothing else: {difference}"
        )
        assert marked == 1, f"MNT-1: soft delete returns how many it marked (1), got {marked}"
        after = snapshot(asm_store, ["due", "kept"])
        assert after["kept"] == before["kept"], "MNT-1: a session that is not due changed"
        for part in ("runs", "events", "latest"):
            was, now = getattr(before["due"], part), getattr(after["due"], part)
            assert was == now, f"MNT-1: soft delete changed the session's {part}: {was} -> {now}"

    # -- MNT-2: hard delete ---------------------------------------------------------------------
    @rule("MNT-2")
    def test_hard_delete_removes_the_session_as_delete_session_does(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        for sid, deleted_at in (("doomed", days_ago(31)), ("recent", days_ago(29)), ("live", None)):
            asm_store.save_session(a_stored_session(sid, deleted_at=deleted_at))
            for n in (1, 2):
                asm_store.save_run(a_run(sid, id=f"{sid}-run-{n}", started_at=days_ago(50 - n)))
            typed_events(asm_store, sid, ["run_started", "message_sent", "run_completed"])
        before = snapshot(asm_store, ["recent", "live"], listing=False)
        policy = a_policy(hard_delete_after_days=30)
        deleted = asm_maintenance.hard_delete_expired_sessions(policy, now=NOW)
        assert deleted == 1, f"MNT-2: hard delete returns how many it deleted (1), got {deleted}"
        held = Held.read(asm_store, "doomed")
        assert held.gone, (
            "MNT-2: a hard delete removes the session, its runs, events and counter, as "
            f"delete_session does (SES-4); found {held}"
        )
        for n in (1, 2):
            with expect_error(ErrorCode.RUN_NOT_FOUND):
                asm_store.get_run(f"doomed-run-{n}")
        again = asm_store.append_event_with_sequence(an_event("doomed", id="doomed-2"))
        assert again.sequence_number == 1, (
            "MNT-2: after a hard delete the session numbers from 1 again and its old event ids "
            f"are free (SES-4); the next append got {again.sequence_number}"
        )
        assert changed(before, snapshot(asm_store, ["recent", "live"], listing=False)) == [], (
            "MNT-2: sessions not due (soft deleted more recently, or not at all) stay as they were"
        )

    @rule("MNT-2")
    def test_hard_delete_selects_by_deleted_at_strictly_and_nothing_else(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        deleted_at = {
            "at": days_ago(30),
            "past": days_ago(30) - MICROSECOND,
            "ancient": days_ago(5000),
            "live": None,
        }
        for sid, stamp in deleted_at.items():
            asm_store.save_session(a_stored_session(sid, deleted_at=stamp))
        # exemptions are soft delete's (MNT-1): a soft-deleted active, pinned session is due
        exempt = a_stored_session(
            "exempt", status=SessionStatus.ACTIVE, tags=["pinned"], deleted_at=days_ago(31)
        )
        asm_store.save_session(exempt)
        policy = a_policy(hard_delete_after_days=30)
        deleted = asm_maintenance.hard_delete_expired_sessions(policy, now=NOW)
        gone = {sid for sid in [*deleted_at, "exempt"] if Held.read(asm_store, sid).gone}
        assert (deleted, gone) == (3, {"past", "ancient", "exempt"}), (
            "MNT-2: every session whose deleted_at is older than hard_delete_after_days (exactly "
            f"at the cutoff stays), whatever its status and tags, goes; gone {sorted(gone)}, "
            f"returned {deleted}"
        )

    @rule("MNT-2")
    def test_hard_delete_after_days_none_deletes_nothing(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        asm_store.save_session(a_stored_session("ancient", deleted_at=days_ago(10_000)))
        deleted = asm_maintenance.hard_delete_expired_sessions(a_policy(), now=NOW)
        assert (deleted, Held.read(asm_store, "ancient").gone) == (0, False), (
            f"MNT-2: hard_delete_after_days=None deletes nothing; returned {deleted}"
        )

    @rule("MNT-2", "REG-3")
    def test_hard_delete_removes_the_artifact_metadata(
        self, asm_store: Any, asm_maintenance: Any, asm_artifact_registry: Any
    ) -> None:
        for sid, deleted_at in (("doomed", days_ago(31)), ("recent", days_ago(1))):
            asm_store.save_session(a_stored_session(sid, deleted_at=deleted_at))
            typed_events(asm_store, sid, ["message_sent"])
            for n in (1, 2):
                asm_artifact_registry.register(a_meta(sid, f"art-{sid}-{n}"))
        asm_maintenance.hard_delete_expired_sessions(a_policy(hard_delete_after_days=30), now=NOW)
        left = [m.id for m in asm_artifact_registry.list_by_session("doomed")]
        assert left == [], (
            f"MNT-2, REG-3: a hard delete removes the session's artifact metadata; left {left}"
        )
        for n in (1, 2):
            with expect_error(ErrorCode.NOT_FOUND):
                asm_artifact_registry.get(f"art-doomed-{n}")
        kept = [m.id for m in asm_artifact_registry.list_by_session("recent")]
        assert kept == ["art-recent-1", "art-recent-2"], (
            f"MNT-2: the metadata of a session that is not due stays; found {kept}"
        )

    # -- MNT-5: orphaned artifact metadata ------------------------------------------------------
    @rule("MNT-5")
    def test_clean_orphaned_artifacts_removes_the_metadata_of_missing_sessions_only(
        self, asm_store: Any, asm_maintenance: Any, asm_artifact_registry: Any
    ) -> None:
        registry = asm_artifact_registry
        asm_store.save_session(a_stored_session("live"))
        asm_store.save_session(a_stored_session("soft", deleted_at=days_ago(400)))
        asm_store.save_session(a_stored_session("deleted"))
        registry.register(a_meta("deleted", "art-deleted-before"))
        asm_store.delete_session("deleted")  # takes its metadata with it (REG-3)
        typed_events(asm_store, "events-only", ["message_sent"])  # events, but no session
        kept = {"art-live-1": "live", "art-live-2": "live", "art-soft": "soft"}
        orphans = {
            "art-ghost-1": "ghost",
            "art-ghost-2": "ghost",
            "art-deleted-after": "deleted",
            "art-events-only": "events-only",
        }
        for artifact_id, session_id in {**kept, **orphans}.items():
            registry.register(a_meta(session_id, artifact_id))
        cleaned = asm_maintenance.clean_orphaned_artifacts()
        left = {
            m.id
            for sid in {*kept.values(), *orphans.values()}
            for m in registry.list_by_session(sid)
        }
        assert left == set(kept), (
            "MNT-5: clean_orphaned_artifacts removes exactly the metadata of sessions that do not "
            f"exist (soft-deleted ones exist); expected {sorted(kept)} left, found {sorted(left)}"
        )
        assert cleaned == len(orphans), (
            f"MNT-5: clean_orphaned_artifacts returns how many records it removed "
            f"({len(orphans)}), returned {cleaned}"
        )
        again = asm_maintenance.clean_orphaned_artifacts()
        assert again == 0, f"MNT-5: nothing is left to clean, yet the second call returned {again}"

    # -- MNT-6: the health check ----------------------------------------------------------------
    @rule("MNT-6")
    def test_health_check_of_an_empty_store_is_empty(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        problems = asm_maintenance.health_check()
        assert problems == [], f"MNT-6: an empty store has no problem; health_check: {problems}"

    @rule("MNT-6")
    def test_health_check_finds_nothing_after_any_workload_of_the_port(
        self, request: pytest.FixtureRequest, asm_store: Any, asm_maintenance: Any
    ) -> None:
        store, maintenance = asm_store, asm_maintenance

        def healthy(after: str) -> None:
            problems = maintenance.health_check()
            assert problems == [], (
                f"MNT-6: after {after}, health_check reports {problems}; a store that only the "
                "port's operations touched has none (the holes pruning leaves are no problem)"
            )

        store.save_session(a_stored_session("h-1", status=COMPLETED, updated_at=days_ago(100)))
        store.save_session(a_stored_session("h-2", status=SessionStatus.ACTIVE))
        store.save_session(a_stored_session("h-3", deleted_at=days_ago(40)))
        store.save_run(a_run("h-2", id="run-h-2", status=RunStatus.RUNNING))
        typed_events(store, "h-1", PRUNE_TYPES)
        typed_events(store, "h-3", ["message_sent"] * 2)
        store.append_event(an_event("h-2", "run-h-2", id="h-2-1"))
        store.append_event_with_sequence(an_event("h-2", "run-h-2", id="h-2-1"))
        healthy("single appends, one of them repeated")
        repeated = an_event("h-2", id="h-2-2")
        store.append_events([repeated, an_event("h-1", id="h-1-1"), repeated])
        healthy("a batch over two sessions with a repeated and an already stored id")
        run = a_run("h-2", id="run-h-2", status=RunStatus.COMPLETED)
        events = [an_event("h-2", run, id=f"h-2-{n}") for n in (1, 3, 4)]
        session = a_stored_session("h-2", status=SessionStatus.ACTIVE, updated_at=days_ago(1))
        store.flush(ExecutionResult(session=session, run=run, events=events))
        healthy("a flush")
        maintenance.prune_session_events("h-1", a_policy(max_events_per_session=4))
        healthy("a prune that left holes, the highest number among them")
        store.append_event(an_event("h-1", id="h-1-2"))
        healthy("a pruned id appended again")
        maintenance.soft_delete_expired_sessions(RetentionPolicy(), now=NOW)
        healthy("a soft delete")
        maintenance.hard_delete_expired_sessions(RetentionPolicy(), now=NOW)
        healthy("a hard delete")
        maintenance.execute(EXECUTE_POLICY, now=NOW + timedelta(days=31))
        healthy("execute")
        store.delete_session("h-2")
        store.append_events([an_event("h-2", id="h-2-1"), an_event("h-2", id="h-2-9")])
        healthy("delete_session and appends to the deleted session's id")
        registry = optional_registry(request, store)
        if registry is not None:
            registry.register(a_meta("h-ghost", "art-ghost"))
            maintenance.clean_orphaned_artifacts()
            healthy("registering and cleaning orphaned artifact metadata")


__all__ = ["TestMaintenance"]
