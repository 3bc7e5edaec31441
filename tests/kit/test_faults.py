"""The FaultGate fault target, and the two fault policies over it.

Stores on any backend can have their writes failed (FLUSH-3) or their replies lost (ambiguous
failures); a hook that returns something the kit cannot use is reported, not ignored.
"""

from __future__ import annotations

import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, EventType, ExecutionResult, Run, Session
from pytest_asm_contract._contract.port import HookError
from pytest_asm_contract._faults.gate import BackendFault, FaultGate
from pytest_asm_contract._faults.policies import (
    AMBIGUITY_MARKER,
    OUTAGE_WRITES,
    FailNthWrite,
    LostReplies,
    attempt_of,
    chain_mentions,
    is_injected,
)
from pytest_asm_contract._faults.targets import injector_for
from reference_stores.memory import InMemorySessionStore


def test_an_unarmed_gate_lets_every_write_through() -> None:
    gate = FaultGate()
    gate.before_write("anything")
    gate.after_commit("anything")


def test_the_injector_fails_the_kth_write_announced_to_the_gate() -> None:
    gate = FaultGate()
    injector = injector_for(type("Store", (), {"asm_fault_target": lambda self: gate})())
    assert injector is not None
    with injector.armed(FailNthWrite(2)) as plan:
        gate.before_write("first")
        with pytest.raises(BackendFault) as raised:
            gate.before_write("second")
        gate.before_write("third")  # a plan fires once
    assert is_injected(raised.value) and plan.fired and plan.writes_seen == 3
    gate.before_write("disarmed")


def test_an_outage_fails_the_kth_write_and_every_later_one_up_to_its_limit() -> None:
    plan = FailNthWrite(2, outage=True)
    answers = [plan.before_write(f"write {n}") for n in range(1, OUTAGE_WRITES + 3)]
    assert answers[0] is None, "writes before the k-th pass"
    assert all(a is not None for a in answers[1 : OUTAGE_WRITES + 1]), "an outage fails them all"
    assert answers[OUTAGE_WRITES + 1] is None, "a store that retries without end gets through"
    assert plan.fired_on == "write 2" and plan.failed == OUTAGE_WRITES


def test_the_memory_store_announces_its_writes_and_reports_failures_as_storage_errors() -> None:
    store = InMemorySessionStore()
    injector = injector_for(store)
    assert injector is not None
    session = Session(id="s", agent_id="a")
    run = Run(session_id="s")
    events = [Event(type=EventType.MESSAGE_SENT, session_id="s", run_id=run.id) for _ in range(2)]
    with injector.armed(FailNthWrite.counting()) as plan:
        store.flush(ExecutionResult(session=session, run=run, events=events))
    assert plan.writes_seen == 3  # session, run, events
    with injector.armed(FailNthWrite(1)), pytest.raises(StoreError) as raised:
        store.append_events([Event(type=EventType.MESSAGE_SENT, session_id="s")])
    assert raised.value.code is ErrorCode.STORAGE_CONNECTION_FAILED and raised.value.retryable
    assert store.get_latest_sequence("s") == 2
    with injector.armed(FailNthWrite.counting()) as plan:
        store.append_events(events)  # every id is stored: nothing to write
    assert plan.writes_seen == 0


def test_a_lost_reply_fails_after_the_commit_and_only_for_a_client_call() -> None:
    store = InMemorySessionStore()
    injector = injector_for(store)
    assert injector is not None
    event = Event(type=EventType.MESSAGE_SENT, session_id="s", id="e1")
    with injector.armed(LostReplies(seed=3, rate=1.0)) as lost:
        store.append_events([event])  # outside any client call: untouched
        assert lost.injected == 0
        with attempt_of("call-1", 1), pytest.raises(StoreError) as raised:
            store.append_events([event.model_copy(update={"id": "e2"})])
    assert lost.injected == 1 and chain_mentions(raised.value, AMBIGUITY_MARKER)
    assert [e.id for e in store.get_events("s")] == ["e1", "e2"], "the write took effect"


def test_a_policy_fails_after_the_write_when_asked_to() -> None:
    gate = FaultGate()
    injector = injector_for(type("Store", (), {"asm_fault_target": lambda self: [gate]})())
    assert injector is not None
    with injector.armed(FailNthWrite(1, when="after")) as plan:
        gate.before_write("never counted")
        with pytest.raises(BackendFault):
            gate.after_commit("flush")
    assert plan.fired_on == "flush" and plan.writes_seen == 1


@pytest.mark.parametrize("returned", [[], object(), "engine"], ids=["empty", "object", "str"])
def test_a_hook_the_kit_cannot_use_is_reported(returned: object) -> None:
    store = type("Store", (), {"asm_fault_target": lambda self: returned})()
    with pytest.raises(HookError, match="asm_fault_target"):
        injector_for(store)


def test_a_store_without_the_hook_has_no_injector() -> None:
    assert injector_for(object()) is None
