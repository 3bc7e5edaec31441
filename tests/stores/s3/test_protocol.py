"""The S3 session store's protocol (docs/s3-protocol.md): recovery, bounded reads, keys, sharing.

These go beyond the contract suite: writers that stop between two steps (simulated by running
only the first step), readers that are cold or far behind, ids that stress key encoding, and the
hooks for other processes.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, EventType, Run, RunStatus, Session
from pytest_asm_contract._faults.botocore import RequestCounter
from reference_stores.s3 import S3SessionStore
from reference_stores.s3._log import SessionState
from reference_stores.s3.session_store import Claim, Plan
from tests.stores.s3.conftest import BUCKET

Factory = Callable[..., S3SessionStore]


def _event(session_id: str, event_id: str, **fields: Any) -> Event:
    return Event(type=EventType.MESSAGE_SENT, session_id=session_id, id=event_id, **fields)


def _keys(client: Any, prefix: str, bucket: str = BUCKET) -> list[str]:
    paginator = client.get_paginator("list_objects_v2")
    return [
        obj["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", ())
    ]


def _claim(store: S3SessionStore, session_id: str, event_id: str) -> Claim:
    """Claim ``event_id`` for ``session_id`` in the claim log and stop there, as a crash would."""
    claimed = store._claim({session_id: [event_id]})
    assert not claimed.foreign
    return claimed.claims[session_id][event_id]


# -- a writer that stopped after claiming an event id ------------------------------------------
def test_own_session_reuses_a_claim_left_by_a_stopped_writer(
    session_store_factory: Factory,
) -> None:
    crashed, store = session_store_factory(), session_store_factory(claim_grace_seconds=3600)
    _claim(crashed, "s1", "evt-1")  # claimed, never committed
    with RequestCounter(store.asm_fault_target()) as counter:
        stored = store.append_event_with_sequence(_event("s1", "evt-1"))
    assert stored.sequence_number == 1  # no wait, no revocation: the claim is the session's own
    # Reusing the claim wrote nothing to the claim log: one write, the session's record.
    assert counter.writes == 1, counter.by_operation


def test_another_session_revokes_an_abandoned_claim(session_store_factory: Factory) -> None:
    crashed = session_store_factory()
    _claim(crashed, "owner", "evt-1")
    thief = session_store_factory(claim_grace_seconds=0)
    stored = thief.append_event_with_sequence(_event("other", "evt-1"))
    assert stored.session_id == "other" and stored.sequence_number == 1
    # The owner's log recorded the revocation, so the owner can no longer store the id ...
    owner = session_store_factory()
    assert owner.append_event_with_sequence(_event("owner", "evt-1")) == stored
    assert owner.get_events("owner") == [] and owner.get_latest_sequence("owner") == 0


def test_a_young_claim_of_another_session_is_respected(session_store_factory: Factory) -> None:
    """Within the grace period the id may still be committed by its owner: wait, never steal."""
    crashed = session_store_factory()
    _claim(crashed, "owner", "evt-1")
    patient = session_store_factory(claim_grace_seconds=3600, commit_timeout_seconds=0.5)
    with pytest.raises(StoreError) as raised:
        patient.append_event(_event("other", "evt-1"))
    assert raised.value.code is ErrorCode.TIMEOUT and raised.value.retryable
    assert patient.get_events("other") == []


def test_a_committed_id_is_found_not_stolen(session_store_factory: Factory) -> None:
    owner = session_store_factory()
    original = owner.append_event_with_sequence(_event("owner", "evt-1", data={"v": 1}))
    thief = session_store_factory(claim_grace_seconds=0)
    assert thief.append_event_with_sequence(_event("other", "evt-1", data={"v": 2})) == original
    assert thief._claim({"other": ["evt-1"]}).foreign == {"evt-1": original}


def test_ids_of_a_deleted_session_are_free_at_once(session_store_factory: Factory) -> None:
    """Claims of a deleted generation are dead: no grace period applies to them."""
    store = session_store_factory(claim_grace_seconds=3600, commit_timeout_seconds=5)
    store.append_events([_event("old", f"evt-{i}") for i in range(3)])
    store.delete_session("old")
    moved = store.append_events([_event("new", f"evt-{i}") for i in range(3)])
    assert [e.session_id for e in moved] == ["new"] * 3
    assert [e.sequence_number for e in moved] == [1, 2, 3]
    again = store.append_events([_event("old", "evt-0")])
    assert again == moved[:1], "the id now lives in session 'new'"


# -- claiming costs one claim record per batch ------------------------------------------------
def test_a_batch_of_100_new_events_costs_as_many_requests_as_a_batch_of_1(
    session_store_factory: Factory, s3_client: Any, prefix: str
) -> None:
    store = session_store_factory()
    store.append_event(_event("s", "warm-up"))  # the session and the claim log are cached
    costs = {}
    for size in (1, 10, 100):
        batch = [_event("s", f"b{size}-{i}") for i in range(size)]
        with RequestCounter(store.asm_fault_target()) as counter:
            stored = store.append_events(batch)
        assert [e.id for e in stored] == [e.id for e in batch]
        costs[size] = counter.by_operation
    # One claim record and one session record, whatever the batch size.
    assert costs[1] == costs[10] == costs[100] == {"PutObject": 2}, costs
    assert len(_keys(s3_client, f"{prefix}c/")) == 4
    assert not _keys(s3_client, f"{prefix}i/"), "no per-id marker objects"


def test_a_batch_over_several_sessions_claims_in_one_record(
    session_store_factory: Factory, s3_client: Any, prefix: str
) -> None:
    store = session_store_factory()
    batch = [_event(f"s{i % 3}", f"e{i}") for i in range(30)]
    assert [e.sequence_number for e in store.append_events(batch)] == [
        1 + i // 3 for i in range(30)
    ]
    assert len(_keys(s3_client, f"{prefix}c/")) == 1


def test_a_cold_writer_reads_a_bounded_part_of_the_claim_log(
    session_store_factory: Factory,
) -> None:
    interval = 4
    writer = session_store_factory(snapshot_interval=interval)
    for i in range(10 * interval + 1):
        writer.append_event(_event(f"s{i}", f"e{i}"))
    cold = session_store_factory(snapshot_interval=interval)
    with RequestCounter(cold.asm_fault_target()) as counter:
        cold.append_events([_event("new", f"n{i}") for i in range(50)])
    # The claim log's LIST, snapshot and records after it; the new session's LIST; two writes.
    assert counter.writes == 2 and counter.total <= (interval + 2) + 1 + 2, counter.by_operation
    assert cold.append_event_with_sequence(_event("new", "e3")).session_id == "s3"


# -- a batch over several sessions whose writer stopped before deciding -------------------------
def _pending_record(store: S3SessionStore, session_id: str, txn: str, event_id: str) -> None:
    claim = _claim(store, session_id, event_id)

    def build(state: SessionState) -> Plan:
        return store._events_builder([_event(session_id, event_id)], {event_id: claim}, {}, None)(
            state
        )

    store._commit(store._session_log(session_id), build, xtx=txn)


def test_an_undecided_batch_is_invisible_then_aborted_by_the_next_writer(
    session_store_factory: Factory,
) -> None:
    crashed = session_store_factory()
    crashed.append_event(_event("s", "first"))
    _pending_record(crashed, "s", "txn-1", "pending")
    reader = session_store_factory()
    assert [e.id for e in reader.get_events("s")] == ["first"]
    assert reader.get_latest_sequence("s") == 1
    writer = session_store_factory(claim_grace_seconds=0)
    stored = writer.append_event_with_sequence(_event("s", "next"))
    assert stored.sequence_number == 2, "the aborted record took no number"
    assert writer._decision("txn-1") == "abort"
    assert [e.id for e in session_store_factory().get_events("s")] == ["first", "next"]


def test_a_decided_batch_becomes_visible_everywhere_at_once(session_store_factory: Factory) -> None:
    writer = session_store_factory()
    _pending_record(writer, "a", "txn-2", "in-a")
    _pending_record(writer, "b", "txn-2", "in-b")
    reader = session_store_factory()
    assert reader.get_events("a") == reader.get_events("b") == []
    assert writer._decide("txn-2", "commit") == "commit"
    assert [e.id for e in reader.get_events("a")] == ["in-a"]
    assert [e.id for e in reader.get_events("b")] == ["in-b"]
    assert writer._decide("txn-2", "abort") == "commit", "a decision is made once"


# -- bounded reads -------------------------------------------------------------------------------
def test_reads_cost_a_bounded_number_of_requests(session_store_factory: Factory) -> None:
    interval = 8
    writer = session_store_factory(snapshot_interval=interval)
    tail = session_store_factory(snapshot_interval=interval)
    for i in range(5 * interval + 3):
        writer.append_event(_event("s", f"e{i}"))
    cold = session_store_factory(snapshot_interval=interval)
    with RequestCounter(cold.asm_fault_target()) as counter:
        assert len(cold.get_events("s")) == 5 * interval + 3
    # One LIST, the newest snapshot and the records after it.
    assert counter.total <= interval + 2, counter.by_operation
    with RequestCounter(tail.asm_fault_target()) as counter:
        tail.get_events("s")
    assert counter.total <= interval + 2
    for new in range(4):
        writer.append_event(_event("s", f"more-{new}"))
        with RequestCounter(tail.asm_fault_target()) as counter:
            seen = tail.get_events("s", after=5 * interval + 3 + new)
        assert [e.id for e in seen] == [f"more-{new}"]
        assert counter.total <= 3, counter.by_operation  # probe, LIST, the new record
    with RequestCounter(tail.asm_fault_target()) as counter:
        assert tail.get_events("s", after=10**6) == []
    assert counter.total == 1, "an up-to-date reader pays one probe"


def test_a_reader_far_behind_jumps_to_the_newest_snapshot(session_store_factory: Factory) -> None:
    writer = session_store_factory(snapshot_interval=4)
    reader = session_store_factory(snapshot_interval=4)
    writer.append_event(_event("s", "e0"))
    assert len(reader.get_events("s")) == 1
    for i in range(1, 40):
        writer.append_event(_event("s", f"e{i}"))
    with RequestCounter(reader.asm_fault_target()) as counter:
        assert [e.sequence_number for e in reader.get_events("s")] == list(range(1, 41))
    assert counter.total <= 4 + 3, counter.by_operation


def test_stores_with_another_snapshot_interval_still_read_the_log(
    session_store_factory: Factory,
) -> None:
    writer = session_store_factory(snapshot_interval=3)
    for i in range(20):
        writer.append_event(_event("s", f"e{i}"))
    assert len(session_store_factory(snapshot_interval=7).get_events("s")) == 20


# -- keys -----------------------------------------------------------------------------------------
HOSTILE_IDS = [
    "../x",
    "a/b",
    "a%2Fb",
    "%",
    ".",
    "..",
    "~x",
    "Ses",
    "ses",
    "e\u0301",
    "\u00e9",
    "x" * 255,
]


def test_ids_stay_inside_the_prefix_and_apart(
    session_store_factory: Factory, s3_client: Any, prefix: str
) -> None:
    bucket = f"keys-{uuid.uuid4().hex[:20]}"  # a bucket of its own, to list all of it
    s3_client.create_bucket(Bucket=bucket)
    store = session_store_factory(bucket=bucket)
    for index, value in enumerate(HOSTILE_IDS):
        store.save_session(Session(id=value, agent_id=f"agent-{index}"))
        store.save_run(Run(id=value, session_id=value, status=RunStatus.RUNNING))
        store.append_event(_event(value, f"evt-{index}-{value}"[:255], data={"index": index}))
    fresh = session_store_factory(bucket=bucket)
    for index, value in enumerate(HOSTILE_IDS):
        assert fresh.get_session(value).agent_id == f"agent-{index}"
        assert fresh.get_run(value).session_id == value
        assert [e.data["index"] for e in fresh.get_events(value)] == [index]
    assert sorted(s.id for s in fresh.list_sessions()) == sorted(HOSTILE_IDS)
    keys = _keys(s3_client, "", bucket)
    assert keys and all(k.startswith(prefix) for k in keys), "a key left the store's prefix"
    assert all(".." not in k.split("/") for k in keys)
    # prefix + kind + encoded id (+ "l" + position for log records): never more segments.
    assert all(len(k[len(prefix) :].split("/")) in (2, 4) for k in keys), keys


def test_long_unicode_ids_use_a_digest_and_still_list(
    session_store_factory: Factory, s3_client: Any, prefix: str
) -> None:
    long_id = "\U0001f600" * 255
    store = session_store_factory()
    store.save_session(Session(id=long_id, agent_id="a"))
    assert [s.id for s in session_store_factory().list_sessions()] == [long_id]
    assert all(len(k.encode()) <= 1024 for k in _keys(s3_client, prefix))
    assert any("/~" in k for k in _keys(s3_client, prefix))


# -- runs ----------------------------------------------------------------------------------------
def test_a_run_saved_under_another_session_moves(session_store_factory: Factory) -> None:
    store = session_store_factory()
    run = Run(id="r", session_id="a", status=RunStatus.RUNNING)
    store.save_run(run)
    moved = run.model_copy(update={"session_id": "b"})
    store.save_run(moved)
    fresh = session_store_factory()
    assert fresh.get_run("r") == moved
    assert fresh.list_runs("a") == [] and fresh.get_active_run("a") is None
    assert fresh.list_runs("b") == [moved]


# -- other processes and instances ---------------------------------------------------------------
def test_reopen_spec_and_pickling_open_the_same_namespace(session_store_factory: Factory) -> None:
    store = session_store_factory()
    store.append_event(_event("s", "e"))
    target, options = store.asm_reopen_spec()
    assert target == "reference_stores.s3.session_store:S3SessionStore"
    assert "create_bucket" not in options
    pickle.dumps(options)
    assert [e.id for e in S3SessionStore(**options).get_events("s")] == ["e"]
    assert [e.id for e in pickle.loads(pickle.dumps(store)).get_events("s")] == ["e"]


def test_a_store_without_a_prefix_starts_empty(moto_endpoint: str) -> None:
    first = S3SessionStore(endpoint_url=moto_endpoint, bucket=BUCKET)
    first.save_session(Session(id="s", agent_id="a"))
    second = S3SessionStore(endpoint_url=moto_endpoint, bucket=BUCKET)
    assert second.list_sessions() == [] and first.prefix != second.prefix
    assert isinstance(first.asm_fault_target(), object)


def test_a_store_built_from_a_client_cannot_describe_how_to_reopen(s3_client: Any) -> None:
    store = S3SessionStore(client=s3_client, bucket=BUCKET)
    with pytest.raises(StoreError) as raised:
        store.asm_reopen_spec()
    assert raised.value.code is ErrorCode.VALIDATION_ERROR
