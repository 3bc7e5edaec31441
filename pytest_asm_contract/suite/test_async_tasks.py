"""ASYNC-3: tasks are the unit of concurrency. CONC-1, CONC-2, IDEM-4, BATCH-5 and FLUSH-5 hold
for concurrent tasks on the async store's own event loop exactly as for threads.

Every task is started on the store's loop (``asyncio.gather`` behind an ``asyncio.Event``
barrier), with no thread of the kit in between: this is how an async service calls its store, and
where an ``await`` between reading a counter and writing it shows. The mix of calls varies with
the run's seed (``--asm-seed``), and each check is the same for one seed. The checks are
invariants of what the tasks got back and of the final state; none looks at the clock.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.formatting import first_defect, numbers_text
from pytest_asm_contract._concurrency.plans import derive_seed
from pytest_asm_contract._concurrency.tasks import async_store, run_on_loop, together
from pytest_asm_contract._contract.model import Event, ExecutionResult, RunStatus, Session
from pytest_asm_contract._machine.values import difference_text
from pytest_asm_contract.suite._builders import a_running_run, a_session, an_event, at, sequences

#: Reads one tailing reader makes while flushes commit before it just waits for them.
MAX_READS = 300


def _rng(seed: int, check: str) -> random.Random:
    return random.Random(derive_seed(seed, "async-tasks", check))


def _gap_free(numbers: list[int | None], total: int, what: str) -> None:
    """``numbers`` (a session's stored log) must be exactly 1..total."""
    if numbers == list(range(1, total + 1)):
        return
    defect = first_defect(numbers) or f"{len(numbers)} numbers where {total} were appended"
    pytest.fail(f"{what}: the stored numbers are {numbers_text(numbers)} ({defect})", pytrace=False)


def _interleaving(numbers: list[int | None], log: list[Event]) -> str:
    """Why a batch's numbers in one session are not one consecutive block in input order, with
    the batches that own the numbers in between ("" when they are)."""
    if not numbers:
        return ""
    if None in numbers:
        return "the batch's result lacks some of its events"
    known = [n for n in numbers if n is not None]
    if known == list(range(known[0], known[0] + len(known))):
        return ""
    low, high = min(known), max(known)
    owners = [f"{e.sequence_number}:b{e.data.get('b')}" for e in log]
    owners = [
        o for o, e in zip(owners, log, strict=True) if low <= (e.sequence_number or 0) <= high
    ]
    return (
        "not one consecutive block: concurrent batches interleaved (stored number:batch "
        f"{', '.join(owners[:16])})"
    )


async def _append(store: Any, path: str, event: Event) -> Event | None:
    """``event`` appended through ``path``; the stored event the path returns (None for
    append_event, which returns nothing)."""
    if path == "append_event":
        await store.append_event(event)
        return None
    if path == "append_events":
        stored: list[Event] = await store.append_events([event])
        return stored[0]
    found: Event = await store.append_event_with_sequence(event)
    return found


class TestAsyncTasks:
    @rule("ASYNC-3")
    def test_hundred_tasks_number_each_session_gap_free(
        self, asm_store: Any, asm_seed: int
    ) -> None:
        """CONC-1 for tasks: 100 gathered appends over a few sessions."""
        rng = _rng(asm_seed, "appends")
        sessions = [a_session() for _ in range(rng.randint(2, 4))]
        events = [an_event(rng.choice(sessions), data={"task": i}) for i in range(100)]
        paths = [rng.choice(["append_event_with_sequence", "append_event"]) for _ in events]

        async def main(store: Any) -> tuple[list[Event | None], dict[str, list[Event]], list[int]]:
            for session in sessions:
                await store.save_session(session)
            returned = await together(
                [
                    functools.partial(_append, store, p, e)
                    for p, e in zip(paths, events, strict=True)
                ]
            )
            logs = {s.id: await store.get_events(s.id) for s in sessions}
            return returned, logs, [await store.get_latest_sequence(s.id) for s in sessions]

        returned, logs, latest = run_on_loop(async_store(asm_store), main)

        for session, latest_number in zip(sessions, latest, strict=True):
            appended = [e.id for e in events if e.session_id == session.id]
            log = logs[session.id]
            _gap_free(
                sequences(log),
                len(appended),
                f"ASYNC-3 (CONC-1 for tasks): after {len(appended)} appends to {session.id!r} "
                "by concurrent tasks on one loop",
            )
            if sorted(e.id for e in log) != sorted(appended):
                pytest.fail(
                    f"ASYNC-3 (CONC-1 for tasks): {session.id!r} holds other events than its "
                    f"{len(appended)} concurrent appends: missing "
                    f"{sorted(set(appended) - {e.id for e in log})[:3]}, extra "
                    f"{sorted({e.id for e in log} - set(appended))[:3]}",
                    pytrace=False,
                )
            if latest_number != len(appended):
                pytest.fail(
                    f"ASYNC-3 (CONC-1 for tasks): get_latest_sequence({session.id!r}) is "
                    f"{latest_number} after {len(appended)} appends by concurrent tasks",
                    pytrace=False,
                )
        stored = {e.id: e for log in logs.values() for e in log}
        for index, event in enumerate(returned):
            if event is not None and stored.get(event.id) != event:
                pytest.fail(
                    f"ASYNC-3 (CONC-1 for tasks): task {index} got back {event.id!r} numbered "
                    f"{event.sequence_number}, but the store holds something else: "
                    f"{difference_text(event, stored.get(event.id))}",
                    pytrace=False,
                )

    @rule("ASYNC-3")
    def test_each_task_reads_its_own_appends(self, asm_store: Any, asm_seed: int) -> None:
        """CONC-2 for tasks: a read a task starts after its append returned shows the append."""
        rng = _rng(asm_seed, "own-reads")
        sessions = [a_session() for _ in range(2)]
        orders = [
            rng.sample(["append_event", "append_event_with_sequence", "append_events"], 3)
            for _ in range(50)
        ]

        async def writer(store: Any, index: int) -> list[str]:
            missed: list[str] = []
            for path in orders[index]:
                event = an_event(sessions[index % 2], data={"task": index, "path": path})
                await _append(store, path, event)
                if event.id not in {e.id for e in await store.get_events(event.session_id)}:
                    missed.append(f"task {index}: {path}({event.id!r})")
            return missed

        async def main(store: Any) -> list[str]:
            for session in sessions:
                await store.save_session(session)
            found = await together([functools.partial(writer, store, i) for i in range(50)])
            return [m for missed in found for m in missed]

        missed = run_on_loop(async_store(asm_store), main)

        if missed:
            pytest.fail(
                f"ASYNC-3 (CONC-2 for tasks): {len(missed)} appends had returned, but the same "
                "task's next get_events did not show them (a write is visible to every read that "
                f"starts after it returned): {', '.join(missed[:3])}",
                pytrace=False,
            )

    @rule("ASYNC-3")
    def test_racing_tasks_store_one_id_once(self, asm_store: Any, asm_seed: int) -> None:
        """IDEM-4 for tasks: many tasks append one new id at once, beside fresh appends."""
        rng = _rng(asm_seed, "same-id")
        session = a_session()
        rounds = [
            (
                an_event(session, data={"round": r}),
                [rng.choice(["append_event_with_sequence", "append_events"]) for _ in range(20)],
                [
                    an_event(session, data={"round": r, "fresh": i})
                    for i in range(rng.randint(0, 4))
                ],
            )
            for r in range(3)
        ]

        async def main(store: Any) -> tuple[list[list[Event | None]], list[Event]]:
            await store.save_session(session)
            got: list[list[Event | None]] = []
            for event, paths, fresh in rounds:
                calls: list[Callable[[], Awaitable[Event | None]]] = [
                    functools.partial(_append, store, path, event) for path in paths
                ]
                calls += [functools.partial(_append, store, "append_event", e) for e in fresh]
                got.append((await together(calls))[: len(paths)])
            return got, await store.get_events(session.id)

        got, log = run_on_loop(async_store(asm_store), main)

        for number, ((event, paths, _), results) in enumerate(zip(rounds, got, strict=True)):
            copies = [e for e in log if e.id == event.id]
            if len(copies) != 1:
                pytest.fail(
                    f"ASYNC-3 (IDEM-4 for tasks): round {number}: {len(paths)} tasks appended "
                    f"one new id at once and the store kept {len(copies)} copies (numbers "
                    f"{[e.sequence_number for e in copies]}); exactly one must be stored",
                    pytrace=False,
                )
            wrong = [(i, r) for i, r in enumerate(results) if r != copies[0]]
            if wrong:
                pytest.fail(
                    f"ASYNC-3 (IDEM-4 for tasks): round {number}: every racing task must get "
                    f"the one stored event back (number {copies[0].sequence_number}); task "
                    f"{wrong[0][0]} ({paths[wrong[0][0]]}) got "
                    f"{difference_text(copies[0], wrong[0][1])}",
                    pytrace=False,
                )
        total = sum(1 + len(fresh) for _, _, fresh in rounds)
        _gap_free(sequences(log), total, "ASYNC-3 (IDEM-4 for tasks): after the racing rounds")

    @rule("ASYNC-3")
    def test_gathered_batches_stay_consecutive(self, asm_store: Any, asm_seed: int) -> None:
        """BATCH-5 for tasks: concurrent append_events batches, some mixing two sessions."""
        rng = _rng(asm_seed, "batches")
        sessions = [a_session(), a_session()]
        batches = [
            [
                an_event(rng.choice(sessions) if mixed else sessions[b % 2], data={"b": b, "i": i})
                for i in range(rng.randint(3, 10))
            ]
            for b, mixed in enumerate(rng.random() < 0.25 for _ in range(rng.randint(8, 12)))
        ]

        async def main(store: Any) -> tuple[list[list[Event]], dict[str, list[Event]]]:
            for session in sessions:
                await store.save_session(session)
            returned = await together(
                [functools.partial(store.append_events, batch) for batch in batches]
            )
            return returned, {s.id: await store.get_events(s.id) for s in sessions}

        returned, logs = run_on_loop(async_store(asm_store), main)

        for index, (batch, result) in enumerate(zip(batches, returned, strict=True)):
            numbered = {e.id: e.sequence_number for e in result}
            for session in sessions:
                numbers = [numbered.get(e.id) for e in batch if e.session_id == session.id]
                defect = _interleaving(numbers, logs[session.id])
                if defect:
                    pytest.fail(
                        f"ASYNC-3 (BATCH-5 for tasks): batch {index}'s {len(numbers)} events of "
                        f"{session.id!r}, in input order, got numbers {numbers_text(numbers)}: "
                        f"{defect}",
                        pytrace=False,
                    )
        for session in sessions:
            total = sum(1 for batch in batches for e in batch if e.session_id == session.id)
            _gap_free(
                sequences(logs[session.id]),
                total,
                f"ASYNC-3 (BATCH-5 for tasks): after the concurrent batches to {session.id!r}",
            )

    @rule("ASYNC-3")
    def test_tailing_tasks_never_see_part_of_a_flush(self, asm_store: Any, asm_seed: int) -> None:
        """FLUSH-5 for tasks: readers tail get_events(after=cursor) while flushes commit."""
        rng = _rng(asm_seed, "flushes")
        sessions = [a_session(), a_session()]
        results: list[ExecutionResult] = []
        for index in range(rng.randint(6, 10)):
            session = sessions[index % 2]
            run = a_running_run(session)
            done = run.model_copy(
                update={
                    "status": RunStatus.COMPLETED,
                    "output": {"flush": index},
                    "ended_at": at(9),
                }
            )
            events = [an_event(session, run, data={"i": i}) for i in range(rng.randint(2, 8))]
            results.append(ExecutionResult(session=session, run=done, events=events))
        readers = [sessions[i % 2] for i in range(rng.randint(4, 6))]
        problems = run_on_loop(async_store(asm_store), _FlushTail(results, readers, rng).main)

        if problems:
            pytest.fail(
                "ASYNC-3 (FLUSH-5 for tasks): a reader saw part of a flush: "
                + "; ".join(problems[:3]),
                pytrace=False,
            )


class _FlushTail:
    """Flushes gathered with readers that tail each session: every read must show each flush
    whole or not at all, and a flush whose events were seen must read back finished."""

    def __init__(
        self, results: list[ExecutionResult], readers: list[Session], rng: random.Random
    ) -> None:
        self.results, self.readers, self.rng = results, readers, rng
        self.sizes = {r.run.id: len(r.events) for r in results}
        self.done = {r.run.id: r.run for r in results}
        self.left = len(results)
        self.flushed = asyncio.Event()

    async def main(self, store: Any) -> list[str]:
        for session in {s.id: s for s in self.readers}.values():
            await store.save_session(session)
        for result in self.results:
            await store.save_run(result.run.model_copy(update={"status": RunStatus.RUNNING}))
        calls: list[Callable[[], Awaitable[str | None]]] = [
            functools.partial(self.flush, store, r) for r in self.results
        ]
        calls += [functools.partial(self.tail, store, i, s) for i, s in enumerate(self.readers)]
        self.rng.shuffle(calls)
        return [p for p in await together(calls) if p]

    async def flush(self, store: Any, result: ExecutionResult) -> None:
        try:
            await store.flush(result)
        finally:
            self.left -= 1
            if not self.left:
                self.flushed.set()

    async def tail(self, store: Any, index: int, session: Session) -> str | None:
        cursor, seen, reads = 0, dict[str, set[str]](), 0
        while True:
            finished = self.flushed.is_set()
            read = await store.get_events(session.id, after=cursor)
            reads += 1
            for event in read:
                seen.setdefault(event.run_id or "", set()).add(event.id)
            for run_id in {e.run_id or "" for e in read}:
                if len(seen[run_id]) != self.sizes.get(run_id):
                    numbers = sorted(e.sequence_number or 0 for e in read if e.run_id == run_id)
                    return (
                        f"reader {index}: get_events({session.id!r}, after={cursor}) left the "
                        f"flush of {run_id!r} at {len(seen[run_id])} of its "
                        f"{self.sizes.get(run_id)} events (numbers {numbers_text(numbers)} in "
                        "this read)"
                    )
                run = await store.get_run(run_id)
                if run != self.done[run_id]:
                    return (
                        f"reader {index}: saw every event of the flush of {run_id!r}, then "
                        f"get_run showed another run: {difference_text(self.done[run_id], run)}"
                    )
            cursor = max([cursor, *(e.sequence_number or 0 for e in read)])
            if finished:
                break
            if reads >= MAX_READS:
                await self.flushed.wait()
            await asyncio.sleep(0)  # reads that never await still let the flushes run
        unseen = [
            run_id
            for run_id, size in self.sizes.items()
            if self.done[run_id].session_id == session.id and len(seen.get(run_id, ())) != size
        ]
        if unseen:
            return (
                f"reader {index}: after every flush had returned, tailing {session.id!r} up to "
                f"number {cursor} never showed the events of the flush of {unseen[0]!r} "
                "(numbered below a number it had already read? SEQ-5)"
            )
        return None


__all__ = ["TestAsyncTasks"]
