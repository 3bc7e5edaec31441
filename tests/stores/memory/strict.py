"""A correct store that enforces referential integrity: the suite must pass it too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, Run
from pytest_asm_contract._contract.validation import as_events, as_run
from reference_stores.memory import InMemorySessionStore


class StrictInMemorySessionStore(InMemorySessionStore):
    """Runs and events only for saved sessions (capability ``referential_integrity``)."""

    capabilities = frozenset({"long_poll", "referential_integrity"})

    def _require_sessions(self, session_ids: set[str]) -> None:
        unknown = sorted(session_ids - self._sessions.keys())
        if unknown:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND,
                f"no session {unknown[0]!r}",
                {"session_id": unknown[0]},
            )

    def save_run(self, run: Run) -> None:
        checked = as_run(run)
        with self._lock:
            self._require_sessions({checked.session_id})
            super().save_run(checked)

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        with self._lock:
            self._require_sessions({event.session_id for event in batch})
            return super().append_events(batch)

    def flush(self, result: Any) -> None:
        super().flush(result)  # a flush saves its own session first
