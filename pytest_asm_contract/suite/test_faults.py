"""FLUSH-3: a backend failure at any write of an operation leaves nothing partial behind.

For stores that expose the fault hook (``asm_fault_target``, docs/fault-injection.md), each
scenario of ``_faults.py`` runs its operation with the 1st, 2nd, ... k-th write through the hook's
target failing, until the operation completes without reaching k. Every failure must surface as
a ``StoreError`` with a storage code, leave exactly the state from before the operation (read
back through the port), and consume no sequence number: running the operation again without a
fault gives the complete result. ``test_driver_faults.py`` does the same in the database driver.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.port import FAULT_HOOK
from pytest_asm_contract._faults.targets import Injector
from pytest_asm_contract.suite._faults import FLUSH_SCENARIOS, fail_each_write

THROUGH = f"the target of {FAULT_HOOK}(): the hook must return what the store writes through"


class TestFaults:
    @rule("FLUSH-3")
    @pytest.mark.parametrize("scenario", FLUSH_SCENARIOS)
    def test_failed_write_leaves_no_partial_flush(
        self,
        request: pytest.FixtureRequest,
        asm_store: Any,
        asm_fault_injector: Injector,
        scenario: str,
    ) -> None:
        _check(request, asm_store, asm_fault_injector, scenario)

    @rule("BATCH-6", "FLUSH-3")
    def test_failed_write_leaves_no_partial_batch(
        self, request: pytest.FixtureRequest, asm_store: Any, asm_fault_injector: Injector
    ) -> None:
        _check(request, asm_store, asm_fault_injector, "append_events-mixed-batch")

    @rule("SES-4", "FLUSH-3")
    def test_failed_write_leaves_no_partial_delete(
        self, request: pytest.FixtureRequest, asm_store: Any, asm_fault_injector: Injector
    ) -> None:
        _check(request, asm_store, asm_fault_injector, "delete_session-cascade")


def _check(request: pytest.FixtureRequest, store: Any, injector: Injector, scenario: str) -> None:
    fail_each_write(request.node, store, scenario, injector.armed, through=THROUGH)


__all__ = ["TestFaults"]
