"""Rules for appends: single events, with and without sequence, and batches, valid or not."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from pytest_asm_contract._contract.model import Event
from pytest_asm_contract._machine.drawing import Drawing
from pytest_asm_contract._machine.inputs import BAD_ELEMENTS, INVALID_EVENTS
from pytest_asm_contract._machine.writes import append_batch, append_single


class AppendRules(Drawing):
    """append_event, append_event_with_sequence and append_events, with invalid input too."""

    @rule(data=st.data())
    def append_event(self, data: st.DataObject) -> None:
        self.referee.act(append_single, self._event_or_reappend(data), with_sequence=False)

    @rule(data=st.data())
    def append_event_with_sequence(self, data: st.DataObject) -> None:
        self.referee.act(append_single, self._event_or_reappend(data), with_sequence=True)

    @rule(data=st.data())
    def append_invalid_event(self, data: st.DataObject) -> None:
        """One invalid event through a single append: rejected, and no number used (SEQ-1)."""
        bad = self._for_session(data.draw(INVALID_EVENTS), self._session_id(data))
        self.referee.act(append_single, bad, with_sequence=data.draw(st.booleans()))

    @rule(data=st.data())
    def append_events(self, data: st.DataObject) -> None:
        self.referee.act(append_batch, self._batch(data))

    @rule(data=st.data())
    def append_invalid_batch(self, data: st.DataObject) -> None:
        """Not a list, or one invalid element among valid ones: rejected whole (BATCH-3)."""
        if data.draw(st.integers(0, 4)) == 0:
            self.referee.act(append_batch, self._pick(data, [None, "abc", {"id": "e1"}, 42]))
            return
        elements: list[Any] = list(self._batch(data))
        bad = self._for_session(data.draw(BAD_ELEMENTS), self._session_id(data))
        elements.insert(data.draw(st.integers(0, len(elements))), bad)
        self.referee.act(append_batch, elements)

    def _batch(
        self, data: st.DataObject, *, session_id: str | None = None, run_id: Any = ...
    ) -> list[Event]:
        """Up to five events: new ones, ids used before, and ids repeated inside the batch."""
        size = data.draw(st.integers(0, 5))
        single = session_id or (self._session_id(data) if data.draw(st.booleans()) else None)
        batch: list[Event] = []
        for _ in range(size):
            choice = data.draw(st.integers(0, 3))
            if choice == 0 and batch:
                # A repeated id, possibly with new contents (IDEM-3: the first occurrence wins).
                first = self._pick(data, batch)
                if data.draw(st.booleans()):
                    batch.append(first)
                else:
                    batch.append(
                        self._event(
                            data,
                            session_id=first.session_id,
                            run_id=first.run_id,
                            event_id=first.id,
                        )
                    )
            elif choice == 1 and self.used_event_ids and run_id is ...:
                batch.append(self._event_or_reappend(data, session_id=single))
            else:
                batch.append(self._event(data, session_id=single, run_id=run_id))
        return batch
