"""SQL stores with one deliberate flaw each: the kit's fault and limit checks must catch them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa

from pytest_asm_contract._contract.model import Event, ExecutionResult
from pytest_asm_contract._contract.validation import as_execution_result
from reference_stores.sql import codec
from reference_stores.sql.store import SqlSessionStore

T = TypeVar("T")


class SplitFlushStore(SqlSessionStore):
    """flush saves the session and run in one transaction and the events in another."""

    BREAKS = ("FLUSH-3",)

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        self.save_session(checked.session)
        self.save_run(checked.run)
        self.append_events(checked.events)


class RawErrorStore(SqlSessionStore):
    """Driver exceptions of writes escape unwrapped."""

    BREAKS = ("FLUSH-3",)

    def _write(self, operation: str, fn: Callable[[sa.Connection], T]) -> T:
        with self._engine.begin() as connection:
            self._begin_write(connection)
            return fn(connection)


class CounterOutsideTransactionStore(SqlSessionStore):
    """Sequence numbers are reserved and committed before the events are written."""

    BREAKS = ("FLUSH-3",)

    def _store_events(
        self, connection: sa.Connection, events: list[Event], assume_new: bool = False
    ) -> list[Event]:
        first: dict[str, Event] = {}
        for event in events:
            first.setdefault(event.id, event)
        stored = self._events_by_id(connection, list(first))
        new: dict[str, list[Event]] = {}
        for event in first.values():
            if event.id not in stored:
                new.setdefault(event.session_id, []).append(event)
        rows = []
        for session_id, fresh in new.items():
            with self._engine.begin() as own:  # the mistake: its own, committed transaction
                self._begin_write(own)
                last = self._reserve(own, session_id, len(fresh))
            for number, event in enumerate(fresh, start=last - len(fresh) + 1):
                stored[event.id] = event.with_sequence(number)
                rows.append(codec.event_row(event, number))
        if rows:
            connection.execute(self._statements.insert_event, rows)
        return [stored[event.id] for event in events]
