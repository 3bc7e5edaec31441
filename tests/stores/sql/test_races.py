"""Interleavings of concurrent writers that the kit's random races reach only now and then.

Each test stops one transaction at a chosen statement (an engine event), runs the other writer
in a thread meanwhile, and checks the outcome: no hole and no repeat in a session's numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pytest_asm_contract._contract.model import Event, EventType, Session
from reference_stores.sql import SqlSessionStore

#: How long the other writer is given to get past the stopped transaction. A writer that waits
#: for the stopped one's lock never finishes within it; one that is not held back finishes in
#: milliseconds.
BLOCKED_FOR_SECONDS = 1.0


@pytest.fixture
def store(db_url: str, prefix: str) -> Iterator[SqlSessionStore]:
    with SqlSessionStore(db_url, table_prefix=prefix, create_schema=True) as opened:
        yield opened


def _event(session_id: str) -> Event:
    return Event(type=EventType.MESSAGE_SENT, session_id=session_id)


def test_an_append_racing_a_delete_never_leaves_a_hole(store: SqlSessionStore) -> None:
    """delete_session holds the session's counter before it deletes the events.

    Otherwise an append that starts after the counter is gone but commits before the events are
    deleted gets number 1, loses its event to the delete, and leaves a counter at 1 behind it:
    the next append gets 2 and the session shows [2].
    """
    session = Session(agent_id="racer")
    store.save_session(session)
    events_table = store._t.events.name  # the delete is stopped before it removes events
    appended: list[Event] = []
    finished = threading.Event()

    def append() -> None:
        appended.append(store.append_event_with_sequence(_event(session.id)))
        finished.set()

    racer = threading.Thread(target=append)
    stopped = False

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal stopped
        words = statement.split()
        if stopped or words[:2] != ["DELETE", "FROM"] or events_table not in words[2]:
            return
        stopped = True
        racer.start()
        finished.wait(BLOCKED_FOR_SECONDS)  # a correct store keeps the append waiting

    sa.event.listen(store.engine, "before_cursor_execute", before)
    try:
        store.delete_session(session.id)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", before)
    racer.join()
    assert stopped, "the delete never reached its DELETE of events"

    later = store.append_event_with_sequence(_event(session.id))
    stored = [e.sequence_number for e in store.get_events(session.id)]
    assert stored == list(range(1, len(stored) + 1)), (
        f"after an append raced the delete, the session holds numbers {stored}"
    )
    assert later.sequence_number == len(stored)
