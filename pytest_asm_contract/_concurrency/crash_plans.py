"""What a killed writer commits: a seeded list of flushes, batches and single appends."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pytest_asm_contract._concurrency.plans import T0
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
)

KINDS = ("flush", "batch", "append")


@dataclasses.dataclass(frozen=True)
class Commit:
    index: int
    kind: str
    events: tuple[Event, ...]
    result: ExecutionResult | None = None

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.events]

    @property
    def sessions(self) -> list[str]:
        return sorted({e.session_id for e in self.events})


@dataclasses.dataclass(frozen=True)
class Problem:
    rule: str
    message: str


@dataclasses.dataclass
class RoundReport:
    number: int
    target: int
    target_kind: str
    delay_ms: float
    acknowledged: int
    in_flight: int | None
    in_flight_stored: bool | None
    problems: list[Problem]

    def summary(self) -> str:
        flight = (
            "nothing in flight"
            if self.in_flight is None
            else f"commit {self.in_flight} in flight, "
            + ("stored whole" if self.in_flight_stored else "absent")
        )
        return (
            f"round {self.number}: killed {self.delay_ms:.2f} ms after commit {self.target} "
            f"({self.target_kind}) began; {self.acknowledged} commits acknowledged, {flight}"
        )


def session_version(session_id: str, version: str) -> Session:
    return Session(
        id=session_id,
        agent_id="agent-crash",
        metadata={"version": version},
        created_at=T0,
        updated_at=T0,
    )


def plan_round(
    seed: int, tag: str, number: int, sessions: Sequence[str], count: int
) -> list[Commit]:
    """The commits of one writer: flushes, batches over two sessions and appends."""
    rng = random.Random(f"{seed}:{tag}:round:{number}")
    commits: list[Commit] = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)] if index < len(KINDS) else rng.choice(KINDS)
        prefix = f"{tag}-r{number}-c{index}"
        session_id = rng.choice(sessions)
        event = functools.partial(_commit_event, prefix, number, index)
        if kind == "flush":
            run = Run(
                id=f"{prefix}-run",
                session_id=session_id,
                status=RunStatus.COMPLETED,
                started_at=T0,
                turn_count=index,
            )
            events = tuple(event(i, session_id, run.id) for i in range(rng.randint(1, 6)))
            result = ExecutionResult(
                session=session_version(session_id, prefix), run=run, events=list(events)
            )
            commits.append(Commit(index, kind, events, result))
        elif kind == "batch":
            # Always two sessions: a store committing a batch per session shows it here.
            other = rng.choice([s for s in sessions if s != session_id] or list(sessions))
            size = rng.randint(2, 8)
            events = tuple(event(i, session_id if i % 3 else other) for i in range(size))
            commits.append(Commit(index, kind, events))
        else:
            commits.append(Commit(index, kind, (event(0, session_id),)))
    return commits


def _commit_event(
    prefix: str, number: int, index: int, i: int, session_id: str, run_id: str | None = None
) -> Event:
    return Event(
        id=f"{prefix}-e{i}",
        type=EventType.MESSAGE_SENT,
        timestamp=T0 + timedelta(seconds=number, microseconds=index * 100 + i),
        session_id=session_id,
        run_id=run_id,
        data={"round": number, "commit": index, "i": i},
    )


def perform_commit(store: Any, commit: Commit) -> Any:
    if commit.kind == "flush":
        assert commit.result is not None
        store.flush(commit.result)
        return None
    if commit.kind == "batch":
        return store.append_events(list(commit.events))
    return store.append_event_with_sequence(commit.events[0])


__all__ = [
    "KINDS",
    "Commit",
    "Problem",
    "RoundReport",
    "perform_commit",
    "plan_round",
    "session_version",
]
