"""Rules for reading events: with random filters, and as a consumer polling with a cursor."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.comparisons import Comparisons
from pytest_asm_contract._machine.drawing import Drawing


class ReadRules(Comparisons, Drawing):
    """get_events with filters, and tailing a session's log with after and limit."""

    @rule(data=st.data())
    def get_events(self, data: st.DataObject) -> None:
        self._act("_read_events", self._session_id(data), data.draw(self.filters))

    def _read_events(self, sid: str, kwargs: dict[str, Any]) -> None:
        outcome = self.model.get_events(sid, **kwargs)
        code = repro.lazy_call("get_events", sid, **kwargs)
        value, error = self._call(lambda: self.store.get_events(sid, **kwargs))
        filtered = any(v is not None for v in kwargs.values())
        read_rule = "EVT-3" if filtered else "EVT-2"

        def check(found: Any) -> None:
            self._compare_list(
                read_rule,
                "get_events",
                code,
                outcome.result,
                found,
                "[(e.id, e.sequence_number) for e in result]",
            )

        if self._settle(
            outcome,
            code,
            value,
            error,
            op="get_events",
            ok_rule=read_rule,
            fail_rule="EVT-3",
            check=check,
            read=True,
        ):
            if filtered:
                self.coverage.hit("events read with filters")
        else:
            self.coverage.hit("invalid event filter rejected")

    @precondition(lambda self: any(self.model.logs.values()))
    @rule(data=st.data())
    def tail_events(self, data: st.DataObject) -> None:
        """A consumer polling with a cursor: get_events(after=cursor, limit=n) (EVT-3)."""
        sid = self._pick(data, sorted(sid for sid, log in self.model.logs.items() if log))
        cursor = data.draw(st.integers(0, self.model.latest_sequence(sid)))
        self._act("_read_events", sid, {"after": cursor, "limit": data.draw(st.integers(1, 3))})
