"""Rules for appends: single events, with and without sequence, and batches, valid or not."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from pytest_asm_contract._contract.model import Event
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.comparisons import Comparisons
from pytest_asm_contract._machine.drawing import Drawing
from pytest_asm_contract._machine.inputs import BAD_ELEMENTS, INVALID_EVENTS
from pytest_asm_contract._machine.oracle import NEW


class AppendRules(Comparisons, Drawing):
    """append_event, append_event_with_sequence and append_events, with invalid input too."""

    @rule(data=st.data())
    def append_event(self, data: st.DataObject) -> None:
        self._act("_append_single", self._event_or_reappend(data), with_sequence=False)

    @rule(data=st.data())
    def append_event_with_sequence(self, data: st.DataObject) -> None:
        self._act("_append_single", self._event_or_reappend(data), with_sequence=True)

    @rule(data=st.data())
    def append_invalid_event(self, data: st.DataObject) -> None:
        """One invalid event through a single append: rejected, and no number used (SEQ-1)."""
        bad = self._for_session(data.draw(INVALID_EVENTS), self._session_id(data))
        self._act("_append_single", bad, with_sequence=data.draw(st.booleans()))

    def _append_single(self, event: Event, *, with_sequence: bool) -> None:
        op = "append_event_with_sequence" if with_sequence else "append_event"
        op_rule = "SEQ-1" if with_sequence else "EVT-1"
        session_id, event_id = getattr(event, "session_id", None), getattr(event, "id", None)
        self._begin_write(op, op_rule, [session_id] if isinstance(session_id, str) else [])
        self.last.inputs = {event_id: event} if isinstance(event_id, str) else {}
        outcome = self.model.append_one(event)
        if outcome.kinds:
            self.last.kinds = {event.id: outcome.kinds[0]}
        code = repro.lazy_call(op, event)
        method = getattr(self.store, op)
        value, error = self._call(lambda: method(event))

        def check(returned: Any) -> None:
            if not with_sequence:
                if returned is not None:
                    self._mismatch(
                        "EVT-1",
                        f"append_event returned {returned!r:.80}, not None",
                        code,
                        "result",
                        None,
                    )
                return
            self._compare_appended(
                code, [outcome.result], returned, outcome.kinds, [event], op_rule, single=True
            )

        if self._settle(
            outcome, code, value, error, op=op, ok_rule=op_rule, fail_rule=op_rule, check=check
        ):
            self._after_append(outcome, [event])
            self.coverage.hit(
                "append_event_with_sequence stored an event"
                if with_sequence
                else "append_event stored an event"
            )
        elif outcome.must_fail:
            self.coverage.hit("invalid single event rejected")

    @rule(data=st.data())
    def append_events(self, data: st.DataObject) -> None:
        self._act("_append_batch", self._batch(data))

    def _batch(
        self, data: st.DataObject, *, session_id: str | None = None, run_id: Any = ...
    ) -> list[Event]:
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

    def _append_batch(self, batch: Any, *, op_label: str = "append_events") -> bool:
        items: list[Any] = batch if isinstance(batch, list) else []
        sessions = sorted(
            {e.session_id for e in items if isinstance(e, Event) and isinstance(e.session_id, str)}
        )
        self._begin_write("append_events", "BATCH-1", sessions)
        valid = [e for e in items if isinstance(e, Event)]
        self.last.inputs = {e.id: e for e in reversed(valid)}
        self.last.mixed = len(sessions) > 1
        outcome = self.model.append_batch(batch)
        if outcome.succeeds:
            self.last.kinds = {}
            for event, kind in zip(valid, outcome.kinds, strict=True):
                self.last.kinds.setdefault(event.id, kind)
        code = repro.lazy_call("append_events", list(items) if items else batch)
        value, error = self._call(lambda: self.store.append_events(batch))

        def check(returned: Any) -> None:
            self._compare_appended(
                code, outcome.result, returned, outcome.kinds, items, "BATCH-1", single=False
            )

        ok = self._settle(
            outcome,
            code,
            value,
            error,
            op=op_label,
            ok_rule="BATCH-1",
            fail_rule="BATCH-3",
            check=check,
        )
        if ok:
            self._after_append(outcome, valid)
            if not items:
                self.coverage.hit("empty batch")
            if NEW in outcome.kinds:
                self.coverage.hit("batch stored new events")
            if len(sessions) > 1:
                self.coverage.hit("batch mixing sessions")
        elif outcome.must_fail:
            self.coverage.hit("invalid batch rejected")
        return ok

    @rule(data=st.data())
    def append_invalid_batch(self, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 4)) == 0:
            self._act("_append_batch", self._pick(data, [None, "abc", {"id": "e1"}, 42]))
            return
        elements: list[Any] = list(self._batch(data))
        bad = self._for_session(data.draw(BAD_ELEMENTS), self._session_id(data))
        elements.insert(data.draw(st.integers(0, len(elements))), bad)
        self._act("_append_batch", elements)
