"""Rules that follow the shape of real ASM traffic: a run saved as running, its events
appended by the pipeline in batches, then one final flush."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from pytest_asm_contract._contract.model import (
    Event,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from pytest_asm_contract._machine.checks import check_state
from pytest_asm_contract._machine.drawing import Drawing
from pytest_asm_contract._machine.inputs import BAD_ELEMENTS, FINAL_RUN_STATUSES, ONE_IN_FOUR
from pytest_asm_contract._machine.writes import append_batch, save_run, save_session


@dataclasses.dataclass
class Pipeline:
    """A run in progress: saved as running, its events appended in batches, flushed at the end."""

    session: Session
    run: Run
    events: list[Event]


class PipelineRules(Drawing):
    """A run in progress, step by step or in one step: running, batches, final flush."""

    #: The run in progress of ``start_run``, ``pipeline_batch`` and ``finish_run``.
    pipeline: Pipeline | None

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
            check_state(self.referee)
            self._pipeline_batch(data, pipeline)
        check_state(self.referee)
        self._finish_pipeline(data, pipeline)

    def _start_pipeline(self, data: st.DataObject) -> Pipeline | None:
        sid = self._session_id(data)
        session = self.referee.model.sessions.get(sid)
        if session is None:
            session = self._session(data, session_id=sid)
            if not self.referee.act(save_session, session):
                return None
            check_state(self.referee)
        run = self._run(data, session_id=sid, status=RunStatus.RUNNING)
        return Pipeline(session, run, []) if self.referee.act(save_run, run) else None

    def _pipeline_batch(self, data: st.DataObject, pipeline: Pipeline) -> None:
        batch: list[Any] = [
            self._event(data, session_id=pipeline.session.id, run_id=pipeline.run.id)
            for _ in range(data.draw(st.integers(1, 4)))
        ]
        if data.draw(ONE_IN_FOUR) == 0:
            # A corrupt event in the pipeline: the whole batch must be rejected (BATCH-3).
            bad = self._for_session(data.draw(BAD_ELEMENTS), pipeline.session.id)
            batch.insert(data.draw(st.integers(0, len(batch))), bad)
        if self.referee.act(append_batch, batch, op_label="append_events (pipeline batch)"):
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
        if self._flush(result, result):
            self.referee.coverage.hit("pipeline run finished (running, batches, flush)")
