"""Seeded concurrent workloads that record a history (``pytest_asm_contract._concurrency.history``).

A :class:`Plan` is built from a seed alone: the sessions, and for every writer a list of phases,
each a list of store calls (single appends, ``append_event``, batches that may span two sessions
or repeat ids, flushes with their own run). Callers racing on one new id start a phase together;
every other interleaving is left to the scheduler. Readers tail the sessions with
``after=cursor``, read whole logs, ask ``get_latest_sequence`` and probe flushed runs and sessions
until the writers are done.

Writers run in threads of this process (:func:`run_in_threads`) or, for stores that declare
``shared_backend``, in threads of worker processes that open the store from its
``asm_reopen_spec()`` (:class:`ProcessCrew`), with readers in this process as well. What a run
does is fixed by the seed; how the calls interleave is not, which is why every violation the
checker finds is reported with the seed and the calls themselves.

Nothing here waits on the clock: writers and readers are coordinated by barriers and by a count
of writers still running; timeouts are only hang guards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import multiprocessing
import queue
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pytest_asm_contract._concurrency.history import Call, History, Op, Recorder, describe_error
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
)

#: Only a hung store reaches these; no check depends on how long anything takes.
HANG_GUARD_S = 300.0
START_GUARD_S = 120.0
#: How often a wait for worker processes checks that they are still alive.
LIVENESS_CHECK_S = 1.0
#: A reader stops after this many calls even if the writers are still going.
MAX_READS_PER_READER = 3000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
AGENT = "agent-history"

Spec = tuple[str, dict[str, Any]]


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


# -- running a plan -----------------------------------------------------------------------------
class Invoke(Protocol):
    """How a writer makes one call: plainly, or as a client that retries (ambiguous.py)."""

    def __call__(
        self, recorder: Recorder, op: Op, fn: Callable[[], Any], fields: dict[str, Any]
    ) -> Any: ...


def plain_invoke(recorder: Recorder, op: Op, fn: Callable[[], Any], fields: dict[str, Any]) -> Any:
    return recorder.call(op, fn, **fields)


def perform(
    store: Any, recorder: Recorder, planned: Planned, invoke: Invoke = plain_invoke
) -> None:
    """Make one planned call on ``store`` and record it."""
    fields: dict[str, Any] = {
        "events": planned.events,
        "fresh": planned.fresh,
        "label": planned.label,
        "key": planned.key,
    }
    op = planned.op
    if op is Op.APPEND:
        event = planned.events[0]
        invoke(recorder, op, lambda: store.append_event_with_sequence(event), fields)
    elif op is Op.APPEND_QUIET:
        event = planned.events[0]
        invoke(recorder, op, lambda: store.append_event(event), fields)
    elif op is Op.BATCH:
        events = list(planned.events)
        invoke(recorder, op, lambda: store.append_events(events), fields)
    elif op is Op.FLUSH:
        result = planned.result
        assert result is not None
        fields.update(
            session_id=result.session.id,
            run_id=result.run.id,
            flushed_session=result.session,
            flushed_run=result.run,
        )
        invoke(recorder, op, lambda: store.flush(result), fields)
    elif op is Op.LATEST and planned.session_id is not None:
        session_id = planned.session_id
        recorder.call(
            op, functools.partial(store.get_latest_sequence, session_id), session_id=session_id
        )
    else:  # pragma: no cover - plans hold writes and own reads only
        raise ValueError(f"not a planned call: {op}")


class Coordination(Protocol):
    """What writers and readers share: the phase barrier and the count of running writers."""

    def phase(self) -> None: ...

    def abort(self) -> None: ...

    def writer_done(self) -> None: ...

    def writers_finished(self) -> bool: ...


class ThreadCoordination:
    def __init__(self, writers: int) -> None:
        self._barrier = threading.Barrier(max(writers, 1))
        self._left = writers
        self._lock = threading.Lock()
        self._finished = threading.Event()
        if writers == 0:
            self._finished.set()

    def phase(self) -> None:
        self._barrier.wait(HANG_GUARD_S)

    def abort(self) -> None:
        self._barrier.abort()

    def writer_done(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left <= 0:
                self._finished.set()

    def writers_finished(self) -> bool:
        return self._finished.is_set()


def write(
    store: Any,
    plan: Plan,
    writer: int,
    worker: str,
    coordination: Coordination,
    invoke: Invoke = plain_invoke,
) -> list[Call]:
    """Writer ``writer`` of ``plan``: each phase starts when every writer has reached it."""
    recorder = Recorder(worker)
    settle: Callable[[Recorder], None] | None = getattr(invoke, "settle", None)
    try:
        for phase in plan.writers[writer]:
            coordination.phase()
            for planned in phase:
                perform(store, recorder, planned, invoke)
            if settle is not None:
                settle(recorder)  # calls the client put off retrying until the phase's end
    except threading.BrokenBarrierError:
        raise WorkloadError(
            f"{worker}: the phase barrier broke (another writer crashed or hung)"
        ) from None
    except BaseException:
        coordination.abort()
        raise
    finally:
        coordination.writer_done()
    return recorder.calls


def read(
    store: Any,
    plan: Plan,
    worker: str,
    coordination: Coordination,
    max_reads: int = MAX_READS_PER_READER,
) -> list[Call]:
    """A reader: tails each session with after=cursor and probes runs and sessions, until done."""
    rng = random.Random(plan.reader_seed(worker))
    recorder = Recorder(worker)
    cursors = dict.fromkeys(plan.session_ids, 0)
    actions = ["tail"] * 10 + ["page"] * 2 + ["full"] * 2 + ["latest"] * 3 + ["session"]
    if plan.flush_runs:
        actions += ["run"] * 2
    reads = 0
    while reads < max_reads:
        finished = coordination.writers_finished()
        rounds = len(plan.session_ids) if finished else 1
        for _ in range(rounds):
            reads += 1
            session_id = rng.choice(plan.session_ids)
            action = rng.choice(actions)
            if action in ("tail", "page"):
                cursor = cursors[session_id]
                limit = rng.randint(1, 4) if action == "page" else None
                got = recorder.call(
                    Op.READ,
                    functools.partial(store.get_events, session_id, after=cursor, limit=limit),
                    session_id=session_id,
                    after=cursor,
                    limit=limit,
                )
                if got:
                    cursors[session_id] = max(cursor, max(e.sequence_number or 0 for e in got))
            elif action == "full":
                recorder.call(
                    Op.READ, functools.partial(store.get_events, session_id), session_id=session_id
                )
            elif action == "latest":
                recorder.call(
                    Op.LATEST,
                    functools.partial(store.get_latest_sequence, session_id),
                    session_id=session_id,
                )
            elif action == "session":
                recorder.call(
                    Op.GET_SESSION,
                    functools.partial(store.get_session, session_id),
                    session_id=session_id,
                )
            else:
                run_id = rng.choice(plan.flush_runs)
                recorder.call(Op.GET_RUN, functools.partial(store.get_run, run_id), run_id=run_id)
        if finished:
            break
    return recorder.calls


def prepare(store: Any, plan: Plan) -> None:
    """Save the plan's sessions (stores with referential integrity need them first)."""
    for session in plan.sessions:
        store.save_session(session)


def final_state(store: Any, plan: Plan, calls: list[Call], description: str) -> History:
    """Read what the store holds after the workload and build the history."""
    errors: list[str] = []
    events: dict[str, list[Event]] = {}
    sessions: dict[str, Session | None] = {}
    runs: dict[str, Run | None] = {}
    for session_id in plan.session_ids:
        try:
            events[session_id] = list(store.get_events(session_id))
            sessions[session_id] = store.get_session(session_id)
        except Exception as error:
            errors.append(f"{session_id!r}: {describe_error(error)[0]}")
    for run_id in plan.flush_runs:
        with contextlib.suppress(Exception):
            runs[run_id] = store.get_run(run_id)
    return History(
        calls=calls,
        final_events=events,
        final_sessions=sessions,
        final_runs=runs,
        initial_sessions={s.id: s for s in plan.sessions},
        seed=plan.seed,
        description=description,
        final_errors=errors,
    )


def run_in_threads(
    store: Any,
    plan: Plan,
    *,
    invoke: Invoke = plain_invoke,
    after_writers: Callable[[], None] | None = None,
    max_reads: int = MAX_READS_PER_READER,
) -> History:
    """Run every writer and reader of ``plan`` in threads of this process on one store."""
    prepare(store, plan)
    writers = len(plan.writers)
    coordination = ThreadCoordination(writers)
    results: dict[str, list[Call]] = {}
    crashed: list[str] = []

    def main(name: str, work: Callable[[], list[Call]]) -> None:
        try:
            results[name] = work()
        except BaseException:
            crashed.append(f"{name}: {traceback.format_exc(limit=8)}")

    work: dict[str, Callable[[], list[Call]]] = {}
    for w in range(writers):
        name = f"w{w}"
        work[name] = _bind_writer(store, plan, w, name, coordination, invoke)
    for r in range(plan.shape.readers):
        name = f"r{r}"
        work[name] = _bind_reader(store, plan, name, coordination, max_reads)
    threads = [
        threading.Thread(target=main, args=item, name=f"asm-history-{item[0]}", daemon=True)
        for item in work.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD_S)
    hung = [t.name for t in threads if t.is_alive()]
    if hung:
        raise WorkloadError(
            f"{len(hung)} thread(s) had not finished after {HANG_GUARD_S:.0f}s (a deadlock in the "
            f"store?): {', '.join(hung[:5])}"
        )
    if crashed:
        raise WorkloadError("a workload thread crashed:\n" + "\n".join(crashed))
    if after_writers is not None:
        after_writers()
    calls = [call for name in sorted(results) for call in results[name]]
    return final_state(
        store, plan, calls, f"{writers} writer and {plan.shape.readers} reader threads"
    )


def _bind_writer(
    store: Any, plan: Plan, writer: int, name: str, coordination: Coordination, invoke: Invoke
) -> Callable[[], list[Call]]:
    return lambda: write(store, plan, writer, name, coordination, invoke)


def _bind_reader(
    store: Any,
    plan: Plan,
    name: str,
    coordination: Coordination,
    max_reads: int = MAX_READS_PER_READER,
) -> Callable[[], list[Call]]:
    return lambda: read(store, plan, name, coordination, max_reads)


class WorkloadError(RuntimeError):
    """The workload itself could not run (a hung or crashed thread or process)."""


# -- processes ----------------------------------------------------------------------------------
def open_from_spec(spec: Spec) -> Any:
    """Build a store from an ``asm_reopen_spec()`` answer: ``("module:attr", kwargs)``."""
    target, kwargs = spec
    module_name, _, attr = target.partition(":")
    factory: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        factory = getattr(factory, part)
    return factory(**kwargs)


def close_quietly(store: Any) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


class ProcessCoordination:
    """The barrier and writer count shared by the crew's processes (inherited at start)."""

    def __init__(self, barrier: Any, left: Any, finished: Any) -> None:
        self._barrier = barrier
        self._left = left
        self._finished = finished

    def phase(self) -> None:
        self._barrier.wait(HANG_GUARD_S)

    def abort(self) -> None:
        self._barrier.abort()

    def writer_done(self) -> None:
        with self._left.get_lock():
            self._left.value -= 1
            if self._left.value <= 0:
                self._finished.set()

    def writers_finished(self) -> bool:
        return bool(self._finished.is_set())


_open_stores: dict[str, Any] = {}


def _crew_main(
    number: int, tasks: Any, results: Any, barrier: Any, left: Any, finished: Any
) -> None:
    coordination = ProcessCoordination(barrier, left, finished)
    results.put(("ready", number, None))
    while True:
        message = tasks.get()
        if message is None:
            break
        kind, spec, payload = message
        try:
            if kind == "forget":
                close_quietly(_open_stores.pop(repr(spec), None))
                results.put(("ok", number, []))
                continue
            store = _open_stores.get(repr(spec))
            if store is None:
                store = _open_stores[repr(spec)] = open_from_spec(spec)
            plan: Plan = payload
            calls = _run_part(store, plan, number, coordination)
            results.put(("ok", number, calls))
        except BaseException as error:
            barrier.abort()
            results.put(("error", number, f"{describe_error(error)[0]}\n{traceback.format_exc()}"))
    for store in _open_stores.values():
        close_quietly(store)


def _run_part(store: Any, plan: Plan, number: int, coordination: Coordination) -> list[Call]:
    """This process's writers and readers of ``plan``, in threads."""
    per = plan.shape.writers
    out: list[list[Call]] = []
    crashed: list[str] = []

    def main(work: Callable[[], list[Call]]) -> None:
        try:
            out.append(work())
        except BaseException:
            crashed.append(traceback.format_exc(limit=8))

    works = [
        _bind_writer(store, plan, w, f"p{number}-w{w}", coordination, plain_invoke)
        for w in range(number * per, (number + 1) * per)
    ] + [
        _bind_reader(store, plan, f"p{number}-r{r}", coordination)
        for r in range(plan.shape.readers)
    ]
    threads = [threading.Thread(target=main, args=(w,), daemon=True) for w in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD_S)
    if any(t.is_alive() for t in threads):
        raise WorkloadError(f"process {number}: a thread had not finished after {HANG_GUARD_S}s")
    if crashed:
        raise WorkloadError(f"process {number}: a thread crashed:\n" + "\n".join(crashed))
    return [call for calls in out for call in calls]


class ProcessCrew:
    """Worker processes (spawned) that run their share of a plan's writers and readers.

    Each process opens the store under test from its reopen spec and keeps it open until
    :meth:`forget`. The topology (processes x writer threads) is fixed when the crew starts,
    because the phase barrier must be inherited by the processes.
    """

    def __init__(self, processes: int, writers_per_process: int) -> None:
        self.processes = processes
        self.writers_per_process = writers_per_process
        self._context = multiprocessing.get_context("spawn")
        self._tasks: list[Any] = []
        self._workers: list[Any] = []
        self._results: Any = None
        ctx = self._context
        self._barrier: Any = ctx.Barrier(processes * writers_per_process)
        self._left: Any = ctx.Value("i", 0)
        self._finished: Any = ctx.Event()
        self._coordination = ProcessCoordination(self._barrier, self._left, self._finished)

    def start(self) -> None:
        ctx = self._context
        self._results = ctx.Queue()
        for number in range(self.processes):
            tasks = ctx.Queue()
            process = ctx.Process(
                target=_crew_main,
                args=(number, tasks, self._results, self._barrier, self._left, self._finished),
                name=f"asm-history-{number}",
                daemon=True,
            )
            process.start()
            self._tasks.append(tasks)
            self._workers.append(process)
        for _ in range(self.processes):
            self._get(START_GUARD_S, "start")

    def _get(self, timeout: float, what: str) -> tuple[str, int, Any]:
        """The next answer of a worker; fails when one died or none answered in ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item: tuple[str, int, Any] = self._results.get(timeout=LIVENESS_CHECK_S)
            except queue.Empty:
                dead = [f"{p.name} (exit {p.exitcode})" for p in self._workers if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise WorkloadError(
                        f"a worker process did not answer ({what}); exited: {dead or 'none'}"
                    ) from None
                continue
            return item

    def run(self, store: Any, spec: Spec, plan: Plan) -> History:
        """Run ``plan``: writers in the crew's processes, readers there and in this process."""
        if plan.processes != self.processes or plan.shape.writers != self.writers_per_process:
            raise ValueError("the plan's topology does not match the crew's")
        prepare(store, plan)
        if self._barrier.broken:
            self._barrier.reset()
        with self._left.get_lock():
            self._left.value = self.processes * self.writers_per_process
        self._finished.clear()
        for tasks in self._tasks:
            tasks.put(("run", spec, plan))
        local: list[list[Call]] = []

        def reader_main(name: str) -> None:
            local.append(read(store, plan, name, self._coordination))

        readers = [
            threading.Thread(target=reader_main, args=(f"main-r{r}",), daemon=True)
            for r in range(plan.shape.readers)
        ]
        for thread in readers:
            thread.start()
        calls: list[Call] = []
        errors = []
        try:
            for _ in range(self.processes):
                status, number, payload = self._get(HANG_GUARD_S, "run")
                if status == "error":
                    errors.append(f"process {number}: {payload}")
                    self._finished.set()  # let the readers stop
                else:
                    calls.extend(payload)
        finally:
            for thread in readers:
                thread.join(HANG_GUARD_S)
        if errors:
            raise WorkloadError("a worker process failed:\n" + "\n".join(errors))
        for part in local:
            calls.extend(part)
        return final_state(
            store,
            plan,
            calls,
            f"{self.processes} processes x {self.writers_per_process} writer threads, "
            f"{plan.shape.readers} reader threads in each process and in the checking process",
        )

    def forget(self, spec: Spec) -> None:
        """Close every process's instance of this store (before the test's own store closes)."""
        for tasks in self._tasks:
            tasks.put(("forget", spec, None))
        for _ in range(self.processes):
            self._get(HANG_GUARD_S, "close")

    def stop(self) -> None:
        for tasks in self._tasks:
            with contextlib.suppress(Exception):
                tasks.put(None)
        for process in self._workers:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        # Release the shared semaphores now, not whenever the last reference to the crew goes
        # (a failed test's traceback keeps it alive, possibly past the multiprocessing module
        # state that registered them, and the resource tracker then reports unknown names).
        for queue_ in [*self._tasks, self._results]:
            if queue_ is not None:
                queue_.close()
                queue_.join_thread()
        self._tasks, self._workers, self._results = [], [], None
        self._barrier = self._left = self._finished = None
        self._coordination = ProcessCoordination(None, None, None)


@contextlib.contextmanager
def process_crew(processes: int, writers_per_process: int) -> Iterator[ProcessCrew]:
    crew = ProcessCrew(processes, writers_per_process)
    try:
        crew.start()
        yield crew
    finally:
        crew.stop()


__all__ = [
    "Plan",
    "Planned",
    "ProcessCrew",
    "Shape",
    "ThreadCoordination",
    "WorkloadError",
    "derive_seed",
    "final_state",
    "make_plan",
    "open_from_spec",
    "perform",
    "plain_invoke",
    "process_crew",
    "run_in_threads",
]


# -- reporting from a test ----------------------------------------------------------------------
def replay_command(config: Any, selector: str) -> str:
    """The command line that runs ``selector`` again with this run's store, profile and seed."""
    import shlex

    from pytest_asm_contract._plugin.state import STATE

    state = config.stash[STATE]
    parts = ["pytest"]
    if state.spec is not None:
        parts.append(f"--asm-store={state.spec.target}")
        parts.extend(f"--asm-store-option={key}={value}" for key, value in state.spec.options)
    parts += [f"--asm-profile={state.profile}", f"--asm-seed={state.seed}", "-k", selector]
    return " ".join(shlex.quote(part) for part in parts)
