"""Rules for reading events: with random filters, and as a consumer polling with a cursor."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from pytest_asm_contract._machine.drawing import Drawing
from pytest_asm_contract._machine.reads import read_events


class ReadRules(Drawing):
    """get_events with filters, and tailing a session's log with after and limit."""

    @rule(data=st.data())
    def get_events(self, data: st.DataObject) -> None:
        self.referee.act(read_events, self._session_id(data), data.draw(self.filters))

    @precondition(lambda self: any(self.referee.model.logs.values()))
    @rule(data=st.data())
    def tail_events(self, data: st.DataObject) -> None:
        """A consumer polling with a cursor: get_events(after=cursor, limit=n) (EVT-3)."""
        logs = self.referee.model.logs
        sid = self._pick(data, sorted(sid for sid, log in logs.items() if log))
        cursor = data.draw(st.integers(0, self.referee.model.latest_sequence(sid)))
        limit = data.draw(st.integers(1, 3))
        self.referee.act(read_events, sid, {"after": cursor, "limit": limit})
