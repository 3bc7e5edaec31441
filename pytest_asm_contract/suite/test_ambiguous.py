"""IDEM-1, IDEM-4, FLUSH-4 under retries: writes that happened, but whose caller was told not.

Writer threads make their calls as a careful client does: a write that fails with an error that
may hide a completed write is retried with the same ids, at once or later in the workload. The
failures are injected (by the kit's fault layer): around the store object for every store
(the reply lost, the request lost, or a timeout while the first attempt keeps running and races
its retry), and below the store through its fault hook (a SQL COMMIT that succeeds but whose reply
is lost; an S3 write that succeeds but times out). The recorded history must show every id stored
once, each retry answered with the events as first stored, and all of it explained by a serial
order (docs/histories.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.plans import Shape, derive_seed, make_plan
from pytest_asm_contract._concurrency.retrying import STORAGE_RETRY, AmbiguousStore, RetryingClient
from pytest_asm_contract._concurrency.workloads import WorkloadError, run_in_threads
from pytest_asm_contract._contract.port import FAULT_HOOK
from pytest_asm_contract._faults.policies import LostReplies
from pytest_asm_contract._faults.targets import Injector
from pytest_asm_contract.suite._histories import fail_on_violations

#: (histories, shape) per profile.
SHAPES: dict[str, tuple[int, Shape]] = {
    "quick": (2, Shape(sessions=2, writers=4, readers=1, phases=3, ops_per_phase=5)),
    "ci": (3, Shape(sessions=2, writers=6, readers=1, phases=3, ops_per_phase=6)),
    "deep": (20, Shape(sessions=3, writers=8, readers=2, phases=5, ops_per_phase=8)),
}
#: Smaller: every injected failure costs the store a real round trip to its backend and a retry.
BACKEND_SHAPES: dict[str, tuple[int, Shape]] = {
    "quick": (1, Shape(sessions=2, writers=4, readers=1, phases=2, ops_per_phase=4)),
    "ci": (2, Shape(sessions=2, writers=4, readers=1, phases=3, ops_per_phase=4)),
    "deep": (10, Shape(sessions=2, writers=6, readers=1, phases=4, ops_per_phase=6)),
}


class TestAmbiguousFailures:
    @rule("IDEM-1", "IDEM-4", "FLUSH-4")
    def test_retries_after_lost_replies_and_timeouts_store_each_event_once(
        self, request: pytest.FixtureRequest, asm_store: Any, asm_seed: int, asm_profile: str
    ) -> None:
        histories, shape = SHAPES[asm_profile]
        name = "test_retries_after_lost_replies"
        injected = 0
        for index in range(histories):
            seed = derive_seed(asm_seed, name, index)
            wrapper = AmbiguousStore(asm_store, seed)
            client = RetryingClient(seed=seed)
            plan = make_plan(shape, seed, tag=f"amb{index}")
            try:
                history = run_in_threads(wrapper, plan, invoke=client, after_writers=wrapper.join)
            except WorkloadError as error:
                pytest.fail(f"{error} (seed {seed})", pytrace=False)
            wrapper.attach(history.calls)
            injected += sum(wrapper.injected.values())
            fail_on_violations(
                request, history, name, note=f"({injected} ambiguous failures injected)"
            )
        assert injected > 0, "the workload injected no ambiguous failure; the check proved nothing"

    @rule("IDEM-1", "IDEM-4", "FLUSH-4")
    def test_retries_after_backend_failures_store_each_event_once(
        self,
        request: pytest.FixtureRequest,
        asm_store: Any,
        asm_fault_injector: Injector,
        asm_seed: int,
        asm_profile: str,
    ) -> None:
        histories, shape = BACKEND_SHAPES[asm_profile]
        name = "test_retries_after_backend_failures"
        injected = 0
        for index in range(histories):
            seed = derive_seed(asm_seed, name, index)
            client = RetryingClient(retry_on=STORAGE_RETRY, seed=seed)
            plan = make_plan(shape, seed, tag=f"bamb{index}")
            try:
                with asm_fault_injector.armed(LostReplies(seed)) as lost:
                    history = run_in_threads(asm_store, plan, invoke=client)
            except WorkloadError as error:
                pytest.fail(f"{error} (seed {seed})", pytrace=False)
            injected += lost.injected
            fail_on_violations(
                request, history, name, note=f"({injected} ambiguous failures injected)"
            )
        if injected == 0:
            # A hook whose target sees none of the store's writes is FLUSH-3's to report.
            pytest.skip(
                f"no write went through the target of {FAULT_HOOK}(), so no reply could be lost; "
                "the hook must return what the store writes through (see the FLUSH-3 check)"
            )


__all__ = ["TestAmbiguousFailures"]
