"""FLUSH-3 in the database driver: the kit fails the k-th write itself, no hook needed.

For a store on sqlite3, psycopg, PyMySQL or redis-py (docs/fault-injection.md), each scenario of
``_faults.py`` runs with the 1st, 2nd, ... k-th write its driver sends failing with the driver's
own error, on a store built while the drivers were watched (a sqlite3 connection is only seen
when opened then). A first run of the scenario counts the writes: a store none of whose writes
passed these drivers skips, saying so; a store with a fault hook that announced fewer writes
through it than its driver made fails FLUSH-3, since the hook's own check (``test_faults.py``)
could not fail the writes it never saw. The batch scenario checks BATCH-6's all or nothing too,
the delete scenario SES-4's one atomic step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.port import FAULT_HOOK, HookError
from pytest_asm_contract._faults.policies import FailNthWrite
from pytest_asm_contract._faults.targets import DriverFaults, Injector, injector_for
from pytest_asm_contract._plugin.marks import mark_violated
from pytest_asm_contract.suite._faults import FLUSH_SCENARIOS, SCENARIOS, fail_each_write


class TestDriverFaults:
    @rule("FLUSH-3")
    @pytest.mark.parametrize("scenario", FLUSH_SCENARIOS)
    def test_failed_driver_write_leaves_no_partial_flush(
        self, request: pytest.FixtureRequest, asm_driver_faults: DriverFaults, scenario: str
    ) -> None:
        _check(request, asm_driver_faults, scenario)

    @rule("BATCH-6", "FLUSH-3")
    def test_failed_driver_write_leaves_no_partial_batch(
        self, request: pytest.FixtureRequest, asm_driver_faults: DriverFaults
    ) -> None:
        _check(request, asm_driver_faults, "append_events-mixed-batch")

    @rule("SES-4", "FLUSH-3")
    def test_failed_driver_write_leaves_no_partial_delete(
        self, request: pytest.FixtureRequest, asm_driver_faults: DriverFaults
    ) -> None:
        _check(request, asm_driver_faults, "delete_session-cascade")


def _check(request: pytest.FixtureRequest, faults: DriverFaults, scenario: str) -> None:
    shortfall = _count_writes(faults, scenario)
    backends = ", ".join(faults.drivers.completed())
    failure: str | None = None
    try:
        fail_each_write(request.node, faults.store, scenario, faults.relay.using, through=backends)
    except (AssertionError, pytest.fail.Exception) as error:
        if shortfall is None:
            raise
        failure = str(error)
    if shortfall is None:
        return
    mark_violated(request.node, "FLUSH-3")  # the hook cannot show what FLUSH-3 asks
    if failure is None:
        pytest.fail(shortfall, pytrace=False)
    pytest.fail(f"{failure}\n{shortfall}", pytrace=False)


def _count_writes(faults: DriverFaults, scenario: str) -> str | None:
    """Run the scenario once, counting the writes its driver made and those its hook saw; skip
    when the driver made none. What the hook missed, as a message, or None."""
    case = SCENARIOS[scenario](faults.store, "count")
    case.prepare()
    hook = _hook_of(faults.store)
    faults.drivers.reset()
    with faults.relay.using(FailNthWrite.counting()), _counting(hook) as announced:
        case.act()
    made = faults.drivers.completed()
    case.done()
    if not made:
        pytest.skip(_no_driver_writes(faults, case.operation))
    total = sum(made.values())
    if hook is None or announced is None or announced.writes_seen >= total:
        return None
    backends = " and ".join(made)
    if "FaultGate" in hook.kinds:
        return (
            f"{case.operation} made {total} writes to {backends} but announced "
            f"{announced.writes_seen} through its FaultGate: the gate must be called before each "
            "backend write, or FLUSH-3 cannot be shown"
        )
    return (
        f"{case.operation} made {total} writes to {backends} but only {announced.writes_seen} "
        f"passed the {' and '.join(hook.kinds)} its {FAULT_HOOK}() returns: every write must go "
        "through the hook's target, or FLUSH-3 cannot be shown"
    )


def _hook_of(store: Any) -> Injector | None:
    try:
        return injector_for(store)
    except HookError:
        return None  # test_faults.py reports the unusable hook


@contextlib.contextmanager
def _counting(hook: Injector | None) -> Iterator[FailNthWrite | None]:
    if hook is None:
        yield None
        return
    with hook.armed(FailNthWrite.counting()) as announced:
        yield announced


def _no_driver_writes(faults: DriverFaults, operation: str) -> str:
    installed = faults.drivers.installed
    drivers = ", ".join(installed) if installed else "no driver the kit intercepts"
    return (
        f"{operation} made no write through {drivers} (the drivers installed here whose writes "
        "the kit can fail): the store's backend is none of them, or it opened its sqlite3 "
        "connections before asm_store_factory() built it; FLUSH-3 is checked through the "
        f"store's fault hook ({FAULT_HOOK}) or by killed writers (shared_backend) instead"
    )


__all__ = ["TestDriverFaults"]
