"""PORT: the store object offers the port, is thread-safe, and fails only with StoreError."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.threads import run_indexed
from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, EventType
from pytest_asm_contract._contract.port import (
    SESSION_STORE_OPERATIONS,
    V08_OPERATIONS,
    missing_operations,
)
from pytest_asm_contract._plugin.fixtures import MIGRATION_GUIDE
from pytest_asm_contract.suite._builders import a_running_run, a_session, an_event, expect_error

#: An Event that skipped validation (model_construct), with a type that does not exist.
UNVALIDATED_EVENT = Event.model_construct(type="bogus", session_id="s")  # type: ignore[arg-type]

KEYWORD_ONLY = {
    "list_sessions": ("status", "agent_id", "limit", "offset"),
    "list_runs": ("status", "limit", "offset"),
    "get_events": ("run_id", "type", "since", "after", "before", "limit", "wait_timeout_ms"),
}


class TestPort:
    @rule("PORT-1")
    def test_all_operations_exist(self, asm_store: Any) -> None:
        missing = missing_operations(asm_store)
        if missing:
            v07 = set(missing) <= set(V08_OPERATIONS)
            pytest.fail(
                f"the store lacks {', '.join(missing)} of the 14 port operations"
                + (
                    f". This looks like a v0.7-era store: v0.8 added append_events (batch append) "
                    f"and flush (atomic persistence of a finished run); see {MIGRATION_GUIDE}"
                    if v07
                    else ""
                ),
                pytrace=False,
            )
        assert sorted(SESSION_STORE_OPERATIONS) == sorted(set(SESSION_STORE_OPERATIONS))

    @rule("PORT-1")
    @pytest.mark.parametrize("operation", sorted(KEYWORD_ONLY))
    def test_filters_are_keyword_arguments(self, asm_store: Any, operation: str) -> None:
        params = inspect.signature(getattr(asm_store, operation)).parameters
        missing = [
            name
            for name in KEYWORD_ONLY[operation]
            if name not in params
            and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        ]
        assert not missing, f"{operation} does not accept the keyword arguments {missing}"

    @rule("PORT-2", "CONC-2")
    def test_one_instance_serves_many_threads(self, asm_store: Any) -> None:
        sessions = [a_session(agent_id=f"agent-{i}") for i in range(8)]

        def work(index: int) -> int:
            session = sessions[index]
            asm_store.save_session(session)
            asm_store.save_run(a_running_run(session))
            for _ in range(5):
                asm_store.append_event(an_event(session))
            assert asm_store.get_session(session.id) == session
            latest: int = asm_store.get_latest_sequence(session.id)
            return latest

        assert run_indexed(8, work) == [5] * 8

    @rule("PORT-3")
    @pytest.mark.parametrize(
        "call",
        [
            pytest.param(lambda s: s.save_session({"agent_id": "a"}), id="save_session-dict"),
            pytest.param(lambda s: s.save_session(None), id="save_session-None"),
            pytest.param(lambda s: s.save_run("run"), id="save_run-str"),
            pytest.param(lambda s: s.append_event(42), id="append_event-int"),
            pytest.param(lambda s: s.append_event_with_sequence(None), id="append_with_seq-None"),
            pytest.param(lambda s: s.append_events(None), id="append_events-None"),
            pytest.param(lambda s: s.append_events("abc"), id="append_events-str"),
            pytest.param(lambda s: s.flush(None), id="flush-None"),
            pytest.param(lambda s: s.flush({"session": 1}), id="flush-partial-mapping"),
            pytest.param(
                lambda s: s.append_event(UNVALIDATED_EVENT),
                id="append_event-unvalidated",
            ),
            pytest.param(lambda s: s.get_events("s", limit=-1), id="get_events-negative-limit"),
            pytest.param(lambda s: s.get_events("s", type="nope"), id="get_events-unknown-type"),
            pytest.param(lambda s: s.list_sessions(status="nope"), id="list_sessions-status"),
            pytest.param(lambda s: s.list_runs("s", limit="ten"), id="list_runs-limit-str"),
        ],
    )
    def test_bad_input_raises_validation_error(self, asm_store: Any, call: Any) -> None:
        with expect_error(ErrorCode.VALIDATION_ERROR):
            call(asm_store)

    @rule("PORT-3")
    def test_not_found_errors_are_store_errors(self, asm_store: Any) -> None:
        for operation, code in [
            ("get_session", ErrorCode.SESSION_NOT_FOUND),
            ("get_run", ErrorCode.RUN_NOT_FOUND),
        ]:
            with expect_error(code) as caught:
                getattr(asm_store, operation)("missing")
            error = caught[0]
            assert isinstance(error, StoreError)
            assert error.message, "a StoreError needs a helpful message"
            assert isinstance(error.details, dict)
            assert error.retryable is False

    @rule("PORT-3")
    def test_event_type_accepts_enum_and_string(self, asm_store: Any) -> None:
        session = a_session()
        asm_store.save_session(session)
        asm_store.append_event(an_event(session, type=EventType.TOOL_CALL_STARTED))
        by_enum = asm_store.get_events(session.id, type=EventType.TOOL_CALL_STARTED)
        by_str = asm_store.get_events(session.id, type="tool_call_started")
        assert by_enum == by_str and len(by_enum) == 1


__all__ = ["TestPort"]
