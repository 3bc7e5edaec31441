"""CONC-1, CONC-2, IDEM-4, BATCH-5, SEQ-5, FLUSH-5: recorded histories, explained or not.

Threads (and, for ``shared_backend`` stores, processes) run seeded workloads of appends, batches,
flushes and tailing reads on a few sessions; every call is recorded with its result and its
start and end on the monotonic clock, and the history checker checks that one serial
order, consistent with real time, explains all of it (docs/histories.md). The workloads are fixed
by ``--asm-seed`` (threaded checks add workloads while their writes have rarely overlapped, see
``CONTENDED_WRITES``); a failure lists the calls that contradict each other, the seed and the
command that runs the same workloads again.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import ReopenSpec, rule
from pytest_asm_contract._concurrency.plans import Shape, derive_seed, make_plan
from pytest_asm_contract._concurrency.workloads import (
    WorkloadError,
    contended_writes,
    run_in_processes,
    run_in_threads,
)
from pytest_asm_contract._plugin.fixtures import ProcessPools
from pytest_asm_contract.suite._histories import fail_on_violations

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
#: Per profile: how many writes of a check's thread histories must have run while another write
#: began, and the most histories the check runs to see them. The profile's histories always run;
#: on a loaded machine their writes may barely overlap, and more histories follow (new seeds
#: derived from the run's) until they have raced that often.
CONTENDED_WRITES: dict[str, tuple[int, int]] = {
    "quick": (20, 6),
    "ci": (40, 9),
    "deep": (200, 50),
}
#: Processes x writer threads stay fixed (the pool's barrier is built for them).
PROCESSES = 2
PROCESS_WRITERS = 2
ACROSS_PROCESSES: dict[str, tuple[int, Shape]] = {
    "quick": (1, Shape(sessions=2, writers=2, readers=1, phases=3, ops_per_phase=6)),
    "ci": (2, Shape(sessions=2, writers=2, readers=1, phases=4, ops_per_phase=6)),
    "deep": (12, Shape(sessions=3, writers=2, readers=2, phases=6, ops_per_phase=10)),
}


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
    budget, most = CONTENDED_WRITES[profile]
    contended = index = 0
    while index < histories or (contended < budget and index < most):
        plan = make_plan(shape, derive_seed(seed, name, index), tag=f"{tag}{index}")
        try:
            history = run_in_threads(store, plan)
        except WorkloadError as error:
            pytest.fail(f"{error} (seed {plan.seed})", pytrace=False)
        fail_on_violations(request, history, name)
        contended += contended_writes(history)
        index += 1


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
class TestProcessHistories:
    @rule("CONC-3", "CONC-1", "CONC-2", "IDEM-4", "BATCH-5", "SEQ-5", "FLUSH-5")
    def test_history_across_processes_is_linearizable(
        self,
        request: pytest.FixtureRequest,
        asm_store: Any,
        asm_reopen_spec: ReopenSpec,
        asm_process_pools: ProcessPools,
        asm_seed: int,
        asm_profile: str,
    ) -> None:
        """Writers in two processes, readers in both and in this one, on one backend."""
        store, spec = asm_store, asm_reopen_spec
        pool = asm_process_pools.get(PROCESSES, PROCESSES * PROCESS_WRITERS)
        histories, shape = ACROSS_PROCESSES[asm_profile]
        name = "test_history_across_processes"
        try:
            for index in range(histories):
                plan = make_plan(
                    shape,
                    derive_seed(asm_seed, name, index),
                    tag=f"proc{index}",
                    processes=PROCESSES,
                )
                try:
                    history = run_in_processes(pool, store, spec, plan)
                except WorkloadError as error:
                    pytest.fail(f"{error} (seed {plan.seed})", pytrace=False)
                fail_on_violations(request, history, name, "CONC-3")
        finally:
            pool.forget(spec)


__all__ = ["TestProcessHistories", "TestThreadHistories"]
