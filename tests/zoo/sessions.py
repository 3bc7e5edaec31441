"""Broken stores for the PORT and SES rules."""

from __future__ import annotations

from typing import Any

from pytest_asm_contract._contract.model import Session, SessionStatus
from reference_stores.memory import InMemorySessionStore


class NoOffset(InMemorySessionStore):
    """list_sessions ignores offset (the original port documented it, no store did it)."""

    BREAKS = ("SES-3",)

    def list_sessions(self, **kwargs: Any) -> Any:
        kwargs.pop("offset", None)
        return super().list_sessions(**kwargs)


class V07Store(InMemorySessionStore):
    """A v0.7-era store: no append_events, no flush."""

    BREAKS = ("PORT-1",)
    # Without the v0.8 port the kit runs PORT-1 alone and skips the rest, saying why.
    OTHERS_NOT_RUN = True
    append_events = None  # type: ignore[assignment]
    flush = None  # type: ignore[assignment]

    def append_event_with_sequence(self, event: Any) -> Any:
        return InMemorySessionStore.append_events(self, [event])[0]


class RawKeyError(InMemorySessionStore):
    """get_session lets the dict's KeyError escape for an unknown id."""

    BREAKS = ("SES-2", "PORT-3")
    # the raw KeyError escapes from every check that reads an unknown session
    ALSO = ("CONC-2", "DATA-3", "FLUSH-2", "FLUSH-3", "FLUSH-5", "SEQ-2", "SES-4")

    def get_session(self, session_id: str) -> Session:
        with self._lock:
            return self._sessions[session_id]


class DeleteWithoutCascade(InMemorySessionStore):
    """delete_session removes only the session record; runs and events stay."""

    BREAKS = ("SES-4",)
    # events and runs of deleted sessions stay visible to other checks
    ALSO = ("CONC-2", "DATA-3", "FLUSH-3", "SEQ-1", "SEQ-2")

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)


class DeleteKeepsCounter(InMemorySessionStore):
    """delete_session removes the events but numbering continues where it was."""

    BREAKS = ("SES-4",)
    # appends after a delete continue the old numbering, also while readers watch it
    ALSO = ("CONC-2", "IDEM-1", "SEQ-1", "SEQ-5")

    def __init__(self) -> None:
        super().__init__()
        self._deleted_counts: dict[str, int] = {}

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            self._deleted_counts[session_id] = self.get_latest_sequence(session_id)
            super().delete_session(session_id)

    def _store_event(self, event: Any) -> Any:
        stored = super()._store_event(event)
        offset = self._deleted_counts.get(event.session_id, 0)
        if offset and stored.sequence_number == len(self._events[event.session_id]):
            stored = stored.with_sequence(stored.sequence_number + offset)
            self._events[event.session_id][-1] = stored
            self._event_ids[stored.id] = stored
        return stored


class ListedById(InMemorySessionStore):
    """list_sessions orders by id instead of (created_at, id)."""

    BREAKS = ("SES-3",)

    def list_sessions(self, **kwargs: Any) -> Any:
        limit, offset = kwargs.pop("limit", None), kwargs.pop("offset", None) or 0
        found = sorted(super().list_sessions(**kwargs), key=lambda s: s.id)
        return found[offset:] if limit is None else found[offset : offset + limit]


class LimitZeroMeansAll(InMemorySessionStore):
    """list_sessions treats limit=0 as 'no limit'."""

    BREAKS = ("SES-3",)

    def list_sessions(self, **kwargs: Any) -> Any:
        if kwargs.get("limit") == 0:
            kwargs["limit"] = None
        return super().list_sessions(**kwargs)


class HidesSoftDeleted(InMemorySessionStore):
    """list_sessions hides sessions whose deleted_at is set."""

    BREAKS = ("SES-5",)
    # the field-by-field round trip includes soft-deleted sessions
    ALSO = ("DATA-1",)

    def list_sessions(self, **kwargs: Any) -> Any:
        return [s for s in super().list_sessions(**kwargs) if s.deleted_at is None]


class MergingSave(InMemorySessionStore):
    """save_session merges metadata into the stored record instead of replacing it."""

    BREAKS = ("SES-1",)
    # the merge reads attributes of whatever it is given, so bad input raises a raw error
    ALSO = ("PORT-3",)

    def save_session(self, session: Session) -> None:
        with self._lock:
            old = self._sessions.get(session.id)
            if old is not None:
                session = session.model_copy(
                    update={"metadata": {**old.metadata, **session.metadata}}
                )
            super().save_session(session)


class UnknownStatusIgnored(InMemorySessionStore):
    """An unknown status filter is ignored instead of rejected."""

    BREAKS = ("SES-3", "PORT-3")
    # an unknown status is bad input (PORT-3), which a listing must refuse (SES-3)

    def list_sessions(self, **kwargs: Any) -> Any:
        if kwargs.get("status") not in (None, *SessionStatus):
            kwargs["status"] = None
        return super().list_sessions(**kwargs)
