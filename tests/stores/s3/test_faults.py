"""Failures injected into the S3 session store's botocore client at every write of an operation.

For flush, append_events (one session, and several sessions at once) and delete_session, the k-th
mutating request fails, for every k until the operation needs fewer than k writes. The failure
must surface as a StoreError with a storage code, a fresh store instance (its own cache and
client) must see exactly the state from before, and repeating the operation must complete it.
With ``when="after"`` the k-th write takes effect but its response is lost: a fresh instance must
then see all of the operation or none of it, never part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from pytest_asm_contract._contract.errors import STORAGE_CODES, ErrorCode, StoreError
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
)
from pytest_asm_contract._faults.botocore import BotocoreTarget, RequestCounter, failing_write
from pytest_asm_contract._faults.policies import FailNthWrite, is_injected
from reference_stores.s3 import S3SessionStore

Factory = Callable[..., S3SessionStore]


def _snapshot(store: S3SessionStore, session_ids: list[str], run_ids: list[str]) -> Any:
    """Everything a reader can see of these sessions and runs."""
    sessions: dict[str, Session | None] = {}
    for session_id in session_ids:
        try:
            sessions[session_id] = store.get_session(session_id)
        except StoreError as error:
            assert error.code is ErrorCode.SESSION_NOT_FOUND
            sessions[session_id] = None
    runs: dict[str, Run | None] = {}
    for run_id in run_ids:
        try:
            runs[run_id] = store.get_run(run_id)
        except StoreError as error:
            assert error.code is ErrorCode.RUN_NOT_FOUND
            runs[run_id] = None
    return (
        sessions,
        runs,
        {s: store.list_runs(s) for s in session_ids},
        {s: store.get_events(s) for s in session_ids},
        {s: store.get_latest_sequence(s) for s in session_ids},
    )


@dataclasses.dataclass
class Case:
    sessions: list[str]
    runs: list[str]
    prepare: Callable[[S3SessionStore], None]
    act: Callable[[S3SessionStore], object]


def _flush(tag: str) -> Case:
    session = Session(id=f"f-{tag}", agent_id="a")
    run = Run(id=f"fr-{tag}", session_id=session.id, status=RunStatus.RUNNING)
    old = [
        Event(type=EventType.MESSAGE_SENT, session_id=session.id, id=f"fo-{tag}-{i}")
        for i in range(2)
    ]
    new = [
        Event(
            type=EventType.RUN_COMPLETED, session_id=session.id, run_id=run.id, id=f"fn-{tag}-{i}"
        )
        for i in range(3)
    ]
    done = run.model_copy(update={"status": RunStatus.COMPLETED})

    def prepare(store: S3SessionStore) -> None:
        store.save_session(session)
        store.save_run(run)
        store.append_events(old)

    result = ExecutionResult(session=session, run=done, events=old + new)
    return Case([session.id], [run.id], prepare, lambda store: store.flush(result))


def _batch_one_session(tag: str) -> Case:
    events = [
        Event(type=EventType.MESSAGE_SENT, session_id=f"b-{tag}", id=f"b-{tag}-{i}")
        for i in range(4)
    ]

    def prepare(store: S3SessionStore) -> None:
        store.append_events(events[:1])

    return Case([f"b-{tag}"], [], prepare, lambda store: store.append_events(events))


def _batch_three_sessions(tag: str) -> Case:
    ids = [f"m{n}-{tag}" for n in range(3)]
    events = [
        Event(type=EventType.MESSAGE_SENT, session_id=ids[i % 3], id=f"m-{tag}-{i}")
        for i in range(5)
    ]

    def prepare(store: S3SessionStore) -> None:
        store.append_events([events[1]])

    return Case(ids, [], prepare, lambda store: store.append_events(events))


def _delete(tag: str) -> Case:
    session = Session(id=f"d-{tag}", agent_id="a")
    runs = [Run(id=f"dr-{tag}-{i}", session_id=session.id) for i in range(2)]
    events = [
        Event(type=EventType.MESSAGE_SENT, session_id=session.id, id=f"d-{tag}-{i}")
        for i in range(3)
    ]

    def prepare(store: S3SessionStore) -> None:
        store.save_session(session)
        for run in runs:
            store.save_run(run)
        store.append_events(events)

    return Case(
        [session.id], [r.id for r in runs], prepare, lambda store: store.delete_session(session.id)
    )


CASES: dict[str, Callable[[str], Case]] = {
    "flush": _flush,
    "append_events-one-session": _batch_one_session,
    "append_events-three-sessions": _batch_three_sessions,
    "delete_session": _delete,
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_failed_write_surfaces_and_leaves_nothing_partial(
    session_store_factory: Factory, name: str
) -> None:
    store = session_store_factory()
    fired = 0
    for fail_at in range(1, 40):
        case = CASES[name](f"k{fail_at}")
        case.prepare(store)
        before = _snapshot(session_store_factory(), case.sessions, case.runs)
        with failing_write(store.asm_fault_target(), fail_at) as plan:
            try:
                case.act(store)
                error = None
            except StoreError as raised:
                error = raised
        if not plan.fired:
            assert error is None
            break
        fired += 1
        assert error is not None, f"{name}: write #{fail_at} failed but the operation succeeded"
        assert error.code in STORAGE_CODES, error
        assert error.retryable, "an injected 500 is a transient failure"
        assert is_injected(error)
        assert _snapshot(session_store_factory(), case.sessions, case.runs) == before, (
            f"{name}: after write #{fail_at} failed, a fresh store sees part of the operation"
        )
        case.act(store)  # the same operation again, without a fault, completes it
        after = _snapshot(session_store_factory(), case.sessions, case.runs)
        assert after == _snapshot(store, case.sessions, case.runs)
        assert after != before
    else:
        pytest.fail(f"{name} kept writing")
    assert fired >= 1


@pytest.mark.parametrize("name", list(CASES))
def test_a_lost_response_leaves_all_or_nothing(session_store_factory: Factory, name: str) -> None:
    store = session_store_factory()
    for fail_at in range(1, 40):
        case = CASES[name](f"a{fail_at}")
        case.prepare(store)
        before = _snapshot(session_store_factory(), case.sessions, case.runs)
        with failing_write(store.asm_fault_target(), fail_at, when="after") as plan:
            try:
                case.act(store)
            except StoreError as error:
                assert error.code in STORAGE_CODES
        if not plan.fired:
            break
        seen = _snapshot(session_store_factory(), case.sessions, case.runs)
        case.act(store)
        complete = _snapshot(session_store_factory(), case.sessions, case.runs)
        assert seen in (before, complete), (
            f"{name}: after the response of write #{fail_at} was lost, a fresh store sees part "
            "of the operation"
        )


def test_target_follows_the_kit_fault_plan_interface(session_store_factory: Factory) -> None:
    """BotocoreTarget arms with the kit's FLUSH-3 policy and fails its k-th write once."""
    store = session_store_factory()
    target = BotocoreTarget(store.asm_fault_target())
    plan = FailNthWrite(2)
    target.arm(plan)
    try:
        with pytest.raises(StoreError) as raised:
            store.append_events(
                [Event(type=EventType.MESSAGE_SENT, session_id="s", id=f"e{i}") for i in range(3)]
            )
    finally:
        target.disarm()
    assert plan.fired and is_injected(raised.value)
    assert raised.value.code is ErrorCode.STORAGE_CONNECTION_FAILED
    assert session_store_factory().get_events("s") == []


def test_throttling_and_connection_faults_are_retryable(session_store_factory: Factory) -> None:
    store = session_store_factory()
    for kind in ("throttle", "connection"):
        with (
            failing_write(store.asm_fault_target(), 1, error=kind),
            pytest.raises(StoreError) as raised,
        ):
            store.save_session(Session(agent_id="a"))
        assert raised.value.code is ErrorCode.STORAGE_CONNECTION_FAILED, kind
        assert raised.value.retryable


def test_reads_are_never_failed_and_the_counter_sees_every_request(
    session_store_factory: Factory,
) -> None:
    store = session_store_factory()
    store.append_event(Event(type=EventType.MESSAGE_SENT, session_id="s"))
    with (
        failing_write(store.asm_fault_target(), 1) as plan,
        RequestCounter(store.asm_fault_target()) as counter,
    ):
        assert len(session_store_factory().get_events("s")) == 1
        store.get_events("s")
    assert not plan.fired
    assert counter.total == 1 and counter.writes == 0  # the up-to-date reader's one probe
