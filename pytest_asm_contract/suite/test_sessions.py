"""SES: saving, reading, listing and deleting sessions."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.model import SessionStatus
from pytest_asm_contract.suite._builders import (
    a_run,
    a_running_run,
    a_session,
    an_event,
    at,
    expect_error,
    ids_of,
    some_events,
)


class TestSessions:
    @rule("SES-1")
    def test_saved_session_reads_back_equal(self, asm_store: Any) -> None:
        session = a_session(metadata={"k": [1, 2]}, context={"c": {"d": None}}, tags=["b", "a"])
        asm_store.save_session(session)
        assert asm_store.get_session(session.id) == session

    @rule("SES-1")
    def test_save_replaces_the_whole_record(self, asm_store: Any) -> None:
        first = a_session(metadata={"old": 1}, tags=["x"], parent_session_id="p")
        asm_store.save_session(first)
        second = first.model_copy(
            update={
                "metadata": {"new": 2},
                "tags": [],
                "parent_session_id": None,
                "status": SessionStatus.ACTIVE,
            }
        )
        asm_store.save_session(second)
        assert asm_store.get_session(first.id) == second

    @rule("SES-2")
    def test_unknown_session_raises_not_found(self, asm_store: Any) -> None:
        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            asm_store.get_session("ses_missing")

    @rule("SES-3")
    def test_list_orders_by_created_at_then_id(self, asm_store: Any) -> None:
        late = a_session(id="a-late", created_at=at(10))
        tie_b = a_session(id="b-tie", created_at=at(5))
        tie_a = a_session(id="a-tie", created_at=at(5))
        early = a_session(id="z-early", created_at=at(1))
        for session in (late, tie_b, tie_a, early):
            asm_store.save_session(session)
        assert [s.id for s in asm_store.list_sessions()] == ["z-early", "a-tie", "b-tie", "a-late"]

    @rule("SES-3")
    def test_list_filters_by_status_and_agent(self, asm_store: Any) -> None:
        sessions = [
            a_session(id="s1", agent_id="a1", status=SessionStatus.ACTIVE, created_at=at(1)),
            a_session(id="s2", agent_id="a1", status=SessionStatus.PAUSED, created_at=at(2)),
            a_session(id="s3", agent_id="a2", status=SessionStatus.ACTIVE, created_at=at(3)),
            a_session(id="s4", agent_id="a1", status=SessionStatus.ACTIVE, created_at=at(4)),
        ]
        for session in sessions:
            asm_store.save_session(session)
        assert ids_of(asm_store.list_sessions(status=SessionStatus.ACTIVE)) == ["s1", "s3", "s4"]
        assert ids_of(asm_store.list_sessions(status="active")) == ["s1", "s3", "s4"]
        assert ids_of(asm_store.list_sessions(agent_id="a1")) == ["s1", "s2", "s4"]
        assert ids_of(asm_store.list_sessions(status="active", agent_id="a1")) == ["s1", "s4"]
        assert asm_store.list_sessions(agent_id="nobody") == []

    @rule("SES-3")
    def test_list_applies_offset_and_limit_after_filters(self, asm_store: Any) -> None:
        for i in range(6):
            status = SessionStatus.ACTIVE if i % 2 else SessionStatus.PENDING
            asm_store.save_session(a_session(id=f"s{i}", status=status, created_at=at(i)))

        def active(**page: int) -> list[str]:
            return ids_of(asm_store.list_sessions(status="active", **page))

        assert active() == ["s1", "s3", "s5"]
        assert active(limit=2) == ["s1", "s3"]
        assert active(offset=1) == ["s3", "s5"]
        assert active(offset=1, limit=1) == ["s3"]
        assert active(offset=5) == []
        assert [s.id for s in asm_store.list_sessions(offset=4)] == ["s4", "s5"]

    @rule("SES-3")
    def test_limit_zero_gives_nothing(self, asm_store: Any) -> None:
        asm_store.save_session(a_session())
        assert asm_store.list_sessions(limit=0) == []

    @rule("SES-3")
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"limit": -1},
            {"offset": -1},
            {"limit": 1.5},
            {"offset": "2"},
            {"limit": True},
            {"status": "sleeping"},
        ],
        ids=[
            "limit-negative",
            "offset-negative",
            "limit-float",
            "offset-str",
            "limit-bool",
            "status-unknown",
        ],
    )
    def test_invalid_list_arguments_raise_validation_error(
        self, asm_store: Any, kwargs: dict[str, Any]
    ) -> None:
        with expect_error(ErrorCode.VALIDATION_ERROR):
            asm_store.list_sessions(**kwargs)

    @rule("SES-4", "SEQ-2")
    def test_delete_cascades_to_runs_events_and_counter(self, asm_store: Any) -> None:
        session, other = a_session(), a_session()
        run = a_running_run(session)
        for s in (session, other):
            asm_store.save_session(s)
        asm_store.save_run(run)
        asm_store.append_events(some_events(session, 3, run))
        asm_store.append_events(some_events(other, 2))

        asm_store.delete_session(session.id)

        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            asm_store.get_session(session.id)
        with expect_error(ErrorCode.RUN_NOT_FOUND):
            asm_store.get_run(run.id)
        assert asm_store.list_runs(session.id) == []
        assert asm_store.get_active_run(session.id) is None
        assert asm_store.get_events(session.id) == []
        assert asm_store.get_latest_sequence(session.id) == 0
        assert [s.id for s in asm_store.list_sessions()] == [other.id]
        assert asm_store.get_latest_sequence(other.id) == 2

    @rule("SES-4", "SEQ-1")
    def test_sequence_restarts_at_one_after_delete(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        asm_store.append_events(some_events(session, 3))
        asm_store.delete_session(session.id)
        asm_store.save_session(session)
        again = asm_store.append_event_with_sequence(an_event(session))
        assert again.sequence_number == 1

    @rule("SES-4", "IDEM-1")
    def test_deleted_event_ids_can_be_appended_again(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        event = an_event(session)
        asm_store.append_event(event)
        asm_store.delete_session(session.id)
        asm_store.save_session(session)
        stored = asm_store.append_event_with_sequence(event)
        assert stored.sequence_number == 1
        assert asm_store.get_events(session.id) == [stored]

    @rule("SES-4")
    def test_delete_is_idempotent(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        asm_store.delete_session(session.id)
        asm_store.delete_session(session.id)
        asm_store.delete_session("never-existed")
        assert asm_store.list_sessions() == []

    @rule("SES-5")
    def test_soft_deleted_session_is_plain_data(self, asm_store: Any) -> None:
        # Whole seconds: that every microsecond survives is DATA-1's, checked on its own.
        deleted_at = at(30).replace(microsecond=0)
        session = a_session(deleted_at=deleted_at, created_at=at(0))
        live = a_session(created_at=at(1))
        asm_store.save_session(session)
        asm_store.save_session(live)
        assert asm_store.get_session(session.id).deleted_at == deleted_at
        # Both listed, in any order (the order is SES-3's).
        assert sorted(s.id for s in asm_store.list_sessions()) == sorted([session.id, live.id])

    @rule("IDEM-2")
    def test_saving_a_session_repeatedly_keeps_one_record(self, asm_store: Any) -> None:
        session = a_session()
        for _ in range(5):
            asm_store.save_session(session)
        assert asm_store.list_sessions() == [session]

    @rule("SES-2", "DATA-3")
    def test_session_ids_are_exact(self, asm_store: Any) -> None:
        asm_store.save_session(a_session(id="Ses-1"))
        for near_miss in ("ses-1", "SES-1", "Ses-1 ", "Ses_1", "Ses%"):
            with expect_error(ErrorCode.SESSION_NOT_FOUND):
                asm_store.get_session(near_miss)

    @rule("RUN-2")
    def test_runs_of_unknown_session_are_empty(self, asm_store: Any) -> None:
        assert asm_store.list_runs("no-such-session") == []
        elsewhere = a_session()
        asm_store.save_session(elsewhere)
        asm_store.save_run(a_run(elsewhere))
        assert asm_store.list_runs("no-such-session") == []


__all__ = ["TestSessions"]
