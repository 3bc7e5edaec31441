"""Rules that follow the shape of real ASM traffic: a run saved as running, its events
appended by the pipeline in batches, then one final flush."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from pytest_asm_contract._contract.model import ExecutionResult, RunStatus, SessionStatus
from pytest_asm_contract._machine.base import Pipeline
from pytest_asm_contract._machine.checks import StateChecks
from pytest_asm_contract._machine.drawing import Drawing
from pytest_asm_contract._machine.inputs import BAD_ELEMENTS, FINAL_RUN_STATUSES, ONE_IN_FOUR


class PipelineRules(StateChecks, Drawing):
    """A run in progress, step by step or in one step: running, batches, final flush."""

    @precondition(lambda self: self.pipeline is None)
    @rule(data=st.data())
    def start_run(self, data: st.DataObject) -> None:
        """Save a run as running (and its session first, if the store has none)."""
        self.pipeline = self._start_pipeline(data)

    @precondition(lambda self: self.pipeline is not None)
    @rule(data=st.data())
    def pipeline_batch(self, data: st.DataObject) -> None:
        """The event pipeline appends a batch of the running run's events."""
        assert self.pipeline is not None
        self._pipeline_batch(data, self.pipeline)

    @precondition(lambda self: self.pipeline is not None)
    @rule(data=st.data())
    def finish_run(self, data: st.DataObject) -> None:
        """The run ends: flush its session, run and buffered events."""
        assert self.pipeline is not None
        pipeline, self.pipeline = self.pipeline, None
        self._finish_pipeline(data, pipeline)

    @rule(data=st.data())
    def run_pipeline(self, data: st.DataObject) -> None:
        """A whole run in one step: running, one to three pipeline batches, the final flush."""
        pipeline = self._start_pipeline(data)
        if pipeline is None:
            return
        for _ in range(data.draw(st.integers(1, 3))):
            self._check_state()
            self._pipeline_batch(data, pipeline)
        self._check_state()
        self._finish_pipeline(data, pipeline)

    def _start_pipeline(self, data: st.DataObject) -> Pipeline | None:
        sid = self._session_id(data)
        session = self.model.sessions.get(sid)
        if session is None:
            session = self._session(data, session_id=sid)
            if not self._act("_save_session", session):
                return None
            self._check_state()
        run = self._run(data, session_id=sid, status=RunStatus.RUNNING)
        return Pipeline(session, run, []) if self._act("_save_run", run) else None

    def _pipeline_batch(self, data: st.DataObject, pipeline: Pipeline) -> None:
        batch: list[Any] = [
            self._event(data, session_id=pipeline.session.id, run_id=pipeline.run.id)
            for _ in range(data.draw(st.integers(1, 4)))
        ]
        if data.draw(ONE_IN_FOUR) == 0:
            # A corrupt event in the pipeline: the whole batch must be rejected (BATCH-3).
            bad = self._for_session(data.draw(BAD_ELEMENTS), pipeline.session.id)
            batch.insert(data.draw(st.integers(0, len(batch))), bad)
        if self._act("_append_batch", batch, op_label="append_events (pipeline batch)"):
            pipeline.events.extend(batch)

    def _finish_pipeline(self, data: st.DataObject, pipeline: Pipeline) -> None:
        final = [
            self._event(data, session_id=pipeline.session.id, run_id=pipeline.run.id)
            for _ in range(data.draw(st.integers(0, 2)))
        ]
        run = pipeline.run.model_copy(
            update={
                "status": data.draw(FINAL_RUN_STATUSES),
                "ended_at": data.draw(self.any_moment),
                "turn_count": pipeline.run.turn_count + 1,
                "output": {"text": "done"},
            }
        )
        session = pipeline.session.model_copy(update={"status": SessionStatus.COMPLETED})
        result = ExecutionResult(session=session, run=run, events=[*pipeline.events, *final])
        if self._act("_flush", result, result):
            self.coverage.hit("pipeline run finished (running, batches, flush)")
