"""What the kit cannot reach through the Maintenance port of the in-memory store: health_check
on a store whose dicts were corrupted directly, and counters left orphaned behind the port."""

from __future__ import annotations

import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.maintenance import RetentionPolicy
from pytest_asm_contract._contract.model import Event, Session
from reference_stores.memory import InMemoryMaintenance, InMemorySessionStore


@pytest.fixture
def store() -> InMemorySessionStore:
    store = InMemorySessionStore()
    store.save_session(Session(id="s", agent_id="agent"))
    store.append_events(
        [Event(id=f"e{n}", type="message_streamed", session_id="s") for n in (1, 2, 3)]
    )
    return store


def test_only_an_in_memory_store_is_served() -> None:
    with pytest.raises(StoreError) as caught:
        InMemoryMaintenance(object())  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.VALIDATION_ERROR


def test_an_untouched_store_is_healthy(store: InMemorySessionStore) -> None:
    assert InMemoryMaintenance(store).health_check() == []


def test_a_counter_below_the_highest_number_is_reported(store: InMemorySessionStore) -> None:
    lost = store._events["s"].pop(0)  # an event gone without the counter knowing
    del store._event_ids[lost.id]
    assert InMemoryMaintenance(store).health_check() == [
        "session 's': counter 2 is below the highest stored number 3"
    ]


def test_a_repeated_sequence_is_reported(store: InMemorySessionStore) -> None:
    repeated = store._events["s"][1].with_sequence(1)
    store._events["s"][1] = store._event_ids[repeated.id] = repeated
    assert InMemoryMaintenance(store).health_check() == ["session 's': sequence 1 stored 2 times"]


def test_an_event_id_stored_twice_is_reported(store: InMemorySessionStore) -> None:
    copy = store._events["s"][0].model_copy(update={"session_id": "t"})
    store._events["t"] = [copy]
    del store._event_ids["e2"]
    assert InMemoryMaintenance(store).health_check() == [
        "event id 'e1' stored 2 times (sessions 's', 't')",
        "event id 'e2' is stored but missing from the id index",
    ]


def test_an_undecodable_record_is_reported(store: InMemorySessionStore) -> None:
    store._sessions["s"] = store._sessions["s"].model_copy(update={"status": "bogus"})
    [line] = InMemoryMaintenance(store).health_check()
    assert line.startswith("session 's' no longer decodes as Session: status:")


def test_orphaned_counters_are_cleaned_and_counted(store: InMemorySessionStore) -> None:
    store._pruned.update(ghost=4, s=2, bare=1)  # "ghost": no events and no session record
    store.append_events([Event(id="b1", type="message_streamed", session_id="bare")])
    report = InMemoryMaintenance(store).execute(RetentionPolicy(hard_delete_after_days=None))
    assert report.orphaned_sequences_cleaned == 1
    assert report.errors == []
    assert store._pruned == {"s": 2, "bare": 1}
    assert store.get_latest_sequence("ghost") == 0
    store.append_events([Event(id="g1", type="message_streamed", session_id="ghost")])
    assert store.get_latest_sequence("ghost") == 1
