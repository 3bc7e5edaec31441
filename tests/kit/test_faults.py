"""The FaultGate fault target: stores on any backend can have their writes failed (FLUSH-3)."""

from __future__ import annotations

import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, EventType, ExecutionResult, Run, Session
from pytest_asm_contract._faults.gate import BackendFault, FaultGate
from pytest_asm_contract._faults.injection import fault_injector, is_injected
from reference_stores.memory import InMemorySessionStore


def test_an_unarmed_gate_lets_every_write_through() -> None:
    gate = FaultGate()
    gate.before_write("anything")
    gate.after_commit("anything")


def test_the_injector_fails_the_kth_write_announced_to_the_gate() -> None:
    gate = FaultGate()
    injector = fault_injector(type("Store", (), {"asm_fault_target": lambda self: gate})())
    assert injector is not None
    with injector.failing_write(2) as plan:
        gate.before_write("first")
        with pytest.raises(BackendFault) as raised:
            gate.before_write("second")
        gate.before_write("third")  # a plan fires once
    assert is_injected(raised.value) and plan.fired and plan.writes_seen == 3
    gate.before_write("disarmed")


def test_the_memory_store_announces_its_writes_and_reports_failures_as_storage_errors() -> None:
    store = InMemorySessionStore()
    injector = fault_injector(store)
    assert injector is not None
    session = Session(id="s", agent_id="a")
    run = Run(session_id="s")
    events = [Event(type=EventType.MESSAGE_SENT, session_id="s", run_id=run.id) for _ in range(2)]
    with injector.counting() as plan:
        store.flush(ExecutionResult(session=session, run=run, events=events))
    assert plan.writes_seen == 3  # session, run, events
    with injector.failing_write(1), pytest.raises(StoreError) as raised:
        store.append_events([Event(type=EventType.MESSAGE_SENT, session_id="s")])
    assert raised.value.code is ErrorCode.STORAGE_CONNECTION_FAILED and raised.value.retryable
    assert store.get_latest_sequence("s") == 2
    with injector.counting() as plan:
        store.append_events(events)  # every id is stored: nothing to write
    assert plan.writes_seen == 0
