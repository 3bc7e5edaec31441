"""Broken stores for the RUN rules (and IDEM-2 for runs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, Run, RunStatus
from pytest_asm_contract._contract.validation import (
    Page,
    as_events,
    as_run,
    check_id,
    run_status_filter,
)
from reference_stores.memory import InMemorySessionStore


class MissingRunIsNone(InMemorySessionStore):
    """get_run returns None for an unknown id instead of raising run_not_found."""

    BREAKS = ("RUN-1",)
    # get_run of a deleted or unknown run returns None where other checks expect run_not_found
    ALSO = ("DATA-3", "FLUSH-3", "FLUSH-5", "PORT-3", "SEQ-2", "SES-4")

    def get_run(self, run_id: str) -> Any:
        try:
            return super().get_run(run_id)
        except StoreError as error:
            if error.code is ErrorCode.RUN_NOT_FOUND:
                return None
            raise


class RunSaveAppends(InMemorySessionStore):
    """save_run appends a new record each time (an INSERT where an upsert is needed)."""

    BREAKS = ("IDEM-2", "RUN-3")
    # runs saved twice are listed twice, in flushes too
    ALSO = ("FLUSH-1", "FLUSH-4")

    def __init__(self) -> None:
        super().__init__()
        self._run_rows: list[Run] = []

    def save_run(self, run: Run) -> None:
        super().save_run(run)
        with self._lock:
            self._run_rows.append(as_run(run))

    def list_runs(self, session_id: str, **kwargs: Any) -> list[Run]:
        wanted = run_status_filter(kwargs.get("status"))
        page = Page.of(kwargs.get("limit"), kwargs.get("offset"))
        with self._lock:
            rows = [
                r
                for r in self._run_rows
                if r.session_id == session_id and (wanted is None or r.status == wanted)
            ]
        rows.sort(key=lambda r: (r.started_at, r.id))
        return page.apply(rows)

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            super().delete_session(session_id)
            self._run_rows = [r for r in self._run_rows if r.session_id != session_id]


class RunsInInsertionOrder(InMemorySessionStore):
    """list_runs returns runs in the order they were first saved, not by (started_at, id)."""

    BREAKS = ("RUN-2",)

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]:
        check_id(session_id, "session_id")
        wanted = run_status_filter(status)
        page = Page.of(limit, offset)
        with self._lock:
            runs = [
                r
                for r in self._runs.values()
                if r.session_id == session_id and (wanted is None or r.status == wanted)
            ]
        return [r.model_copy(deep=True) for r in page.apply(runs)]

    def get_active_run(self, session_id: str) -> Run | None:
        running = super().list_runs(session_id, status=RunStatus.RUNNING)
        return running[-1] if running else None


class RunListIgnoresOffset(InMemorySessionStore):
    """list_runs ignores offset (documented by the original port, implemented by none)."""

    BREAKS = ("RUN-2",)

    def list_runs(self, session_id: str, **kwargs: Any) -> list[Run]:
        kwargs.pop("offset", None)
        return super().list_runs(session_id, **kwargs)


class RunStatusFilterUnchecked(InMemorySessionStore):
    """list_runs treats an unknown status as 'no filter' instead of raising validation_error."""

    BREAKS = ("RUN-2",)

    def list_runs(self, session_id: str, **kwargs: Any) -> list[Run]:
        if kwargs.get("status") not in (None, *RunStatus):
            kwargs["status"] = None
        return super().list_runs(session_id, **kwargs)


class FirstRunningRunIsActive(InMemorySessionStore):
    """get_active_run returns the earliest running run instead of the latest."""

    BREAKS = ("RUN-3",)

    def get_active_run(self, session_id: str) -> Run | None:
        running = self.list_runs(session_id, status=RunStatus.RUNNING)
        return running[0] if running else None


class PendingRunIsActive(InMemorySessionStore):
    """get_active_run treats a pending run as active (any non-terminal status)."""

    BREAKS = ("RUN-3",)

    def get_active_run(self, session_id: str) -> Run | None:
        live = [r for r in self.list_runs(session_id) if not r.status.terminal]
        return live[-1] if live else None


class StaleActiveRunCache(InMemorySessionStore):
    """get_active_run is served from a per-session cache that only a running save updates, so a
    run that completes stays 'active'."""

    BREAKS = ("RUN-3",)
    # a flushed run's status is not seen by get_active_run
    ALSO = ("FLUSH-1",)

    def __init__(self) -> None:
        super().__init__()
        self._active: dict[str, Run] = {}

    def save_run(self, run: Run) -> None:
        super().save_run(run)
        if run.status is RunStatus.RUNNING:
            with self._lock:
                cached = self._active.get(run.session_id)
                if cached is None or (run.started_at, run.id) >= (cached.started_at, cached.id):
                    self._active[run.session_id] = as_run(run)

    def get_active_run(self, session_id: str) -> Run | None:
        with self._lock:
            cached = self._active.get(session_id)
        return cached if cached is not None else super().get_active_run(session_id)

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            self._active.pop(session_id, None)
            super().delete_session(session_id)


class RunIntegrityNotKept(InMemorySessionStore):
    """Declares referential_integrity and checks it for events, but save_run accepts a run of a
    session that was never saved."""

    BREAKS = ("RUN-1",)
    capabilities = frozenset({"long_poll", "referential_integrity"})

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        with self._lock:
            for event in batch:
                if event.session_id not in self._sessions:
                    raise StoreError(
                        ErrorCode.SESSION_NOT_FOUND, f"no session {event.session_id!r}"
                    )
            return super().append_events(batch)
