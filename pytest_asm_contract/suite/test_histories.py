"""CONC-1, CONC-2, IDEM-4, BATCH-5, SEQ-5, FLUSH-5: recorded histories, explained or not.

Threads (and, for ``shared_backend`` stores, processes) run seeded workloads of appends, batches,
flushes and tailing reads on a few sessions; every call is recorded with its result and its
start and end on the monotonic clock, and the history checker checks that one serial
order, consistent with real time, explains all of it (docs/histories.md). The workload is fixed by
``--asm-seed``; a failure lists the calls that contradict each other, the seed and the command
that runs the same workloads again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.history import (
    History,
    check_history,
    format_report,
    violated_rules,
)
from pytest_asm_contract._concurrency.workloads import (
    ProcessCrew,
    Shape,
    Spec,
    WorkloadError,
    derive_seed,
    make_plan,
    replay_command,
    run_in_threads,
)
from pytest_asm_contract._plugin.marks import mark_violated

REOPEN_HOOK = "asm_reopen_spec"

#: (histories, shape) per profile.
MIXED: dict[str, tuple[int, Shape]] = {
    "quick": (2, Shape(sessions=2, writers=4, readers=2, phases=2, ops_per_phase=5)),
    "ci": (3, Shape(sessions=3, writers=6, readers=2, phases=3, ops_per_phase=6)),
    "deep": (25, Shape(sessions=3, writers=8, readers=3, phases=6, ops_per_phase=10)),
}
CONTENDED: dict[str, tuple[int, Shape]] = {
    "quick": (2, Shape(sessions=1, writers=6, readers=2, phases=3, ops_per_phase=3, racers=4)),
    "ci": (3, Shape(sessions=1, writers=8, readers=2, phases=4, ops_per_phase=4, racers=6)),
    "deep": (25, Shape(sessions=1, writers=12, readers=3, phases=8, ops_per_phase=6, racers=8)),
}
#: Processes x writer threads stay fixed (the crew's barrier is built for them).
PROCESSES = 2
PROCESS_WRITERS = 2
ACROSS_PROCESSES: dict[str, tuple[int, Shape]] = {
    "quick": (1, Shape(sessions=2, writers=2, readers=1, phases=3, ops_per_phase=6)),
    "ci": (2, Shape(sessions=2, writers=2, readers=1, phases=4, ops_per_phase=6)),
    "deep": (12, Shape(sessions=3, writers=2, readers=2, phases=6, ops_per_phase=10)),
}


def check_or_fail(
    request: pytest.FixtureRequest, history: History, selector: str, *also: str
) -> None:
    """Fail the test with the violations, the seed and the replay command, if there are any.

    ``also`` names rules broken by any violation (CONC-3 for a history across processes).
    """
    violations = check_history(history)
    if not violations:
        return
    mark_violated(request.node, *also, *violated_rules(violations))
    replay = replay_command(request.config, selector)
    pytest.fail(format_report(history, violations, replay), pytrace=False)


def _run_threaded(
    request: pytest.FixtureRequest,
    store: Any,
    seed: int,
    profile: str,
    shapes: dict[str, tuple[int, Shape]],
    name: str,
    tag: str,
) -> None:
    histories, shape = shapes[profile]
    for index in range(histories):
        plan = make_plan(shape, derive_seed(seed, name, index), tag=f"{tag}{index}")
        try:
            history = run_in_threads(store, plan)
        except WorkloadError as error:
            pytest.fail(f"{error} (seed {plan.seed})", pytrace=False)
        check_or_fail(request, history, name)


class TestThreadHistories:
    @rule("CONC-1", "CONC-2", "IDEM-4", "IDEM-1", "BATCH-5", "SEQ-5", "FLUSH-5")
    def test_mixed_workload_history_is_linearizable(
        self, request: pytest.FixtureRequest, asm_store: Any, asm_seed: int, asm_profile: str
    ) -> None:
        """Appends, batches over one or two sessions, repeats, flushes and tailing readers."""
        _run_threaded(
            request, asm_store, asm_seed, asm_profile, MIXED, "test_mixed_workload_history", "mix"
        )

    @rule("CONC-1", "CONC-2", "IDEM-4", "BATCH-5", "SEQ-5", "FLUSH-5")
    def test_contended_session_history_is_linearizable(
        self, request: pytest.FixtureRequest, asm_store: Any, asm_seed: int, asm_profile: str
    ) -> None:
        """Every writer on one session, most of them racing on a new id at each phase."""
        _run_threaded(
            request,
            asm_store,
            asm_seed,
            asm_profile,
            CONTENDED,
            "test_contended_session_history",
            "hot",
        )


# -- across processes ---------------------------------------------------------------------------
class _LazyCrew:
    def __init__(self) -> None:
        self.crew: ProcessCrew | None = None

    def get(self) -> ProcessCrew:
        if self.crew is None:
            crew = ProcessCrew(PROCESSES, PROCESS_WRITERS)
            self.crew = crew
            crew.start()
        return self.crew

    def stop(self) -> None:
        if self.crew is not None:
            self.crew.stop()


@pytest.fixture(scope="module")
def asm_history_crew() -> Iterator[_LazyCrew]:
    crew = _LazyCrew()
    yield crew
    crew.stop()


@pytest.fixture
def crew_on_store(
    asm_store: Any, asm_history_crew: _LazyCrew
) -> Iterator[tuple[Any, ProcessCrew, Spec]]:
    hook = getattr(asm_store, REOPEN_HOOK, None)
    if not callable(hook):
        pytest.fail(
            f"the store declares shared_backend but has no {REOPEN_HOOK}() telling the kit how "
            "to open its backend from another process; see docs/shared-backend.md",
            pytrace=False,
        )
    spec = hook()
    try:
        crew = asm_history_crew.get()
    except WorkloadError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield asm_store, crew, spec
    finally:
        crew.forget(spec)


class TestProcessHistories:
    @rule("CONC-3", "CONC-1", "CONC-2", "IDEM-4", "BATCH-5", "SEQ-5", "FLUSH-5")
    def test_history_across_processes_is_linearizable(
        self,
        request: pytest.FixtureRequest,
        crew_on_store: tuple[Any, ProcessCrew, Spec],
        asm_seed: int,
        asm_profile: str,
    ) -> None:
        """Writers in two processes, readers in both and in this one, on one backend."""
        store, crew, spec = crew_on_store
        histories, shape = ACROSS_PROCESSES[asm_profile]
        name = "test_history_across_processes"
        for index in range(histories):
            plan = make_plan(
                shape, derive_seed(asm_seed, name, index), tag=f"proc{index}", processes=PROCESSES
            )
            try:
                history = crew.run(store, spec, plan)
            except WorkloadError as error:
                pytest.fail(f"{error} (seed {plan.seed})", pytrace=False)
            check_or_fail(request, history, name, "CONC-3")
