"""Broken stores for the FLUSH rules."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

from pytest_asm_contract._contract.model import ExecutionResult
from pytest_asm_contract._contract.validation import (
    as_events,
    as_execution_result,
    as_run,
    as_session,
)
from pytest_asm_contract._faults.gate import FaultGate
from reference_stores.memory import InMemorySessionStore
from tests.zoo import HISTORY_RULES


class FlushOnlyEvents(InMemorySessionStore):
    """flush appends the events but never saves the session and the run."""

    BREAKS = ("FLUSH-1",)
    # a flush that drops the session and run fails every flush check
    ALSO = ("FLUSH-2", "FLUSH-3", "FLUSH-4", "FLUSH-5")

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        self.append_events(as_execution_result(result).events)


class FlushNotAtomic(InMemorySessionStore):
    """flush saves the session and the run first and only then validates and appends the events,
    so a rejected payload leaves the session and run changed."""

    BREAKS = ("FLUSH-2",)
    # parts of a flush are visible to readers and after faults
    ALSO = (*HISTORY_RULES, "FLUSH-3")

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        if isinstance(result, ExecutionResult):
            self.save_session(result.session)
            self.save_run(result.run)
        super().flush(result)


class FlushWithoutMembershipChecks(InMemorySessionStore):
    """flush validates each part of an ExecutionResult but never checks that the run and the
    events belong to the flushed session and run."""

    BREAKS = ("FLUSH-2",)
    # its own write path passes the fault gate differently, so FLUSH-3 sees part of an operation
    ALSO = ("FLUSH-3",)

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        if not isinstance(result, ExecutionResult):
            super().flush(result)
            return
        session, run = as_session(result.session), as_run(result.run)
        events = as_events(result.events)
        with self._lock:
            self._sessions[session.id] = session
            self._runs[run.id] = run
            for event in events:
                self._store_event(event)
            self._appended.notify_all()


class FlushRawKeyError(InMemorySessionStore):
    """flush indexes a mapping payload directly, so a mapping without session, run or events
    escapes as a raw KeyError instead of validation_error."""

    BREAKS = ("FLUSH-2", "PORT-3")

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        if isinstance(result, Mapping):
            result = ExecutionResult.model_construct(
                session=result["session"], run=result["run"], events=result["events"]
            )
        super().flush(result)


class FlushStoresEventsTwice(InMemorySessionStore):
    """flush inserts its events without the id check append uses, so a retried flush stores every
    event a second time under a new number."""

    BREAKS = ("FLUSH-4", "IDEM-1")
    # events stored twice by a flush show as repeated ids everywhere
    ALSO = (*HISTORY_RULES, "FLUSH-3", "IDEM-3")

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        with self._lock:
            self._sessions[checked.session.id] = checked.session
            self._runs[checked.run.id] = checked.run
            for event in checked.events:
                log = self._events.setdefault(event.session_id, [])
                stored = event.model_copy(update={"sequence_number": len(log) + 1}, deep=True)
                log.append(stored)
                self._event_ids[stored.id] = stored
            self._appended.notify_all()


class FlushVisibleInSteps(InMemorySessionStore):
    """flush writes the session, the run and the events under separate locks (as three
    transactions would), so a concurrent reader sees a half-done flush. (The pauses between the
    steps widen the window.)"""

    BREAKS = ("FLUSH-5",)

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        # Every write passes the fault gate before the first step, as the parent's do: the bug
        # is the lock released between steps, not a write the kit cannot fail.
        with self._backend("flush") as gate:
            with self._lock:
                for what in ("session", "run", "events"):
                    gate.before_write(what)
                self._sessions[checked.session.id] = checked.session.model_copy(deep=True)
            time.sleep(0.002)
            with self._lock:
                self._runs[checked.run.id] = checked.run.model_copy(deep=True)
            time.sleep(0.002)
            with self._lock:
                for event in checked.events:
                    self._store_event(event)
                if checked.events:
                    self._appended.notify_all()
            gate.after_commit("flush")


class FlushHookOnTheWrongObject(InMemorySessionStore):
    """Its fault hook returns something the kit cannot inject failures into (the store itself,
    not a SQLAlchemy Engine, a botocore client or a FaultGate): FLUSH-3 fails with the reason,
    rather than being skipped as for a store without the hook."""

    BREAKS = ("FLUSH-3",)
    # the ambiguous-failure check finds no write through the hook's target
    # BATCH-6: its fault check stops where FLUSH-3 does, at the hook
    ALSO = ("BATCH-6", "FLUSH-4", "IDEM-1", "IDEM-4")

    def asm_fault_target(self) -> object:
        return self


class FlushAppliesAsItGoes(InMemorySessionStore):
    """flush writes the session, the run and the events one after the other, each as soon as
    the backend takes it, with no transaction around them: a failure at the second or third
    write leaves the session, or the session and the run, changed."""

    BREAKS = ("FLUSH-3",)

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        with self._backend("flush") as gate, self._lock:
            gate.before_write("session")
            self._sessions[checked.session.id] = checked.session
            gate.before_write("run")
            self._runs[checked.run.id] = checked.run
            gate.before_write("events")
            for event in checked.events:
                self._store_event(event)


class BackendErrorEscapes(InMemorySessionStore):
    """Its backend's failures (a ConnectionError) escape as they are, not as a StoreError with a
    storage code."""

    BREAKS = ("FLUSH-3",)
    # the raw backend error is what PORT-3 forbids
    # BATCH-6: its fault check stops at the raw error, as FLUSH-3 does
    ALSO = ("BATCH-6", "PORT-3")

    @contextlib.contextmanager
    def _backend(self, operation: str) -> Iterator[FaultGate]:
        yield self._gate
