"""Seeded concurrent workloads: which calls each writer makes, fixed by a seed alone.

A :class:`Plan` holds the sessions, and for every writer a list of phases, each a list of store
calls (single appends, ``append_event``, batches that may span two sessions or repeat ids,
flushes with their own run, reads of the writer's own latest number). Callers racing on one new
id start a phase together; every other interleaving is left to the scheduler. ``workloads.py``
runs a plan; what a run does is fixed by the seed, how its calls interleave is not, which is why
every violation is reported with the seed and the calls themselves.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_asm_contract._concurrency.recording import Op
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AGENT = "agent-history"


@dataclasses.dataclass(frozen=True)
class Shape:
    """How big a workload is. ``writers`` and ``readers`` count threads per process."""

    sessions: int = 3
    writers: int = 4
    readers: int = 2
    phases: int = 3
    ops_per_phase: int = 6
    racers: int = 3
    max_batch: int = 4
    flushes: bool = True
    #: Share of writes a writer follows with get_latest_sequence of that session (read your
    #: own writes: a store that acknowledges before storing fails it).
    own_reads: float = 0.15

    def scaled(self, **changes: Any) -> Shape:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Planned:
    """One store call of a writer's plan."""

    op: Op
    events: tuple[Event, ...] = ()
    fresh: frozenset[str] = frozenset()
    result: ExecutionResult | None = None
    label: str = ""
    key: str = ""
    session_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    seed: int
    tag: str
    shape: Shape
    processes: int
    sessions: tuple[Session, ...]
    #: writers[w][phase] -> the calls of writer w in that phase
    writers: tuple[tuple[tuple[Planned, ...], ...], ...]
    flush_runs: tuple[str, ...]

    @property
    def session_ids(self) -> list[str]:
        return [s.id for s in self.sessions]

    def reader_seed(self, name: str) -> int:
        return random.Random(f"{self.seed}:{self.tag}:reader:{name}").randrange(2**32)

    @property
    def size(self) -> int:
        return sum(len(phase) for writer in self.writers for phase in writer)


def derive_seed(seed: int, *parts: object) -> int:
    """A seed for one part of a run, fixed by the run's seed and the part's name."""
    return random.Random(":".join(map(str, (seed, *parts)))).randrange(2**32)


def make_plan(shape: Shape, seed: int, tag: str, processes: int = 1) -> Plan:
    """The workload for ``seed``: the same seed always gives the same calls."""
    rng = random.Random(seed)
    sessions = tuple(
        Session(
            id=f"ses-{tag}-{i}",
            agent_id=AGENT,
            metadata={"version": "initial"},
            created_at=T0,
            updated_at=T0,
        )
        for i in range(shape.sessions)
    )
    total = shape.writers * processes
    racers = [
        (
            frozenset(rng.sample(range(total), min(shape.racers, total))),
            rng.choice(sessions).id,
            rng.choice([Op.APPEND, Op.BATCH]),
        )
        for _ in range(shape.phases)
    ]
    builders = [_WriterPlan(rng, shape, tag, w, sessions) for w in range(total)]
    writers = []
    for builder in builders:
        phases = []
        for phase, (chosen, race_session, race_op) in enumerate(racers):
            ops: list[Planned] = []
            if builder.writer in chosen and total > 1:
                ops.append(builder.race(phase, race_session, race_op))
            for _ in range(shape.ops_per_phase):
                ops.extend(builder.random_ops())
            phases.append(tuple(ops))
        writers.append(tuple(phases))
    flush_runs = tuple(run for b in builders for run in b.flush_runs)
    return Plan(seed, tag, shape, processes, sessions, tuple(writers), flush_runs)


class _WriterPlan:
    WEIGHTS = (
        (Op.APPEND, 25),
        (Op.APPEND_QUIET, 10),
        (Op.BATCH, 35),
        (Op.FLUSH, 15),
        ("repeat", 10),
    )

    def __init__(
        self, rng: random.Random, shape: Shape, tag: str, writer: int, sessions: Sequence[Session]
    ) -> None:
        self.rng = rng
        self.shape = shape
        self.tag = tag
        self.writer = writer
        self.sessions = sessions
        self.count = 0
        self.ops = 0
        self.mine: list[Event] = []  # events this writer appended earlier (stored by then)
        self.flush_runs: list[str] = []

    def _next(self) -> int:
        self.count += 1
        return self.count

    def _event(self, session_id: str, run_id: str | None = None, **data: Any) -> Event:
        n = self._next()
        return Event(
            id=f"{self.tag}-w{self.writer}-{n}",
            type=self.rng.choice(
                (EventType.MESSAGE_SENT, EventType.MESSAGE_RECEIVED, EventType.TOOL_CALL_STARTED)
            ),
            timestamp=T0 + timedelta(microseconds=self.writer * 1_000_000 + n),
            session_id=session_id,
            run_id=run_id,
            data={"writer": self.writer, "n": n, **data},
        )

    def _key(self) -> str:
        self.ops += 1
        return f"w{self.writer}-op{self.ops}"

    def _repeat_of(self) -> Event | None:
        if not self.mine:
            return None
        original = self.rng.choice(self.mine)
        return original.model_copy(update={"data": {"repeat": True}, "sequence_number": 7})

    def race(self, phase: int, session_id: str, op: Op) -> Planned:
        key = self._key()
        self._next()
        event = Event(
            id=f"{self.tag}-race-{phase}",
            type=EventType.TOOL_CALL_COMPLETED,
            timestamp=T0 + timedelta(microseconds=phase),
            session_id=session_id,
            data={"racer": self.writer},
        )
        self.mine.append(event)
        return Planned(op, (event,), frozenset({event.id}), label="race", key=key)

    def random_ops(self) -> list[Planned]:
        """One write, sometimes followed by the writer reading the latest number it made."""
        write = self.random_op()
        if self.rng.random() >= self.shape.own_reads:
            return [write]
        session_id = write.events[0].session_id
        return [write, Planned(Op.LATEST, session_id=session_id, key=self._key())]

    def random_op(self) -> Planned:
        kinds = [k for k, _ in self.WEIGHTS if self.shape.flushes or k is not Op.FLUSH]
        weights = [w for k, w in self.WEIGHTS if self.shape.flushes or k is not Op.FLUSH]
        kind = self.rng.choices(kinds, weights)[0]
        key = self._key()
        session = self.rng.choice(self.sessions).id
        if kind == "repeat":
            repeat = self._repeat_of()
            if repeat is not None:
                return Planned(Op.APPEND, (repeat,), frozenset(), label="repeat", key=key)
            kind = Op.APPEND
        if kind in (Op.APPEND, Op.APPEND_QUIET):
            event = self._event(session)
            self.mine.append(event)
            return Planned(Op(kind), (event,), frozenset({event.id}), key=key)
        if kind is Op.FLUSH:
            return self._flush(session, key)
        return self._batch(session, key)

    def _batch(self, session: str, key: str) -> Planned:
        size = self.rng.randint(2, max(2, self.shape.max_batch))
        other = self.rng.choice(self.sessions).id if self.rng.random() < 0.2 else session
        fresh = [self._event(session if i % 2 == 0 else other) for i in range(size)]
        events = list(fresh)
        labels = []
        if other != session:
            labels.append("two sessions")
        if self.rng.random() < 0.15 and (repeat := self._repeat_of()) is not None:
            events.insert(self.rng.randrange(len(events) + 1), repeat)
            labels.append("repeats a stored id")
        if self.rng.random() < 0.1:
            position = self.rng.randrange(len(fresh))
            events.insert(
                self.rng.randrange(position + 1, len(events) + 1),
                fresh[position].model_copy(update={"data": {"repeat-in-batch": True}}),
            )
            labels.append("repeats an id within the batch")
        self.mine.extend(fresh)
        return Planned(
            Op.BATCH,
            tuple(events),
            frozenset(e.id for e in fresh),
            label=", ".join(labels),
            key=key,
        )

    def _flush(self, session_id: str, key: str) -> Planned:
        n = self._next()
        run = Run(
            id=f"{self.tag}-run-w{self.writer}-{n}",
            session_id=session_id,
            status=RunStatus.COMPLETED,
            started_at=T0,
            ended_at=T0 + timedelta(seconds=1),
            turn_count=n,
            output={"writer": self.writer},
        )
        session = Session(
            id=session_id,
            agent_id=AGENT,
            metadata={"version": run.id},
            created_at=T0,
            updated_at=T0 + timedelta(seconds=n),
        )
        fresh = [
            self._event(session_id, run.id)
            for _ in range(self.rng.randint(1, self.shape.max_batch))
        ]
        events = list(fresh)
        repeat = self._repeat_of() if self.rng.random() < 0.15 else None
        if repeat is not None and repeat.session_id == session_id and repeat.run_id is None:
            events.insert(self.rng.randrange(len(events) + 1), repeat)
        self.mine.extend(fresh)
        self.flush_runs.append(run.id)
        return Planned(
            Op.FLUSH,
            tuple(events),
            frozenset(e.id for e in fresh),
            result=ExecutionResult(session=session, run=run, events=events),
            key=key,
        )


__all__ = ["AGENT", "T0", "Plan", "Planned", "Shape", "derive_seed", "make_plan"]
