"""The SQL statements behind an append: new ids need no lookup, stored ids still map back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, EventType, Session
from reference_stores.sql import SqlSessionStore
from reference_stores.sql.schema import MYSQL_DIALECTS


@pytest.fixture
def store(db_url: str, prefix: str) -> Iterator[SqlSessionStore]:
    with SqlSessionStore(db_url, table_prefix=prefix, create_schema=True) as opened:
        yield opened


class Statements:
    """The first word of every statement the store's engine sends, in order."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.verbs = engine, []

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.verbs.append(statement.split()[0].upper())

    def __enter__(self) -> list[str]:
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self.verbs

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def _events(session_id: str, count: int) -> list[Event]:
    return [Event(type=EventType.MESSAGE_SENT, session_id=session_id) for _ in range(count)]


def test_a_batch_of_new_ids_is_inserted_without_a_lookup(store: SqlSessionStore) -> None:
    session = Session(agent_id="writer")
    with Statements(store.engine) as verbs:
        stored = store.append_events(_events(session.id, 5))
    assert [e.sequence_number for e in stored] == [1, 2, 3, 4, 5]
    # MariaDB reads its counter back with SELECT ... FOR UPDATE; nothing else is read.
    reads = 1 if store.engine.dialect.name in MYSQL_DIALECTS else 0
    assert verbs.count("SELECT") == reads, f"an append of new ids sent {verbs}"


def test_a_batch_with_a_stored_id_returns_the_stored_event(store: SqlSessionStore) -> None:
    session = Session(agent_id="writer")
    first = store.append_events(_events(session.id, 2))
    again = [first[1].model_copy(update={"data": {"changed": True}}), *_events(session.id, 2)]
    stored = store.append_events(again)
    assert stored[0] == first[1]  # first write wins (IDEM-1)
    assert [e.sequence_number for e in stored] == [2, 3, 4]
    assert [e.sequence_number for e in store.get_events(session.id)] == [1, 2, 3, 4]


def test_the_callers_events_stay_as_they_were(store: SqlSessionStore) -> None:
    """The store numbers its own validated copies in place, never the caller's objects."""
    session = Session(agent_id="writer")
    given = _events(session.id, 3)
    before = [(e.model_dump(), set(e.model_fields_set)) for e in given]
    stored = store.append_events(given)
    assert [(e.model_dump(), set(e.model_fields_set)) for e in given] == before
    expected = [e.with_sequence(n) for n, e in enumerate(given, start=1)]
    assert stored == expected
    assert not any(s is g for s, g in zip(stored, given, strict=True))
    assert all("sequence_number" in e.model_fields_set for e in stored)


def test_a_broken_unique_key_other_than_the_id_is_reported(store: SqlSessionStore) -> None:
    """The first try's unique violation sends the batch down the lookup path, whose INSERT
    reports a conflict that is not a stored id; nothing is written."""
    session = Session(agent_id="writer")
    store.append_events(_events(session.id, 2))
    with store.engine.begin() as connection:  # a counter behind its events
        counters = sa.table(f"{store.table_prefix}sequences", sa.column("last_sequence"))
        connection.execute(sa.update(counters).values(last_sequence=0))
    with pytest.raises(StoreError) as caught:
        store.append_events(_events(session.id, 1))
    assert caught.value.code == ErrorCode.STORAGE_WRITE_FAILED
    assert "unique" in str(caught.value).lower() or "duplicate" in str(caught.value).lower()
    assert [e.sequence_number for e in store.get_events(session.id)] == [1, 2]
