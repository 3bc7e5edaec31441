"""Small builders and assertions shared by the suite modules (and usable by store authors)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, EventType, Run, RunStatus, Session

#: A fixed instant, so ordering tests do not depend on the clock.
T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def a_session(**fields: Any) -> Session:
    fields.setdefault("agent_id", "agent-1")
    return Session(**fields)


def a_run(session: Session | str, **fields: Any) -> Run:
    session_id = session if isinstance(session, str) else session.id
    return Run(session_id=session_id, **fields)


def a_running_run(session: Session | str, **fields: Any) -> Run:
    return a_run(session, status=RunStatus.RUNNING, **fields)


def an_event(
    session: Session | str,
    run: Run | str | None = None,
    type: EventType = EventType.MESSAGE_SENT,
    **fields: Any,
) -> Event:
    session_id = session if isinstance(session, str) else session.id
    run_id = run.id if isinstance(run, Run) else run
    return Event(type=type, session_id=session_id, run_id=run_id, **fields)


def some_events(session: Session | str, count: int, run: Run | str | None = None) -> list[Event]:
    return [an_event(session, run, data={"i": i}) for i in range(count)]


def stored_view(event: Event) -> Event:
    """What a store must hand back for ``event`` once stored, ignoring the number it assigned."""
    return event.model_copy(update={"sequence_number": None})


def ids_of(items: Iterable[Session | Run | Event]) -> list[str]:
    return [item.id for item in items]


def sequences(events: list[Event]) -> list[int | None]:
    return [e.sequence_number for e in events]


def in_number_order(events: list[Event]) -> list[Event]:
    """A batch's result in sequence-number order: what a check of another rule than BATCH-1 (the
    result's order) compares, so that a wrong order fails BATCH-1's checks only."""
    return sorted(events, key=lambda e: e.sequence_number or 0)


@contextlib.contextmanager
def expect_error(*codes: ErrorCode) -> Iterator[list[StoreError]]:
    """Assert that the block raises a ``StoreError`` with one of ``codes`` (and nothing else)."""
    caught: list[StoreError] = []
    wanted = ", ".join(c.value for c in codes)
    try:
        yield caught
    except StoreError as error:
        if error.code not in codes:
            pytest.fail(
                f"expected StoreError({wanted}), got StoreError({error.code.value}): "
                f"{error.message}",
                pytrace=False,
            )
        caught.append(error)
        return
    except Exception as error:
        pytest.fail(
            f"expected StoreError({wanted}), but a raw {type(error).__module__}."
            f"{type(error).__name__} escaped the store: {error} (PORT-3: failures surface only "
            "as StoreError)",
            pytrace=False,
        )
    pytest.fail(f"expected StoreError({wanted}), but nothing was raised", pytrace=False)
