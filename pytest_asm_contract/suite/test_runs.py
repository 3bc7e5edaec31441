"""RUN: saving, reading and listing runs, and finding a session's active run."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.model import Run, RunStatus, Session
from pytest_asm_contract.suite._builders import (
    a_run,
    a_running_run,
    a_session,
    at,
    expect_error,
    ids_of,
)


def _saved_session(store: Any, **fields: Any) -> Session:
    session = a_session(**fields)
    store.save_session(session)
    return session


def _save_runs(store: Any, *runs: Run) -> None:
    for run in runs:
        store.save_run(run)


class TestRuns:
    # -- RUN-1: save and get ------------------------------------------------------------------
    @rule("RUN-1")
    def test_saved_run_reads_back_equal(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        run = a_run(
            session,
            status=RunStatus.COMPLETED,
            input={"prompt": "hello", "options": {"temperature": 0.5}},
            output={"text": "hi", "parts": [1, 2.5, None, True]},
            error=None,
            metadata={"trace": {"spans": ["a", "b"]}},
            turn_count=3,
            token_usage={"input": 120, "output": 48},
            cost_usd=0.0125,
            started_at=at(1),
            ended_at=at(2),
            provider="anthropic",
            provider_metadata={"model": "m-1"},
        )
        asm_store.save_run(run)
        assert asm_store.get_run(run.id) == run, "get_run must return the run exactly as saved"

    @rule("RUN-1")
    def test_save_run_replaces_the_whole_record(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        first = a_run(
            session,
            status=RunStatus.FAILED,
            error={"message": "boom"},
            metadata={"old": 1},
            turn_count=4,
            cost_usd=1.5,
            ended_at=at(9),
            provider="p",
        )
        asm_store.save_run(first)
        second = first.model_copy(
            update={
                "status": RunStatus.RUNNING,
                "error": None,
                "metadata": {"new": 2},
                "turn_count": 0,
                "cost_usd": None,
                "ended_at": None,
                "provider": None,
            }
        )
        asm_store.save_run(second)
        assert asm_store.get_run(first.id) == second, (
            "a second save_run with the same id must replace every field, not merge"
        )

    @rule("RUN-1")
    def test_unknown_run_raises_run_not_found(self, asm_store: Any) -> None:
        with expect_error(ErrorCode.RUN_NOT_FOUND):
            asm_store.get_run("run_missing")

    @rule("RUN-1", "DATA-3")
    def test_run_ids_are_exact(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        asm_store.save_run(a_run(session, id="Run-1"))
        for near_miss in ("run-1", "RUN-1", "Run-1 ", "Run_1", "Run%"):
            with expect_error(ErrorCode.RUN_NOT_FOUND):
                asm_store.get_run(near_miss)

    @rule("RUN-1", capability="referential_integrity")
    def test_run_of_unknown_session_is_rejected(self, asm_store: Any) -> None:
        run = a_run("ses_never_saved")
        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            asm_store.save_run(run)
        with expect_error(ErrorCode.RUN_NOT_FOUND):
            asm_store.get_run(run.id)

    @rule("IDEM-2")
    def test_saving_a_run_repeatedly_keeps_one_record(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        run = a_running_run(session, started_at=at(1))
        for _ in range(5):
            asm_store.save_run(run)
        done = run.model_copy(update={"status": RunStatus.COMPLETED, "ended_at": at(2)})
        asm_store.save_run(done)
        asm_store.save_run(done)
        assert asm_store.list_runs(session.id) == [done], (
            "saving one run id several times must leave exactly one record, the last saved"
        )

    # -- RUN-2: list_runs ---------------------------------------------------------------------
    @rule("RUN-2")
    def test_list_orders_by_started_at_then_id(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        _save_runs(
            asm_store,
            a_run(session, id="a-late", started_at=at(10)),
            a_run(session, id="b-tie", started_at=at(5)),
            a_run(session, id="a-tie", started_at=at(5)),
            a_run(session, id="z-early", started_at=at(1)),
        )
        assert ids_of(asm_store.list_runs(session.id)) == ["z-early", "a-tie", "b-tie", "a-late"], (
            "list_runs must order by (started_at, id) ascending, not by insertion or id"
        )

    @rule("RUN-2")
    def test_list_returns_the_runs_as_saved(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        runs = [a_run(session, started_at=at(i), metadata={"i": i}) for i in range(3)]
        _save_runs(asm_store, *reversed(runs))
        assert asm_store.list_runs(session.id) == runs

    @rule("RUN-2")
    def test_list_filters_by_status_enum_and_string(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        _save_runs(
            asm_store,
            a_run(session, id="r1", status=RunStatus.COMPLETED, started_at=at(1)),
            a_run(session, id="r2", status=RunStatus.RUNNING, started_at=at(2)),
            a_run(session, id="r3", status=RunStatus.COMPLETED, started_at=at(3)),
            a_run(session, id="r4", status=RunStatus.PENDING, started_at=at(4)),
        )
        assert ids_of(asm_store.list_runs(session.id, status=RunStatus.COMPLETED)) == ["r1", "r3"]
        assert ids_of(asm_store.list_runs(session.id, status="completed")) == ["r1", "r3"]
        assert ids_of(asm_store.list_runs(session.id, status="pending")) == ["r4"]
        assert asm_store.list_runs(session.id, status=RunStatus.TIMEOUT) == []

    @rule("RUN-2")
    def test_list_applies_offset_and_limit_after_the_filter(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        for i in range(6):
            status = RunStatus.COMPLETED if i % 2 else RunStatus.FAILED
            asm_store.save_run(a_run(session, id=f"r{i}", status=status, started_at=at(i)))

        def completed(**page: Any) -> list[str]:
            return ids_of(asm_store.list_runs(session.id, status="completed", **page))

        assert completed() == ["r1", "r3", "r5"]
        assert completed(limit=2) == ["r1", "r3"], "limit must apply after the status filter"
        assert completed(offset=1) == ["r3", "r5"], "offset must apply after the status filter"
        assert completed(offset=1, limit=1) == ["r3"]
        assert completed(offset=3) == []
        assert ids_of(asm_store.list_runs(session.id, offset=4)) == ["r4", "r5"]

    @rule("RUN-2")
    def test_limit_zero_gives_nothing(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        asm_store.save_run(a_run(session))
        assert asm_store.list_runs(session.id, limit=0) == [], "limit=0 means no runs, not all"

    @rule("RUN-2")
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"limit": -1},
            {"offset": -1},
            {"limit": 1.5},
            {"offset": "2"},
            {"limit": True},
            {"status": "sleeping"},
            {"status": "active"},
        ],
        ids=[
            "limit-negative",
            "offset-negative",
            "limit-float",
            "offset-str",
            "limit-bool",
            "status-unknown",
            "status-of-a-session",
        ],
    )
    def test_invalid_list_arguments_raise_validation_error(
        self, asm_store: Any, kwargs: dict[str, Any]
    ) -> None:
        session = _saved_session(asm_store)
        asm_store.save_run(a_run(session))
        with expect_error(ErrorCode.VALIDATION_ERROR):
            asm_store.list_runs(session.id, **kwargs)

    @rule("RUN-2")
    def test_list_returns_only_the_sessions_runs(self, asm_store: Any) -> None:
        session, other = _saved_session(asm_store), _saved_session(asm_store)
        mine = a_run(session, started_at=at(2))
        _save_runs(asm_store, a_run(other, started_at=at(1)), mine, a_run(other, started_at=at(3)))
        assert asm_store.list_runs(session.id) == [mine]
        assert asm_store.list_runs("ses_unknown") == [], "an unknown session has no runs"

    # -- RUN-3: get_active_run ----------------------------------------------------------------
    @rule("RUN-3")
    def test_no_running_run_means_none(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        assert asm_store.get_active_run(session.id) is None
        for status in (s for s in RunStatus if s is not RunStatus.RUNNING):
            asm_store.save_run(a_run(session, status=status, started_at=at(1)))
        assert asm_store.get_active_run(session.id) is None, (
            "only a run with status running is active"
        )
        assert asm_store.get_active_run("ses_unknown") is None

    @rule("RUN-3")
    def test_pending_run_is_not_active(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        running = a_running_run(session, started_at=at(1))
        _save_runs(asm_store, running, a_run(session, status=RunStatus.PENDING, started_at=at(2)))
        assert asm_store.get_active_run(session.id) == running, (
            "a later pending run must not be returned as the active run"
        )

    @rule("RUN-3")
    def test_latest_started_running_run_wins(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        latest = a_running_run(session, id="a-latest", started_at=at(30))
        _save_runs(
            asm_store,
            latest,
            a_running_run(session, id="z-early", started_at=at(10)),
            a_running_run(session, id="m-middle", started_at=at(20)),
            a_run(session, id="b-done", status=RunStatus.COMPLETED, started_at=at(40)),
        )
        assert asm_store.get_active_run(session.id) == latest, (
            "with several running runs, the one with the latest started_at is active"
        )

    @rule("RUN-3")
    def test_started_at_tie_goes_to_the_greatest_id(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        greatest = a_running_run(session, id="run-c", started_at=at(5))
        _save_runs(
            asm_store,
            a_running_run(session, id="run-b", started_at=at(5)),
            greatest,
            a_running_run(session, id="run-a", started_at=at(5)),
        )
        assert asm_store.get_active_run(session.id) == greatest, (
            "running runs with equal started_at: the greatest id is active"
        )

    @rule("RUN-3")
    def test_active_run_reflects_each_save(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        first = a_running_run(session, started_at=at(1))
        second = a_running_run(session, started_at=at(2))

        asm_store.save_run(first)
        assert asm_store.get_active_run(session.id) == first
        asm_store.save_run(second)
        assert asm_store.get_active_run(session.id) == second
        asm_store.save_run(second.model_copy(update={"status": RunStatus.COMPLETED}))
        assert asm_store.get_active_run(session.id) == first, (
            "after the latest running run completes, the other running run is active"
        )
        asm_store.save_run(first.model_copy(update={"status": RunStatus.CANCELLED}))
        assert asm_store.get_active_run(session.id) is None, (
            "get_active_run must reflect save_run at once (no stale cached run)"
        )

    @rule("RUN-3")
    def test_active_run_returns_the_saved_record(self, asm_store: Any) -> None:
        session = _saved_session(asm_store)
        run = a_running_run(session, started_at=at(1), turn_count=1)
        asm_store.save_run(run)
        asm_store.get_active_run(session.id)
        updated = run.model_copy(update={"turn_count": 2, "token_usage": {"input": 7}})
        asm_store.save_run(updated)
        assert asm_store.get_active_run(session.id) == updated, (
            "get_active_run must return the last saved version of the running run"
        )

    @rule("RUN-3")
    def test_runs_of_other_sessions_are_ignored(self, asm_store: Any) -> None:
        session, other = _saved_session(asm_store), _saved_session(asm_store)
        mine = a_running_run(session, started_at=at(1))
        _save_runs(asm_store, mine, a_running_run(other, started_at=at(50)))
        assert asm_store.get_active_run(session.id) == mine
        idle = _saved_session(asm_store)
        assert asm_store.get_active_run(idle.id) is None, (
            "a session without runs has no active run, whatever other sessions hold"
        )


__all__ = ["TestRuns"]
