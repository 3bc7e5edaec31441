"""A caller that changes an object the store handed out, which must not change the store."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from pytest_asm_contract._contract.model import Event, Session
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.constants import MUTATION_KEY
from pytest_asm_contract._machine.drawing import Drawing


class CallerMutationRules(Drawing):
    """Mutates a returned event's data or session's metadata (EVT-4, SES-1)."""

    @precondition(lambda self: any(self.model.logs.values()) or bool(self.model.sessions))
    @rule(data=st.data())
    def mutate_returned(self, data: st.DataObject) -> None:
        """Play a caller that changes an object the store handed out (EVT-4, SES-1)."""
        with_events = sorted(sid for sid, log in self.model.logs.items() if log)
        if with_events and (not self.model.sessions or data.draw(st.booleans())):
            self._act("_mutate", "events", self._pick(data, with_events))
        else:
            self._act("_mutate", "session", self._pick(data, sorted(self.model.sessions)))

    def _mutate(self, what: str, sid: str) -> None:
        target: Any = None
        if what == "events":
            code = f"store.get_events({repro.render(sid)})[0].data[{MUTATION_KEY!r}] = True"
            value, error = self._call(lambda: self.store.get_events(sid))
            if error is None and isinstance(value, list) and value and isinstance(value[0], Event):
                target = value[0].data
        else:
            code = f"store.get_session({repro.render(sid)}).metadata[{MUTATION_KEY!r}] = True"
            value, error = self._call(lambda: self.store.get_session(sid))
            if error is None and isinstance(value, Session):
                target = value.metadata
        if not isinstance(target, dict):
            return  # the comparisons report a store that cannot read this back
        target[MUTATION_KEY] = True
        self._begin_write("mutate_returned", "EVT-4", [sid])
        self._record(code)
        self.coverage.hit("caller mutated a returned object")
