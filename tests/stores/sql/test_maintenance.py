"""``SqlMaintenance`` where the port alone cannot reach: rows corrupted with SQL, counters read
directly, batches and a counter whose append commits while the cleaner waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.maintenance import RetentionPolicy
from pytest_asm_contract._contract.model import Event, EventType, Run, Session, SessionStatus
from pytest_asm_contract._contract.query import ArtifactMeta
from reference_stores.maintenance_front import Cutoffs
from reference_stores.sql import SqlArtifactRegistry, SqlMaintenance, SqlSessionStore, codec

NOW = datetime(2030, 1, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=365)
#: Only the step under test does anything.
NOTHING_DUE = RetentionPolicy(max_completed_session_age_days=None, hard_delete_after_days=None)


@pytest.fixture
def store(db_url: str, prefix: str) -> Iterator[SqlSessionStore]:
    with SqlSessionStore(db_url, table_prefix=prefix, create_schema=True) as opened:
        yield opened


def _events(session_id: str, count: int) -> list[Event]:
    return [Event(type=EventType.MESSAGE_SENT, session_id=session_id) for _ in range(count)]


def _run_sql(store: SqlSessionStore, statement: Any) -> None:
    with store.engine.begin() as connection:
        connection.execute(statement)


def _counters(store: SqlSessionStore) -> dict[str, int]:
    table = store._t.sequences
    with store.engine.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(sa.select(table))}


def test_health_check_reports_each_problem(store: SqlSessionStore) -> None:
    t = store._t
    sessions = [Session(agent_id="health") for _ in range(4)]
    for session in sessions:
        store.save_session(session)
    behind, uncounted, bad_event, bad_session = (s.id for s in sessions)
    run = Run(session_id=behind)
    store.save_run(run)
    for session_id in (behind, uncounted, bad_event):
        store.append_events(_events(session_id, 3))
    meta = SqlArtifactRegistry(store).register(ArtifactMeta(session_id=behind, key="k"))
    maintenance = SqlMaintenance(store)
    assert maintenance.health_check() == []

    # No unique keys on a copy of the events table, so that rows can repeat.
    events, name = t.events, t.events.name
    copy = sa.Table(f"{name}_copy", sa.MetaData(), *(sa.Column(c.name, c.type) for c in events.c))
    with store.engine.begin() as connection:
        copy.create(connection)
        connection.execute(copy.insert().from_select(list(events.c.keys()), sa.select(events)))
        events.drop(connection)
        connection.exec_driver_sql(f"ALTER TABLE {name}_copy RENAME TO {name}")
    repeated, broken = store.get_events(bad_event)[:2]
    counters = t.sequences
    for statement in (
        counters.update().where(counters.c.session_id == behind).values(last_sequence=1),
        counters.delete().where(counters.c.session_id == uncounted),
        events.insert().values(codec.event_row(repeated, 1)),
        events.update().where(events.c.id == broken.id).values(data="["),
        t.sessions.update().where(t.sessions.c.id == bad_session).values(status="lost"),
        t.runs.update().values(token_usage="[]"),
        t.artifact_registry.update().values(metadata="1"),
    ):
        _run_sql(store, statement)

    problems = maintenance.health_check()
    expected = [
        f"session {behind!r}: sequence counter 1 is below the highest stored sequence number 3",
        f"session {uncounted!r}: 3 stored events but no sequence counter",
        f"session {bad_event!r}: sequence number 1 is stored 2 times",
        f"event id {repeated.id!r} is stored 2 times",
        f"{t.sessions.name} row {bad_session!r} does not decode as Session",
        f"{t.runs.name} row {run.id!r} does not decode as Run",
        f"{name} row {broken.id!r} does not decode as Event",
        f"{t.artifact_registry.name} row {meta.id!r} does not decode as ArtifactMeta",
    ]
    assert len(problems) == len(expected), problems
    for line in expected:
        assert any(problem.startswith(line) for problem in problems), (line, problems)


def test_orphaned_counters_are_cleaned_and_counted(store: SqlSessionStore) -> None:
    saved = Session(agent_id="kept")
    store.save_session(saved)
    store.append_events(_events("no-session-but-events", 2))  # kept: it holds events
    counters = store._t.sequences
    for session_id in ("orphan-1", "orphan-2", saved.id):  # the last one's session exists
        _run_sql(store, counters.insert().values(session_id=session_id, last_sequence=5))

    report = SqlMaintenance(store).execute(NOTHING_DUE, now=NOW)

    assert report.orphaned_sequences_cleaned == 2
    assert report.errors == []
    assert _counters(store) == {"no-session-but-events": 2, saved.id: 5}


def test_a_counter_whose_events_commit_while_the_cleaner_waits_is_kept(
    store: SqlSessionStore,
) -> None:
    """The cleaner reads "x" as orphaned while an append to it holds its counter; the append
    commits event 4, and the cleaner must see it (a lone DELETE on PostgreSQL would not)."""
    t = store._t
    _run_sql(store, t.sequences.insert().values(session_id="x", last_sequence=3))
    maintenance = SqlMaintenance(store)
    cleaned: list[int] = []
    connection = store.engine.connect()
    transaction = connection.begin()
    try:
        store._begin_write(connection)
        store._reserve(connection, "x", 1)
        connection.execute(t.events.insert().values(codec.event_row(_events("x", 1)[0], 4)))
        cleaner = threading.Thread(
            target=lambda: cleaned.append(maintenance._clean_orphaned_counters())
        )
        cleaner.start()
        time.sleep(1.0)  # long enough for the cleaner to wait for the counter's lock
        transaction.commit()
    finally:
        connection.close()
    cleaner.join()
    assert cleaned == [0]
    assert store.get_latest_sequence("x") == 4
    assert store.append_event_with_sequence(_events("x", 1)[0]).sequence_number == 5


def test_a_prune_leaves_the_counter_row_as_it_was(store: SqlSessionStore) -> None:
    session = Session(agent_id="pruned")
    store.save_session(session)
    first = store.append_events(_events(session.id, 5))
    before = _counters(store)
    maintenance = SqlMaintenance(store)
    policy = NOTHING_DUE.model_copy(update={"max_events_per_session": 2})

    assert maintenance.prune_session_events(session.id, policy) == 3
    assert maintenance.prune_session_events("never-seen", policy) == 0

    assert _counters(store) == before  # untouched, and no counter made for "never-seen"
    assert [e.sequence_number for e in store.get_events(session.id)] == [4, 5]
    again = store.append_event_with_sequence(first[0])  # pruned: stored anew
    assert again.sequence_number == 6
    assert maintenance.health_check() == []


def test_soft_delete_marks_every_due_session_in_small_batches(store: SqlSessionStore) -> None:
    """Batches of 2 over ids sorted so that the first batches hold only pinned sessions."""
    done = SessionStatus.COMPLETED
    pinned = [
        Session(
            id=f"a{n}", agent_id="b", status=done, created_at=OLD, updated_at=OLD, tags=["pinned"]
        )
        for n in range(4)
    ]
    due = [
        Session(id=f"b{n}", agent_id="b", status=done, created_at=OLD, updated_at=OLD)
        for n in range(5)
    ]
    for session in pinned + due:
        store.save_session(session)
    policy = RetentionPolicy(max_completed_session_age_days=30, batch_size=2)
    maintenance = SqlMaintenance(store)

    assert maintenance.soft_delete_expired_sessions(policy, now=NOW) == 5
    assert maintenance.soft_delete_expired_sessions(policy, now=NOW) == 0

    for session in due:  # deleted_at set, every other field as it was
        assert store.get_session(session.id) == session.model_copy(update={"deleted_at": NOW})
    assert [store.get_session(s.id) for s in pinned] == pinned


def test_a_hard_delete_skips_a_session_saved_since_it_was_found_due(
    store: SqlSessionStore,
) -> None:
    session = Session(agent_id="saved", deleted_at=OLD)
    store.save_session(session)
    maintenance = SqlMaintenance(store)
    cutoffs = Cutoffs.of(RetentionPolicy(), NOW)
    assert maintenance._hard_delete_due(cutoffs) == [session.id]

    store.save_session(session.model_copy(update={"deleted_at": None}))  # restored meanwhile

    assert maintenance._hard_delete(session.id, cutoffs) is False
    assert store.get_session(session.id).deleted_at is None
    assert maintenance._hard_delete("never-seen", cutoffs) is False


def test_it_serves_only_a_sql_store() -> None:
    with pytest.raises(StoreError, match="SqlMaintenance serves a SqlSessionStore") as raised:
        SqlMaintenance(object())  # type: ignore[arg-type]
    assert raised.value.code == ErrorCode.VALIDATION_ERROR
