"""Running a workload plan against a store, and recording its history.

Writers run in threads of this process (:func:`run_in_threads`) or, for stores that declare
``shared_backend``, in threads of worker processes that open the store from its reopen spec
(:func:`run_in_processes`), with readers in this process as well. Readers tail the sessions with
``after=cursor``, read whole logs, ask ``get_latest_sequence`` and probe flushed runs and
sessions until the writers are done; then the final state is read and the history built for
``checking.check_history``.

Nothing here waits on the clock: writers and readers are coordinated by barriers and by a count
of writers still running; timeouts are only hang guards.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import random
import threading
from collections.abc import Callable
from typing import Any, Protocol

from pytest_asm_contract._concurrency.plans import Plan, Planned
from pytest_asm_contract._concurrency.processes import (
    TASK_GUARD_S,
    ProcessPool,
    Shared,
    TaskContext,
    WorkerError,
)
from pytest_asm_contract._concurrency.recording import (
    Call,
    History,
    Op,
    Recorder,
    describe_error,
)
from pytest_asm_contract._concurrency.threads import ThreadsFailed, ThreadsHung, run_threads
from pytest_asm_contract._contract.model import Event, Run, Session
from pytest_asm_contract._contract.port import ReopenSpec

#: Only a hung store reaches this; no check depends on how long anything takes.
HANG_GUARD_S = TASK_GUARD_S
#: A reader stops after this many calls even if the writers are still going.
MAX_READS_PER_READER = 3000


class WorkloadError(RuntimeError):
    """The workload itself could not run (a hung or crashed thread or process)."""


class Invoke(Protocol):
    """How a writer makes one call: plainly, or as a client that retries (``retrying.py``)."""

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
    work: dict[str, Callable[[], list[Call]]] = {}
    for w in range(writers):
        work[f"w{w}"] = functools.partial(write, store, plan, w, f"w{w}", coordination, invoke)
    for r in range(plan.shape.readers):
        work[f"r{r}"] = functools.partial(read, store, plan, f"r{r}", coordination, max_reads)
    results = _in_threads(work)
    if after_writers is not None:
        after_writers()
    calls = [call for name in sorted(results) for call in results[name]]
    return final_state(
        store, plan, calls, f"{writers} writer and {plan.shape.readers} reader threads"
    )


def _in_threads(work: dict[str, Callable[[], list[Call]]]) -> dict[str, list[Call]]:
    """Writers and readers start on their own (the phase barrier paces the writers)."""
    try:
        return run_threads(work, together=False, guard=HANG_GUARD_S)
    except ThreadsHung as error:
        raise WorkloadError(str(error)) from None
    except ThreadsFailed as error:
        crashed = "\n".join(f"{name}: {text}" for name, _, text in error.errors)
        raise WorkloadError(f"a workload thread crashed:\n{crashed}") from None


def contended_writes(history: History) -> int:
    """How many of the history's writes ran while another write began: the writes that really
    raced. Threads released together may still run one after another on a loaded machine (see
    ``threads.Contention``), so a check counts these rather than trusting the plan's size."""
    writes = [call for call in history.calls if call.op.writes]
    starts = sorted(call.start for call in writes)
    contended = 0
    for call in writes:
        later = bisect.bisect_right(starts, call.start)
        contended += later < len(starts) and starts[later] < call.end
    return contended


# -- processes ----------------------------------------------------------------------------------
class ProcessCoordination:
    """The barrier and writer count shared by a pool's processes (inherited at start)."""

    def __init__(self, shared: Shared) -> None:
        self._barrier = shared.barrier
        self._left = shared.left
        self._finished = shared.finished

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


def run_part(context: TaskContext, plan: Plan) -> list[Call]:
    """A worker's share of ``plan``: its writers and readers, in threads (a pool task)."""
    assert context.shared is not None
    coordination = ProcessCoordination(context.shared)
    store, number, per = context.store, context.number, plan.shape.writers
    work: dict[str, Callable[[], list[Call]]] = {}
    for w in range(number * per, (number + 1) * per):
        name = f"p{number}-w{w}"
        work[name] = functools.partial(write, store, plan, w, name, coordination)
    for r in range(plan.shape.readers):
        name = f"p{number}-r{r}"
        work[name] = functools.partial(read, store, plan, name, coordination)
    return [call for calls in _in_threads(work).values() for call in calls]


def run_in_processes(pool: ProcessPool, store: Any, spec: ReopenSpec, plan: Plan) -> History:
    """Run ``plan``: writers in the pool's processes, readers there and in this process.

    The pool's barrier must have one party per writer thread: ``plan.processes`` workers of
    ``plan.shape.writers`` writers each.
    """
    if (plan.processes, plan.processes * plan.shape.writers) != (
        pool.size,
        pool.shared.barrier.parties,
    ):
        raise ValueError("the plan's topology does not match the pool's")
    prepare(store, plan)
    pool.shared.reset(plan.processes * plan.shape.writers)
    coordination = ProcessCoordination(pool.shared)
    failure: list[BaseException] = []

    def drive() -> list[Call]:
        try:
            parts = pool.run(spec, run_part, plan)
        except BaseException as error:
            failure.append(error)
            coordination.abort()
            pool.shared.finished.set()  # let the readers stop
            return []
        return [call for part in parts for call in part]

    work: dict[str, Callable[[], list[Call]]] = {"driver": drive}
    for r in range(plan.shape.readers):
        name = f"main-r{r}"
        work[name] = functools.partial(read, store, plan, name, coordination)
    results = _in_threads(work)
    if failure:
        error = failure[0]
        text = str(error) if isinstance(error, WorkerError) else describe_error(error)[0]
        raise WorkloadError(text)
    calls = [call for part in results.values() for call in part]
    return final_state(
        store,
        plan,
        calls,
        f"{plan.processes} processes x {plan.shape.writers} writer threads, "
        f"{plan.shape.readers} reader threads in each process and in the checking process",
    )


__all__ = [
    "Coordination",
    "Invoke",
    "ThreadCoordination",
    "WorkloadError",
    "contended_writes",
    "final_state",
    "perform",
    "plain_invoke",
    "prepare",
    "run_in_processes",
    "run_in_threads",
    "run_part",
]
