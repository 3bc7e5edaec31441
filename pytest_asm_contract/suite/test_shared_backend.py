"""CONC-3 (``shared_backend``): store instances in different processes share one backend.

The store under test offers ``asm_reopen_spec()`` (docs/shared-backend.md): a picklable
``("module:attr", kwargs)`` that builds another instance on the same backend without resetting
it. The kit starts worker processes (``multiprocessing``, spawn start method), opens the store
there from that spec, and checks that the instances see each other's writes and that CONC-1,
IDEM-4 and BATCH-5 hold across processes: racers are released together by a process barrier,
and every check is on the recorded results and the final state, never on timing.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import queue
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.model import Event, EventType, Session
from pytest_asm_contract.suite._builders import a_run, a_session, an_event, some_events

#: The store method that tells the kit how to open the same backend in another process.
REOPEN_HOOK = "asm_reopen_spec"
WORKERS = 2
#: Generous guards against a hung worker; no check depends on how long anything takes.
TASK_TIMEOUT_S = 300.0
START_TIMEOUT_S = 120.0

Spec = tuple[str, dict[str, Any]]


# -- the worker side (runs in the spawned processes) --------------------------------------------
_stores: dict[str, Any] = {}


def _open(spec: Spec) -> Any:
    key = repr(spec)
    store = _stores.get(key)
    if store is None:
        target, kwargs = spec
        module_name, _, attr = target.partition(":")
        factory: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            factory = getattr(factory, part)
        store = _stores[key] = factory(**kwargs)
    return store


def _forget(spec: Spec) -> None:
    store = _stores.pop(repr(spec), None)
    close = getattr(store, "close", None)
    if callable(close):
        close()


def _in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(0..count-1)`` in threads released together; re-raise the first failure."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def main(index: int) -> None:
        try:
            start.wait()
            results[index] = work(index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def task_read(store: Any, worker: int, barrier: Any, session_id: str) -> Any:
    return store.get_session(session_id), store.get_events(session_id)


def task_write(store: Any, worker: int, barrier: Any, session: Session, count: int) -> Any:
    store.save_session(session)
    run = a_run(session, id=f"{session.id}-run")
    store.save_run(run)
    return store.append_events(some_events(session, count, run))


def task_append_singly(
    store: Any, worker: int, barrier: Any, session_id: str, threads: int, per_thread: int
) -> list[Event]:
    barrier.wait()

    def work(thread: int) -> list[Event]:
        return [
            store.append_event_with_sequence(
                an_event(session_id, id=f"evt-w{worker}-t{thread}-{i}", data={"w": worker})
            )
            for i in range(per_thread)
        ]

    return [event for batch in _in_threads(threads, work) for event in batch]


def task_race_same_ids(
    store: Any, worker: int, barrier: Any, session_id: str, rounds: int
) -> list[Event]:
    returned = []
    for round_ in range(rounds):
        event = an_event(session_id, id=f"evt-race-{round_}", data={"racer": worker})
        barrier.wait()
        returned.append(store.append_event_with_sequence(event))
    return returned


def task_append_batches(
    store: Any,
    worker: int,
    barrier: Any,
    session_id: str,
    threads: int,
    batches: int,
    size: int,
) -> list[list[Event]]:
    barrier.wait()

    def work(thread: int) -> list[list[Event]]:
        return [
            store.append_events(
                [an_event(session_id, id=f"evt-w{worker}-t{thread}-b{b}-{i}") for i in range(size)]
            )
            for b in range(batches)
        ]

    return [batch for per_thread in _in_threads(threads, work) for batch in per_thread]


def _worker_main(worker: int, tasks: Any, results: Any, barrier: Any) -> None:
    results.put(("ready", worker, os.getpid()))
    while True:
        message = tasks.get()
        if message is None:
            break
        kind, spec, name, args = message
        try:
            if kind == "forget":
                _forget(spec)
                outcome: Any = None
            else:
                outcome = globals()[name](_open(spec), worker, barrier, *args)
            results.put(("ok", worker, outcome))
        except BaseException as error:
            barrier.abort()  # never leave the other workers waiting for this one
            results.put(("error", worker, f"{type(error).__name__}: {error}\n{_trace()}"))
    for spec_key in list(_stores):
        store = _stores.pop(spec_key)
        close = getattr(store, "close", None)
        if callable(close):
            close()


def _trace() -> str:
    return traceback.format_exc(limit=12)


# -- the kit side -------------------------------------------------------------------------------
class Crew:
    """Worker processes, each able to open the store under test from its reopen spec."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._context = multiprocessing.get_context("spawn")
        self._results: Any = None
        self._tasks: list[Any] = []
        self._processes: list[Any] = []
        self._barrier: Any = None

    def start(self) -> None:
        ctx = self._context
        self._results = ctx.Queue()
        self._barrier = ctx.Barrier(self.size)
        for worker in range(self.size):
            tasks = ctx.Queue()
            process = ctx.Process(
                target=_worker_main,
                args=(worker, tasks, self._results, self._barrier),
                name=f"asm-shared-backend-{worker}",
                daemon=True,
            )
            process.start()
            self._tasks.append(tasks)
            self._processes.append(process)
        for _ in range(self.size):
            self._get(START_TIMEOUT_S, "start")

    def _get(self, timeout: float, what: str) -> tuple[str, int, Any]:
        try:
            item: tuple[str, int, Any] = self._results.get(timeout=timeout)
            return item
        except queue.Empty:
            dead = [p.name for p in self._processes if not p.is_alive()]
            pytest.fail(
                f"a worker process did not answer ({what}); exited: {dead or 'none'}",
                pytrace=False,
            )

    def run(self, spec: Spec, task: str, *args: Any) -> list[Any]:
        """Run ``task`` in every worker at once; return the results in worker order."""
        return self.run_each(spec, [(task, args)] * self.size)

    def run_each(self, spec: Spec, tasks: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        if self._barrier.broken:
            self._barrier.reset()
        for worker, (task, args) in enumerate(tasks):
            self._tasks[worker].put(("run", spec, task, args))
        return self._collect(len(tasks), task_name=", ".join(sorted({t for t, _ in tasks})))

    def forget(self, spec: Spec) -> None:
        """Close every worker's instance of this store (before the test's own store closes)."""
        for worker_tasks in self._tasks:
            worker_tasks.put(("forget", spec, "", ()))
        self._collect(self.size, task_name="close")

    def _collect(self, count: int, task_name: str) -> list[Any]:
        results: list[Any] = [None] * self.size
        errors = []
        for _ in range(count):
            status, worker, outcome = self._get(TASK_TIMEOUT_S, task_name)
            if status == "error":
                errors.append(f"worker {worker}: {outcome}")
            else:
                results[worker] = outcome
        if errors:
            pytest.fail(
                f"{task_name} failed in a worker process:\n" + "\n".join(errors), pytrace=False
            )
        return results[:count]

    def stop(self) -> None:
        for worker_tasks in self._tasks:
            worker_tasks.put(None)
        for process in self._processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


class LazyCrew:
    """Starts the worker processes on first use, so skipped tests cost nothing."""

    def __init__(self) -> None:
        self._crew: Crew | None = None

    def get(self) -> Crew:
        if self._crew is None:
            crew = Crew(WORKERS)
            crew.start()
            self._crew = crew
        return self._crew

    def stop(self) -> None:
        if self._crew is not None:
            self._crew.stop()


@pytest.fixture(scope="module")
def asm_process_crew() -> Iterator[LazyCrew]:
    crew = LazyCrew()
    yield crew
    crew.stop()


@pytest.fixture
def shared(asm_store: Any, asm_process_crew: LazyCrew) -> Iterator[tuple[Any, Crew, Spec]]:
    """The store under test, the worker processes, and the spec that opens its backend."""
    hook = getattr(asm_store, REOPEN_HOOK, None)
    if not callable(hook):
        pytest.fail(
            f"the store declares shared_backend but has no {REOPEN_HOOK}() telling the kit how "
            "to open its backend from another process; see docs/shared-backend.md",
            pytrace=False,
        )
    spec = hook()
    crew = asm_process_crew.get()
    try:
        yield asm_store, crew, spec
    finally:
        crew.forget(spec)


def _assert_numbering(store: Any, session_id: str, returned: list[Event]) -> list[Event]:
    """Final state 1..n with no gaps; every returned event is exactly the stored one."""
    stored: list[Event] = store.get_events(session_id)
    assert [e.sequence_number for e in stored] == list(range(1, len(stored) + 1)), (
        "sequence numbers across processes are not exactly 1..n"
    )
    by_id = {e.id: e for e in stored}
    for event in returned:
        assert by_id.get(event.id) == event, (
            f"a process was told {event.id!r} got sequence {event.sequence_number}, "
            f"but the store holds {by_id.get(event.id)!r:.200}"
        )
    return stored


class TestSharedBackend:
    @rule("CONC-3")
    def test_instances_see_each_others_writes(self, shared: tuple[Any, Crew, Spec]) -> None:
        store, crew, spec = shared
        mine = a_session(id="ses-parent")
        store.save_session(mine)
        appended = store.append_events(some_events(mine, 3))

        seen = crew.run_each(spec, [("task_read", (mine.id,))])
        assert seen[0] == (mine, appended), "another process does not see this one's writes"

        theirs = a_session(id="ses-child")
        written = crew.run_each(spec, [("task_write", (theirs, 2))])[0]
        assert store.get_session(theirs.id) == theirs
        assert store.get_run(f"{theirs.id}-run").session_id == theirs.id
        assert store.get_events(theirs.id) == written, "this process does not see their writes"

    @rule("CONC-3", "CONC-1")
    def test_processes_appending_to_one_session_number_without_gaps(
        self, shared: tuple[Any, Crew, Spec]
    ) -> None:
        store, crew, spec = shared
        session = a_session(id="ses-conc")
        store.save_session(session)
        threads, per_thread = 4, 15

        results = crew.run(spec, "task_append_singly", session.id, threads, per_thread)

        returned = [event for per_worker in results for event in per_worker]
        assert len(returned) == WORKERS * threads * per_thread
        assert len({e.sequence_number for e in returned}) == len(returned), (
            "two appends in different processes got the same sequence number"
        )
        stored = _assert_numbering(store, session.id, returned)
        assert len(stored) == len(returned)

    @rule("CONC-3", "IDEM-4")
    def test_processes_racing_on_one_new_id_store_it_once(
        self, shared: tuple[Any, Crew, Spec]
    ) -> None:
        store, crew, spec = shared
        session = a_session(id="ses-race")
        store.save_session(session)
        rounds = 20

        results = crew.run(spec, "task_race_same_ids", session.id, rounds)

        stored = _assert_numbering(store, session.id, [e for r in results for e in r])
        assert len(stored) == rounds, (
            f"{WORKERS} processes raced on {rounds} new ids and the store kept {len(stored)} events"
        )
        for round_ in range(rounds):
            answers = {repr(results[w][round_]) for w in range(WORKERS)}
            assert len(answers) == 1, (
                f"processes racing on evt-race-{round_} were told different events: {answers}"
            )

    @rule("CONC-3", "BATCH-5")
    def test_batches_from_processes_never_interleave(self, shared: tuple[Any, Crew, Spec]) -> None:
        store, crew, spec = shared
        session = a_session(id="ses-batches")
        store.save_session(session)
        threads, batches, size = 2, 8, 5

        results = crew.run(spec, "task_append_batches", session.id, threads, batches, size)

        returned = [batch for per_worker in results for batch in per_worker]
        for batch in returned:
            numbers = [e.sequence_number or 0 for e in batch]
            assert numbers == list(range(numbers[0], numbers[0] + size)), (
                f"a batch from one process was interleaved with others: {numbers}"
            )
        stored = _assert_numbering(store, session.id, [e for b in returned for e in b])
        assert len(stored) == WORKERS * threads * batches * size

    @rule("CONC-3", "POLL-1")
    def test_long_poll_wakes_for_an_append_from_another_process(
        self, shared: tuple[Any, Crew, Spec]
    ) -> None:
        store, crew, spec = shared
        session = a_session(id="ses-poll")
        store.save_session(session)
        woken: list[Any] = []

        def wait() -> None:
            try:
                woken.append(
                    store.get_events(
                        session.id, type=EventType.TURN_COMPLETED, wait_timeout_ms=120_000
                    )
                )
            except Exception as error:
                woken.append(error)

        waiter = threading.Thread(target=wait)
        waiter.start()
        try:
            written = crew.run_each(spec, [("task_write", (session, 1))])[0]
            turn = an_event(session, type=EventType.TURN_COMPLETED, id="evt-turn")
            crew.run_each(spec, [("task_append_one", (turn,))])
        finally:
            waiter.join()
        assert len(written) == 1
        assert not isinstance(woken[0], Exception), f"the long poll failed: {woken[0]!r}"
        assert [e.id for e in woken[0]] == ["evt-turn"], (
            "a reader long-polling in this process did not get the event another process appended"
        )


def task_append_one(store: Any, worker: int, barrier: Any, event: Event) -> Event:
    stored: Event = store.append_event_with_sequence(event)
    return stored
