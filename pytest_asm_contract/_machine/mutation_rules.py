"""A caller that changes an object the store handed out, which must not change the store."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from pytest_asm_contract._machine.drawing import Drawing
from pytest_asm_contract._machine.writes import mutate


class CallerMutationRules(Drawing):
    """Mutates a returned event's data or session's metadata (EVT-4, SES-1)."""

    @precondition(
        lambda self: any(self.referee.model.logs.values()) or bool(self.referee.model.sessions)
    )
    @rule(data=st.data())
    def mutate_returned(self, data: st.DataObject) -> None:
        """Play a caller that changes an object the store handed out (EVT-4, SES-1)."""
        model = self.referee.model
        with_events = sorted(sid for sid, log in model.logs.items() if log)
        if with_events and (not model.sessions or data.draw(st.booleans())):
            self.referee.act(mutate, "events", self._pick(data, with_events))
        else:
            self.referee.act(mutate, "session", self._pick(data, sorted(model.sessions)))
