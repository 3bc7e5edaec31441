"""CONC-3 (``shared_backend``): store instances in different processes share one backend.

The store under test offers ``asm_reopen_spec()`` (docs/shared-backend.md): a picklable
``("module:attr", kwargs)`` that builds another instance on the same backend without resetting
it. The kit starts worker processes (``multiprocessing``, spawn start method), opens the store
there from that spec, and checks that the instances see each other's writes and that CONC-1,
IDEM-4 and BATCH-5 hold across processes: racers are released together by a process barrier,
and every check is on the recorded results and the final state, never on timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_asm_contract import Event, EventType, ReopenSpec, Session, rule
from pytest_asm_contract._concurrency.processes import ProcessPool, Task, TaskContext, WorkerError
from pytest_asm_contract._concurrency.threads import run_indexed
from pytest_asm_contract._machine.values import difference_text
from pytest_asm_contract._plugin.fixtures import ProcessPools
from pytest_asm_contract.suite._builders import (
    a_run,
    a_session,
    an_event,
    in_number_order,
    some_events,
)

WORKERS = 2


# -- tasks, run in the worker processes -------------------------------------------------------
def _barrier(context: TaskContext) -> Any:
    assert context.shared is not None
    return context.shared.barrier


def task_read(context: TaskContext, session_id: str) -> Any:
    return context.store.get_session(session_id), context.store.get_events(session_id)


def task_write(context: TaskContext, session: Session, count: int) -> Any:
    store = context.store
    store.save_session(session)
    run = a_run(session, id=f"{session.id}-run")
    store.save_run(run)
    return in_number_order(store.append_events(some_events(session, count, run)))


def task_append_one(context: TaskContext, event: Event) -> Event:
    stored: Event = context.store.append_event_with_sequence(event)
    return stored


def task_append_singly(
    context: TaskContext, session_id: str, threads: int, per_thread: int
) -> list[Event]:
    store, worker = context.store, context.number
    _barrier(context).wait()

    def work(thread: int) -> list[Event]:
        return [
            store.append_event_with_sequence(
                an_event(session_id, id=f"evt-w{worker}-t{thread}-{i}", data={"w": worker})
            )
            for i in range(per_thread)
        ]

    return [event for batch in run_indexed(threads, work) for event in batch]


def task_race_same_ids(context: TaskContext, session_id: str, rounds: int) -> list[Event]:
    returned = []
    for round_ in range(rounds):
        event = an_event(session_id, id=f"evt-race-{round_}", data={"racer": context.number})
        _barrier(context).wait()
        returned.append(context.store.append_event_with_sequence(event))
    return returned


def task_append_batches(
    context: TaskContext, session_id: str, threads: int, batches: int, size: int
) -> list[list[Event]]:
    store, worker = context.store, context.number
    _barrier(context).wait()

    def work(thread: int) -> list[list[Event]]:
        return [
            store.append_events(
                [an_event(session_id, id=f"evt-w{worker}-t{thread}-b{b}-{i}") for i in range(size)]
            )
            for b in range(batches)
        ]

    return [batch for per_thread in run_indexed(threads, work) for batch in per_thread]


# -- the checks -----------------------------------------------------------------------------------
def _in_workers(
    pool: ProcessPool, spec: ReopenSpec, tasks: list[tuple[Task, tuple[Any, ...]]]
) -> list[Any]:
    """Run ``tasks[i]`` in worker ``i``; a worker's failure fails the test, with its traceback."""
    try:
        return pool.run_each(spec, tasks)
    except WorkerError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)


def _everywhere(pool: ProcessPool, spec: ReopenSpec, task: Task, *args: Any) -> list[Any]:
    """Run ``task(*args)`` in every worker at once."""
    return _in_workers(pool, spec, [(task, args)] * pool.size)


def _in_one(pool: ProcessPool, spec: ReopenSpec, task: Task, *args: Any) -> Any:
    """Run ``task(*args)`` in the first worker."""
    return _in_workers(pool, spec, [(task, args)])[0]


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
            f"but the store holds something else: {difference_text(event, by_id.get(event.id))}"
        )
    return stored


class TestSharedBackend:
    @pytest.fixture
    def shared(
        self, asm_store: Any, asm_reopen_spec: ReopenSpec, asm_process_pools: ProcessPools
    ) -> Iterator[tuple[Any, ProcessPool, ReopenSpec]]:
        """The store under test, the worker processes, and the spec that opens its backend."""
        pool = asm_process_pools.get(WORKERS)
        try:
            yield asm_store, pool, asm_reopen_spec
        finally:
            pool.forget(asm_reopen_spec)

    @rule("CONC-3")
    def test_instances_see_each_others_writes(
        self, shared: tuple[Any, ProcessPool, ReopenSpec]
    ) -> None:
        store, pool, spec = shared
        mine = a_session(id="ses-parent")
        store.save_session(mine)
        appended = in_number_order(store.append_events(some_events(mine, 3)))

        seen = _in_one(pool, spec, task_read, mine.id)
        assert seen == (mine, appended), "another process does not see this one's writes"

        theirs = a_session(id="ses-child")
        written = _in_one(pool, spec, task_write, theirs, 2)
        assert store.get_session(theirs.id) == theirs
        assert store.get_run(f"{theirs.id}-run").session_id == theirs.id
        assert store.get_events(theirs.id) == written, "this process does not see their writes"

    @rule("CONC-3", "CONC-1")
    def test_processes_appending_to_one_session_number_without_gaps(
        self, shared: tuple[Any, ProcessPool, ReopenSpec]
    ) -> None:
        store, pool, spec = shared
        session = a_session(id="ses-conc")
        store.save_session(session)
        threads, per_thread = 4, 15

        results = _everywhere(pool, spec, task_append_singly, session.id, threads, per_thread)

        returned = [event for per_worker in results for event in per_worker]
        assert len(returned) == WORKERS * threads * per_thread
        assert len({e.sequence_number for e in returned}) == len(returned), (
            "two appends in different processes got the same sequence number"
        )
        stored = _assert_numbering(store, session.id, returned)
        assert len(stored) == len(returned)

    @rule("CONC-3", "IDEM-4")
    def test_processes_racing_on_one_new_id_store_it_once(
        self, shared: tuple[Any, ProcessPool, ReopenSpec]
    ) -> None:
        store, pool, spec = shared
        session = a_session(id="ses-race")
        store.save_session(session)
        rounds = 20

        results = _everywhere(pool, spec, task_race_same_ids, session.id, rounds)

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
    def test_batches_from_processes_never_interleave(
        self, shared: tuple[Any, ProcessPool, ReopenSpec]
    ) -> None:
        store, pool, spec = shared
        session = a_session(id="ses-batches")
        store.save_session(session)
        threads, batches, size = 2, 8, 5

        results = _everywhere(pool, spec, task_append_batches, session.id, threads, batches, size)

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
        self, shared: tuple[Any, ProcessPool, ReopenSpec]
    ) -> None:
        store, pool, spec = shared
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
            written = _in_one(pool, spec, task_write, session, 1)
            turn = an_event(session, type=EventType.TURN_COMPLETED, id="evt-turn")
            _in_one(pool, spec, task_append_one, turn)
        finally:
            waiter.join()
        assert len(written) == 1
        assert not isinstance(woken[0], Exception), f"the long poll failed: {woken[0]!r}"
        assert [e.id for e in woken[0]] == ["evt-turn"], (
            "a reader long-polling in this process did not get the event another process appended"
        )


__all__ = ["TestSharedBackend"]
