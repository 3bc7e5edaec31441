"""Broken stores for the DATA rules (fidelity and exact ids)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_asm_contract._contract.model import Event, Run, Session, SessionStatus
from pytest_asm_contract._contract.validation import Page, as_run, as_session
from reference_stores.memory import InMemorySessionStore


class TagsStoredSorted(InMemorySessionStore):
    """Session tags are stored sorted, so their order is lost."""

    BREAKS = ("DATA-1",)
    # sessions read back with reordered tags
    ALSO = ("DATA-2", "SES-1")

    def save_session(self, session: Session) -> None:
        checked = as_session(session)
        super().save_session(checked.model_copy(update={"tags": sorted(checked.tags)}))


def _to_millis(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class TimestampsInMilliseconds(InMemorySessionStore):
    """Timestamps are kept with millisecond precision (as a DATETIME(3) column or a JavaScript
    Date would), so microseconds are lost."""

    convert = staticmethod(_to_millis)

    BREAKS = ("DATA-1",)
    # every check that compares a stored record with what was written sees the lost microseconds
    ALSO = (
        "BATCH-1",
        "BATCH-3",
        "CONC-2",
        "DATA-2",
        "DATA-3",
        "EVT-1",
        "EVT-3",
        "EVT-4",
        "FLUSH-1",
        "FLUSH-3",
        "FLUSH-4",
        "FLUSH-5",
        "IDEM-1",
        "IDEM-2",
        "IDEM-3",
        "PORT-2",
        "RUN-1",
        "RUN-2",
        "RUN-3",
        "SES-1",
        "SES-4",
        "SES-5",
    )

    def save_session(self, session: Session) -> None:
        checked = as_session(session)
        fields = ("created_at", "updated_at", "deleted_at")
        super().save_session(
            checked.model_copy(update={f: self.convert(getattr(checked, f)) for f in fields})
        )

    def save_run(self, run: Run) -> None:
        checked = as_run(run)
        fields = ("started_at", "ended_at")
        super().save_run(
            checked.model_copy(update={f: self.convert(getattr(checked, f)) for f in fields})
        )

    def _store_event(self, event: Event) -> Event:
        return super()._store_event(
            event.model_copy(update={"timestamp": self.convert(event.timestamp)})
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _through_float_seconds(moment: datetime | None) -> datetime | None:
    """A moment kept as float seconds since the epoch: exact to the microsecond near today only."""
    if moment is None:
        return None
    seconds = (moment - _EPOCH).total_seconds()
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:  # rounded past datetime.max
        return datetime.max.replace(tzinfo=UTC)


class TimestampsAsFloatSeconds(TimestampsInMilliseconds):
    """Timestamps are kept as float seconds since the epoch (a REAL column, a JSON number), which
    holds every microsecond of this century but not of the far past or future."""

    BREAKS = ("DATA-1",)
    # only the check that writes moments across the whole range sees the loss
    ALSO = ()
    convert = staticmethod(_through_float_seconds)


def _through_float64(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _through_float64(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_through_float64(item) for item in value]
    if type(value) is int:
        return int(float(value))
    return value


class EventNumbersThroughFloat(InMemorySessionStore):
    """Event payloads pass through a JSON decoder that reads every number as a 64-bit float (as a
    JavaScript-based document layer does), so integers beyond 2**53 change."""

    BREAKS = ("DATA-1",)

    def _store_event(self, event: Event) -> Event:
        decoded = {
            "data": _through_float64(event.data),
            "metadata": _through_float64(event.metadata),
        }
        return super()._store_event(event.model_copy(update=decoded))


class _FoldedKeys(dict[str, Any]):
    """A dict that looks keys up after passing them through ``fold``."""

    def __init__(self, fold: Callable[[str], str]) -> None:
        super().__init__()
        self._fold = fold

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(self._fold(key), value)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(self._fold(key))

    def __delitem__(self, key: str) -> None:
        super().__delitem__(self._fold(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(self._fold(key))

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(self._fold(key), default)

    def pop(self, key: str, *default: Any) -> Any:
        return super().pop(self._fold(key), *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        return super().setdefault(self._fold(key), default)


class CaseInsensitiveIds(InMemorySessionStore):
    """Ids are looked up case-insensitively (as under MySQL's default collation), so 'Ses-A' and
    'ses-a' reach the same record."""

    BREAKS = ("DATA-3",)
    # a lookup by an id of another case finds the wrong session or run
    ALSO = ("RUN-1", "SES-2")

    def __init__(self) -> None:
        super().__init__()
        self._sessions = _FoldedKeys(str.casefold)
        self._runs = _FoldedKeys(str.casefold)
        self._events = _FoldedKeys(str.casefold)
        self._event_ids = _FoldedKeys(str.casefold)


class UnicodeNormalisedIds(InMemorySessionStore):
    """Ids are NFC-normalised before use as keys, so two ids that differ only in Unicode form
    reach the same record."""

    BREAKS = ("DATA-3",)

    def __init__(self) -> None:
        super().__init__()

        def nfc(key: str) -> str:
            return unicodedata.normalize("NFC", key)

        self._sessions = _FoldedKeys(nfc)
        self._runs = _FoldedKeys(nfc)
        self._events = _FoldedKeys(nfc)
        self._event_ids = _FoldedKeys(nfc)


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.DOTALL
    )


class LikeAgentFilter(InMemorySessionStore):
    """list_sessions filters agent_id with SQL LIKE instead of equality, so '%' and '_' in an
    agent id act as wildcards."""

    BREAKS = ("DATA-3",)

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Session]:
        page = Page.of(limit, offset)
        sessions = super().list_sessions(status=status)
        if agent_id is not None:
            pattern = _like(agent_id)
            sessions = [s for s in sessions if pattern.fullmatch(s.agent_id)]
        return page.apply(sessions)
