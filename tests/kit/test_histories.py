"""The history checker, the ambiguous-failure client and the crash rounds, tested directly.

Hand-made histories pin down each kind of violation the checker reports (and that a serial
history passes); the reference stores pass seeded workloads; every broken store in
``tests/zoo/histories.py`` and ``tests/zoo/sqlite_toy.py`` is caught by the check meant for it.
Workloads with real threads are nondeterministic, so a broken store gets a bounded number of
seeded histories to show its bug; none of these tests looks at the clock.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_asm_contract._concurrency.checking import MAX_LISTED, check_history
from pytest_asm_contract._concurrency.crash import CrashRounds
from pytest_asm_contract._concurrency.formatting import first_defect, format_report, numbers_text
from pytest_asm_contract._concurrency.plans import T0, Shape, make_plan
from pytest_asm_contract._concurrency.processes import ProcessPool, process_pool
from pytest_asm_contract._concurrency.recording import AttemptError, Call, History, Op
from pytest_asm_contract._concurrency.retrying import STORAGE_RETRY, AmbiguousStore, RetryingClient
from pytest_asm_contract._concurrency.violations import Violation
from pytest_asm_contract._concurrency.workloads import run_in_processes, run_in_threads
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
)
from pytest_asm_contract._faults.policies import LostReplies
from pytest_asm_contract._faults.targets import injector_for
from reference_stores.memory import InMemorySessionStore
from tests.zoo import histories as zoo
from tests.zoo import sqlite_toy

S = "ses-h"
MIXED = Shape(sessions=3, writers=6, readers=2, phases=3, ops_per_phase=6)
CONTENDED = Shape(sessions=1, writers=8, readers=2, phases=4, ops_per_phase=4, racers=6)
PROCESS_SHAPE = Shape(sessions=2, writers=2, readers=1, phases=3, ops_per_phase=6)
#: A broken store gets at most this many seeded histories to show its bug.
ATTEMPTS = 12


# -- hand-made histories ------------------------------------------------------------------------
def ev(name: str, number: int | None = None, session: str = S) -> Event:
    event = Event(
        id=name, type=EventType.MESSAGE_SENT, timestamp=T0, session_id=session, data={"n": name}
    )
    return event if number is None else event.with_sequence(number)


REPEAT = ev("e1").model_copy(update={"data": {"repeat": True}})
_clock = itertools.count()


def call(op: Op, start: int, end: int, **fields: Any) -> Call:
    fields.setdefault("worker", f"t{next(_clock)}")
    worker = fields.pop("worker")
    if op.writes and "fresh" not in fields:
        fields["fresh"] = frozenset(e.id for e in fields.get("events", ()))
    if op in (Op.READ, Op.LATEST, Op.GET_SESSION):
        fields.setdefault("session_id", S)
    return Call(worker, op, start, end, **fields)


def append(name: str, number: int, start: int, end: int, **fields: Any) -> Call:
    return call(Op.APPEND, start, end, events=(ev(name),), result=ev(name, number), **fields)


def read(
    numbers: list[int], start: int, end: int, after: int = 0, names: str = "", **fields: Any
) -> Call:
    """A read that saw ``numbers``; the event at n is ``e<n>`` unless ``names`` lists them."""
    ids = names.split() or [f"e{n}" for n in numbers]
    result = [ev(name, n) for name, n in zip(ids, numbers, strict=True)]
    return call(Op.READ, start, end, after=after, result=result, **fields)


def hist(calls: list[Call], final: list[Event], **fields: Any) -> History:
    return History(calls=calls, final_events={S: final}, seed=1234, **fields)


def kinds(violations: list[Violation]) -> set[str]:
    return {f"{v.rule}:{v.kind}" for v in violations}


def test_a_serial_history_passes() -> None:
    calls = [
        append("e1", 1, 0, 10),
        read([1], 20, 30),
        call(
            Op.BATCH,
            40,
            50,
            events=(ev("e2"), ev("e3")),
            result=[ev("e2", 2), ev("e3", 3)],
        ),
        read([2, 3], 60, 70, after=1),
        call(Op.LATEST, 80, 90, result=3),
    ]
    assert check_history(hist(calls, [ev("e1", 1), ev("e2", 2), ev("e3", 3)])) == []


def test_overlapping_calls_may_take_effect_in_either_order() -> None:
    calls = [append("e1", 2, 0, 50), append("e2", 1, 10, 60), read([1], 20, 30, names="e2")]
    assert check_history(hist(calls, [ev("e2", 1), ev("e1", 2)])) == []


@pytest.mark.parametrize(
    ("calls", "final", "expected"),
    [
        pytest.param(
            [append("e1", 1, 0, 10), read([], 20, 30)],
            [ev("e1", 1)],
            "CONC-2:stale-read",
            id="a read misses a write that completed before it began",
        ),
        pytest.param(
            [read([1], 0, 10), append("e1", 1, 20, 30)],
            [ev("e1", 1)],
            "CONC-2:read-from-future",
            id="a read sees a write that had not begun",
        ),
        pytest.param(
            [append("e1", 2, 0, 10), append("e2", 1, 20, 30)],
            [ev("e2", 1), ev("e1", 2)],
            "CONC-1:numbered-against-time",
            id="a later append got the lower number",
        ),
        pytest.param(
            [
                append("e1", 1, 0, 100),
                append("e2", 2, 0, 100),
                read([1, 2], 10, 20),
                read([1], 30, 40),
            ],
            [ev("e1", 1), ev("e2", 2)],
            "CONC-2:went-backwards",
            id="a later read sees less",
        ),
        pytest.param(
            [append("e1", 1, 0, 100), append("e2", 2, 0, 100), read([2], 10, 20)],
            [ev("e1", 1), ev("e2", 2)],
            "SEQ-5:read-hole",
            id="a read sees 2 without 1",
        ),
        pytest.param(
            [
                call(
                    Op.BATCH, 0, 100, events=(ev("e1"), ev("e2")), result=[ev("e1", 1), ev("e2", 2)]
                ),
                read([1], 10, 20),
            ],
            [ev("e1", 1), ev("e2", 2)],
            "CONC-2:partial-write",
            id="a read sees half a batch",
        ),
        pytest.param(
            [
                call(
                    Op.BATCH, 0, 100, events=(ev("e1"), ev("e3")), result=[ev("e1", 1), ev("e3", 3)]
                ),
                append("e2", 2, 0, 100),
            ],
            [ev("e1", 1), ev("e2", 2), ev("e3", 3)],
            "BATCH-5:block-interleaved",
            id="another append lands inside a batch",
        ),
        pytest.param(
            [append("e1", 1, 0, 10, worker="a"), append("e1", 1, 0, 10, worker="b")],
            [ev("e1", 1), ev("e1", 2)],
            "IDEM-4:stored-twice",
            id="racers on one new id store it twice",
        ),
        pytest.param(
            [append("e1", 1, 0, 10)],
            [],
            "CONC-1:lost",
            id="an acknowledged append is not stored",
        ),
        pytest.param(
            [append("e1", 2, 0, 10), append("e2", 1, 0, 10)],
            [ev("e1", 1), ev("e2", 2)],
            "CONC-1:result-differs",
            id="a caller was told another number",
        ),
        pytest.param(
            [
                append("e1", 1, 0, 10),
                call(Op.APPEND, 20, 30, events=(ev("e1"),), result=ev("e1", 2), fresh=frozenset()),
            ],
            [ev("e1", 1), ev("e1", 2)],
            "IDEM-1:stored-twice",
            id="a repeat of a stored id is stored again",
        ),
        pytest.param(
            [append("e1", 1, 0, 10, also=(ev("e1", 2),), attempts=2)],
            [ev("e1", 1)],
            "IDEM-4:attempts-disagree",
            id="a timed-out attempt and its retry got different numbers",
        ),
        pytest.param(
            [append("e1", 1, 0, 10, also=(AttemptError(None, "IntegrityError: dup"),), attempts=2)],
            [ev("e1", 1)],
            "IDEM-4:attempt-failed",
            id="a timed-out attempt failed with a raw error while its retry won",
        ),
        pytest.param(
            [
                call(Op.APPEND_QUIET, 0, 10, events=(ev("e1"),)),
                call(
                    Op.APPEND,
                    20,
                    30,
                    events=(REPEAT,),
                    result=REPEAT.with_sequence(1),
                    fresh=frozenset(),
                ),
            ],
            [REPEAT.with_sequence(1)],
            "IDEM-1:last-write-wins",
            id="a repeat overwrote the stored event",
        ),
        pytest.param(
            [call(Op.APPEND, 0, 10, events=(ev("e1"),), error="KeyError: 'x'")],
            [ev("e1", 1)],
            "PORT-3:raw-exception",
            id="a raw exception escaped",
        ),
        pytest.param(
            [call(Op.LATEST, 0, 10, result=3)],
            [ev("e1", 1)],
            "CONC-2:latest-impossible",
            id="get_latest_sequence beyond anything stored",
        ),
    ],
)
def test_each_kind_of_violation_is_reported(
    calls: list[Call], final: list[Event], expected: str
) -> None:
    found = kinds(check_history(hist(calls, final)))
    assert expected in found, found


def _flush_call(name: str, numbers: list[int], start: int, end: int) -> tuple[Call, Session]:
    session = Session(id=S, agent_id="a", metadata={"version": name})
    run = Run(id=f"run-{name}", session_id=S, status=RunStatus.COMPLETED)
    events = tuple(ev(f"{name}-{i}") for i in range(len(numbers)))
    flushed = call(
        Op.FLUSH,
        start,
        end,
        events=events,
        session_id=S,
        run_id=run.id,
        flushed_session=session,
        flushed_run=run,
    )
    return flushed, session


def _flush_final(name: str, numbers: list[int]) -> list[Event]:
    return [ev(f"{name}-{i}", n) for i, n in enumerate(numbers)]


def test_a_flush_seen_in_part_is_reported() -> None:
    flush, session = _flush_call("f", [1, 2], 0, 100)
    seen = read([], 10, 20)
    seen.result = _flush_final("f", [1])
    found = check_history(
        hist([flush, seen], _flush_final("f", [1, 2]), final_sessions={S: session})
    )
    assert "FLUSH-5:partial-write" in kinds(found)


def test_a_flushed_run_seen_before_its_events_is_reported() -> None:
    flush, session = _flush_call("f", [1, 2], 0, 100)
    run = flush.flushed_run
    assert run is not None
    probe = call(Op.GET_RUN, 10, 20, run_id=run.id, result=run)
    after = read([], 30, 40)
    found = check_history(
        hist(
            [flush, probe, after],
            _flush_final("f", [1, 2]),
            final_sessions={S: session},
            final_runs={run.id: run},
        )
    )
    assert "FLUSH-5:went-backwards" in kinds(found), kinds(found)


def test_the_session_record_of_a_flush_must_match_its_events() -> None:
    first, first_session = _flush_call("f", [1], 0, 10)
    second, _ = _flush_call("g", [2], 20, 30)
    final = _flush_final("f", [1]) + _flush_final("g", [2])
    found = check_history(hist([first, second], final, final_sessions={S: first_session}))
    assert "FLUSH-5:session-record" in kinds(found)


def test_the_report_names_the_calls_the_seed_and_the_replay() -> None:
    calls = [append("e1", 1, 0, 1_000_000, worker="w0"), read([], 2_000_000, 3_000_000)]
    h = hist(calls, [ev("e1", 1)])
    text = format_report(h, check_history(h), "pytest --asm-seed=1234 -k histories")
    assert "CONC-2 [stale-read]" in text
    assert "[w0] append_event_with_sequence(e1) -> #1" in text
    # One seed only: the replay command's (the history's own is derived from it).
    assert text.count("seed") == 1, text
    assert "replay: pytest --asm-seed=1234 -k histories" in text
    assert f"seed {h.seed}" in format_report(h, check_history(h))


def test_many_violations_of_one_kind_list_a_few_and_count_the_rest() -> None:
    # Eight appends each told #1, stored as 1..8: seven callers told the wrong number.
    calls = [append(f"e{n}", 1, 10 * n, 10 * n + 1) for n in range(1, 9)]
    found = check_history(hist(calls, [ev(f"e{n}", n) for n in range(1, 9)]))
    listed = Counter(f"{v.rule}:{v.kind}" for v in found)
    assert listed and max(listed.values()) <= MAX_LISTED
    assert sum(1 + v.omitted for v in found) >= 7
    text = format_report(hist(calls, []), found)
    assert all(f"... and {v.omitted} more like it" in text for v in found if v.omitted)


def test_numbers_show_whole_with_the_first_defect() -> None:
    numbers = [1, 2, 1, *range(4, 69)]
    assert numbers_text(numbers) == "[1, 2, 1, 4..68]"
    assert first_defect(numbers) == "position 3 holds 1 (after 2; a repeat, expected 3)"
    assert numbers_text([1, 2, 3, 5, 6, 7]) == "[1..3, 5..7]"
    assert first_defect([1, 2, 3, 5]) == "position 4 holds 5 (after 3; a gap, expected 4)"
    assert first_defect(list(range(1, 50))) == ""
    many = [n for k in range(1, 40) for n in (k, k)]  # every number twice: 39 runs of two
    shown = numbers_text(many)
    assert shown.startswith("[1, 1, 2, 2, 3, 3,") and "more runs, 78 numbers in all" in shown


# -- real workloads -----------------------------------------------------------------------------
def _threads(store_class: Callable[[], Any], shape: Shape, seed: int) -> list[Violation]:
    store = store_class()
    return check_history(run_in_threads(store, make_plan(shape, seed, f"t{seed}")))


def _ambiguous(store_class: Callable[[], Any], shape: Shape, seed: int) -> list[Violation]:
    store = store_class()
    wrapper = AmbiguousStore(store, seed)
    plan = make_plan(shape, seed, f"a{seed}")
    history = run_in_threads(
        wrapper, plan, invoke=RetryingClient(seed=seed), after_writers=wrapper.join
    )
    wrapper.attach(history.calls)
    assert sum(wrapper.injected.values()) > 0
    return check_history(history)


@pytest.mark.parametrize("shape", [MIXED, CONTENDED], ids=["mixed", "contended"])
def test_the_memory_store_passes_thread_workloads(shape: Shape) -> None:
    for seed in range(6):
        violations = _threads(InMemorySessionStore, shape, seed)
        assert violations == [], [f"{v.rule} {v.kind}: {v.message}" for v in violations]


def test_the_memory_store_passes_ambiguous_failures() -> None:
    for seed in range(6):
        violations = _ambiguous(InMemorySessionStore, MIXED, seed)
        assert violations == [], [f"{v.rule} {v.kind}: {v.message}" for v in violations]


def test_the_sql_store_passes_backend_ambiguity_on_sqlite() -> None:
    sql = pytest.importorskip("reference_stores.sql")
    store = sql.SqlSessionStore()
    try:
        for seed in range(2):
            injector = injector_for(store)
            assert injector is not None
            with injector.armed(LostReplies(seed, rate=0.3)) as lost:
                history = run_in_threads(
                    store,
                    make_plan(MIXED, seed, f"b{seed}"),
                    invoke=RetryingClient(retry_on=STORAGE_RETRY, seed=seed),
                )
            assert lost.injected > 0
            violations = check_history(history)
            assert violations == [], format_report(history, violations)
    finally:
        store.close()


CAUGHT = [
    (zoo.BatchNumberedFromStaleCount, _threads, MIXED, "CONC-1:final-numbers"),
    (zoo.QuietAppendHandedOff, _threads, CONTENDED, "CONC-2:stale-read"),
    (zoo.QuietAppendHandedOff, _threads, CONTENDED, "CONC-1:numbered-against-time"),
    (zoo.FlushEventsInTwoSteps, _threads, MIXED, "FLUSH-5:partial-write"),
    (zoo.FlushEventsInTwoSteps, _threads, MIXED, "FLUSH-5:block-interleaved"),
    (zoo.DedupeAgainstRecentTail, _ambiguous, MIXED, "IDEM-1:stored-twice"),
    (zoo.DedupeAgainstRecentTail, _ambiguous, MIXED, "FLUSH-4:stored-twice"),
    (zoo.PublishedOutOfOrder, _threads, MIXED, "SEQ-5:read-hole"),
]


@pytest.mark.parametrize(
    ("store_class", "runner", "shape", "expected"),
    CAUGHT,
    ids=[f"{c[0].__name__}-{c[3]}" for c in CAUGHT],
)
def test_each_broken_store_is_caught_by_its_check(
    store_class: type, runner: Callable[..., list[Violation]], shape: Shape, expected: str
) -> None:
    for seed in range(ATTEMPTS):
        if expected in kinds(runner(store_class, shape, seed)):
            return
    pytest.fail(f"{store_class.__name__} was not caught ({expected}) in {ATTEMPTS} histories")


# -- processes and crashes on a SQLite file ----------------------------------------------------
@pytest.fixture(scope="module")
def crew() -> Iterator[ProcessPool]:
    with process_pool(2, 2 * PROCESS_SHAPE.writers) as started:
        yield started


def _process_histories(crew: ProcessPool, store_class: type, count: int) -> set[str]:
    store = store_class()
    spec = store.asm_reopen_spec()
    found: set[str] = set()
    try:
        for seed in range(count):
            plan = make_plan(PROCESS_SHAPE, seed, f"p{seed}", processes=2)
            found |= kinds(check_history(run_in_processes(crew, store, spec, plan)))
            if found:
                break
    finally:
        crew.forget(spec)
        store.close()
    return found


def test_the_toy_sqlite_store_passes_process_histories(crew: ProcessPool) -> None:
    assert _process_histories(crew, sqlite_toy.SqliteToyStore, 3) == set()


def test_numbering_outside_the_transaction_is_caught_across_processes(crew: ProcessPool) -> None:
    found = _process_histories(crew, sqlite_toy.UnguardedSqliteStore, ATTEMPTS)
    assert "CONC-1:final-numbers" in found, found


def test_the_unguarded_store_passes_thread_histories() -> None:
    """Its bug needs two processes: within one, its lock is enough."""
    store = sqlite_toy.UnguardedSqliteStore()
    try:
        for seed in range(2):
            history = run_in_threads(store, make_plan(MIXED, seed, f"u{seed}"))
            assert check_history(history) == []
    finally:
        store.close()


def _crash(store_class: type, rounds: int) -> CrashRounds:
    store = store_class()
    try:
        crashes = CrashRounds(store, store.asm_reopen_spec(), seed=7, commits=30)
        crashes.run(rounds)
    finally:
        store.close()
    return crashes


def test_the_toy_sqlite_store_survives_killed_writers() -> None:
    crashes = _crash(sqlite_toy.SqliteToyStore, 4)
    assert len(crashes.reports) == 4
    assert [p for r in crashes.reports for p in r.problems] == []


def test_a_flush_in_three_transactions_is_caught_by_a_killed_writer() -> None:
    crashes = _crash(sqlite_toy.TornFlushSqliteStore, ATTEMPTS)
    problems = [p for r in crashes.reports for p in r.problems]
    assert any(p.rule == "FLUSH-3" for p in problems), [r.summary() for r in crashes.reports]


def test_a_seed_fixes_the_workload() -> None:
    assert make_plan(MIXED, 5, "x") == make_plan(MIXED, 5, "x")
    assert make_plan(MIXED, 5, "x") != make_plan(MIXED, 6, "x")
    flushes = [
        p
        for w in make_plan(MIXED, 5, "x").writers
        for phase in w
        for p in phase
        if p.op is Op.FLUSH
    ]
    assert flushes and all(isinstance(p.result, ExecutionResult) for p in flushes)
