"""The adapter's own tests, next to the contract suite: what the contract does not cover."""

from __future__ import annotations

from pathlib import Path

from pytest_asm_contract import Event, EventType, Session

from asm_sqlite_store import SqliteSessionStore


def test_data_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    session = Session(agent_id="agent-1")
    first = SqliteSessionStore(path)
    first.save_session(session)
    stored = first.append_event_with_sequence(
        Event(type=EventType.MESSAGE_SENT, session_id=session.id)
    )
    first.close()

    again = SqliteSessionStore(path)
    try:
        assert again.get_session(session.id) == session
        assert again.get_events(session.id) == [stored]
        assert again.get_latest_sequence(session.id) == 1
    finally:
        again.close()


def test_reopen_spec_builds_a_store_on_the_same_file(tmp_path: Path) -> None:
    store = SqliteSessionStore(tmp_path / "sessions.sqlite3")
    try:
        target, kwargs = store.asm_reopen_spec()
        assert target == "asm_sqlite_store:SqliteSessionStore"
        assert kwargs == {"path": str(store.path)}
    finally:
        store.close()
