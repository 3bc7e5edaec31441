"""MNT-4: ``execute`` of the Maintenance object built from the store under test
(``--asm-maintenance``) runs every step, reports each count exactly, refuses an invalid policy
before anything changes, and reports a failing step in ``errors`` while the others still run.

The failing steps are made by failing the 1st, 2nd, ... k-th backend write of execute, through
the store's fault hook (``asm_fault_injector``) and in the database driver
(``asm_driver_faults``), until execute completes without reaching k. After each failure every
session must be either untouched or fully processed, every count must equal the effect, and no
step but the failing one may be left undone; running execute again without a fault finishes the
work and reports exactly what was left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, NoReturn

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.model import SessionStatus
from pytest_asm_contract._faults.policies import FailNthWrite
from pytest_asm_contract._faults.targets import DriverFaults, Injector
from pytest_asm_contract.suite._builders import a_run, expect_error
from pytest_asm_contract.suite._faults import MAX_WRITES
from pytest_asm_contract.suite._maintenance_data import (
    EXECUTE_POLICY,
    GHOSTS,
    HARD,
    INVALID_POLICIES,
    NOW,
    PRUNED,
    SOFT,
    UNTOUCHED,
    Held,
    a_meta,
    a_policy,
    a_stored_session,
    changed,
    days_ago,
    execute_world,
    optional_registry,
    session_or_none,
    snapshot,
    typed_events,
)

#: Invalid policies for the operations other than execute: a bad count, status, type, extra
#: field, a non-policy and an unvalidated model.
_PER_OPERATION = {
    "max_events_per_session=0",
    "batch_size=0",
    "exempt_statuses=['archived']",
    "prune_event_types_first=['message_whispered']",
    "no_such_limit=1",
    "None",
    "unvalidated-model",
}
_SOME_INVALID = [(name, policy) for name, policy in INVALID_POLICIES if name in _PER_OPERATION]


class TestMaintenanceExecute:
    @rule("MNT-4")
    def test_execute_runs_every_step_and_reports_each_count_exactly(
        self, request: pytest.FixtureRequest, asm_store: Any, asm_maintenance: Any
    ) -> None:
        registry = optional_registry(request, asm_store)
        ids = execute_world(asm_store, registry)
        before = snapshot(asm_store, ids, registry)
        report = asm_maintenance.execute(EXECUTE_POLICY, now=NOW)
        after = {sid: Held.read(asm_store, sid, registry) for sid in ids}
        marked = {s for s, h in after.items() if h.session and h.session.deleted_at == NOW}
        assert marked == SOFT, (
            f"MNT-4: execute soft deletes exactly {sorted(SOFT)}; marked {sorted(marked)}"
        )
        gone = {s for s in ids if after[s].gone and before[s].session is not None}
        assert gone == HARD, (
            f"MNT-4: execute hard deletes exactly {sorted(HARD)} (soft deleted more than 30 days "
            f"ago), whole; gone {sorted(gone)}"
        )
        held = {s: len(after[s].events) for s in PRUNED}
        assert held == dict.fromkeys(PRUNED, 3), (
            "MNT-4: execute prunes every session over max_events_per_session (3) to 3 events, "
            f"a session it soft deleted too; they hold {held}"
        )
        for sid in UNTOUCHED:
            assert after[sid] == before[sid], f"MNT-4: execute changed {sid!r}, which is not due"
        kept = after["x-soft-completed"].artifacts == before["x-soft-completed"].artifacts
        assert kept, "MNT-4: orphan cleaning removed the metadata of a soft-deleted session"
        cleaned = 0 if registry is None else len(GHOSTS) - len(after["x-ghost"].artifacts or [])
        pruned = sum(PRUNED.values()) - 3 * len(PRUNED)
        expected = (len(SOFT), len(HARD), pruned, len(GHOSTS) if registry else 0)
        found = (
            report.sessions_soft_deleted,
            report.sessions_hard_deleted,
            report.events_pruned,
            report.artifacts_cleaned,
        )
        assert (found, cleaned) == (expected, expected[3]), (
            "MNT-4: execute reports (sessions_soft_deleted, sessions_hard_deleted, events_pruned, "
            f"artifacts_cleaned) = {expected}, its effect; it reported {found}"
            + (f" and removed {cleaned} orphaned records" if registry else "")
        )
        assert report.errors == [], f"MNT-4: no step failed, yet errors = {report.errors}"
        assert report.orphaned_sequences_cleaned >= 0
        again = asm_maintenance.execute(EXECUTE_POLICY, now=NOW)
        counts = (again.sessions_soft_deleted, again.sessions_hard_deleted, again.events_pruned)
        assert (*counts, again.artifacts_cleaned, again.errors) == (0, 0, 0, 0, []), (
            f"MNT-4: a second execute at the same now finds nothing left to do; it reported {again}"
        )

    @rule("MNT-4")
    @pytest.mark.parametrize(
        "policy", [p for _, p in INVALID_POLICIES], ids=[name for name, _ in INVALID_POLICIES]
    )
    def test_an_invalid_policy_raises_validation_error_and_changes_nothing(
        self, asm_store: Any, asm_maintenance: Any, policy: Any
    ) -> None:
        ids = execute_world(asm_store, None)
        before = snapshot(asm_store, ids)
        with expect_error(ErrorCode.VALIDATION_ERROR):
            asm_maintenance.execute(policy, now=NOW)
        difference = changed(before, snapshot(asm_store, ids))
        assert difference == [], (
            "MNT-4: an invalid policy raises validation_error before anything changes; "
            f"changed: {difference}"
        )

    @pytest.mark.parametrize(
        ("operation", "policy"),
        [
            pytest.param(operation, policy, marks=rule(rule_id), id=f"{operation}-{name}")
            for operation, rule_id in (
                ("soft_delete_expired_sessions", "MNT-1"),
                ("hard_delete_expired_sessions", "MNT-2"),
                ("prune_session_events", "MNT-3"),
            )
            for name, policy in _SOME_INVALID
        ],
    )
    def test_each_operation_refuses_an_invalid_policy(
        self, asm_store: Any, asm_maintenance: Any, operation: str, policy: Any
    ) -> None:
        ids = execute_world(asm_store, None)
        before = snapshot(asm_store, ids)
        with expect_error(ErrorCode.VALIDATION_ERROR):
            if operation == "prune_session_events":
                asm_maintenance.prune_session_events("x-prune", policy)
            else:
                getattr(asm_maintenance, operation)(policy, now=NOW)
        difference = changed(before, snapshot(asm_store, ids))
        assert difference == [], f"{operation} with an invalid policy changed {difference}"

    @pytest.mark.parametrize(
        "operation",
        [
            pytest.param("execute", marks=rule("MNT-4")),
            pytest.param("soft_delete_expired_sessions", marks=rule("MNT-1")),
            pytest.param("hard_delete_expired_sessions", marks=rule("MNT-2")),
        ],
    )
    def test_a_naive_now_raises_validation_error_and_changes_nothing(
        self, asm_store: Any, asm_maintenance: Any, operation: str
    ) -> None:
        ids = execute_world(asm_store, None)
        before = snapshot(asm_store, ids)
        with expect_error(ErrorCode.VALIDATION_ERROR):
            getattr(asm_maintenance, operation)(EXECUTE_POLICY, now=NOW.replace(tzinfo=None))
        difference = changed(before, snapshot(asm_store, ids))
        assert difference == [], f"{operation}: a naive now (it must be aware) changed {difference}"

    # -- a failing step -------------------------------------------------------------------------
    @rule("MNT-4")
    def test_a_failing_write_is_reported_and_the_other_steps_still_run(
        self,
        request: pytest.FixtureRequest,
        asm_store: Any,
        asm_maintenance: Any,
        asm_fault_injector: Injector,
    ) -> None:
        registry = optional_registry(request, asm_store)
        loop = _FaultLoop(asm_store, asm_maintenance, registry, asm_fault_injector.armed)
        if not loop.run():
            pytest.fail(
                "MNT-4: execute made no write through the store's fault hook "
                f"({', '.join(asm_fault_injector.kinds)}): maintenance must write through the "
                "store's backend, or its failing steps cannot be shown",
                pytrace=False,
            )

    @rule("MNT-4")
    def test_a_failing_driver_write_is_reported_and_the_other_steps_still_run(
        self, request: pytest.FixtureRequest, asm_driver_faults: DriverFaults
    ) -> None:
        store = asm_driver_faults.store
        unavailable = getattr(store, "asm_maintenance_unavailable", None)
        if isinstance(unavailable, str) and unavailable:
            pytest.skip(f"{type(store).__name__} offers no Maintenance: {unavailable}")
        maintenance = request.getfixturevalue("asm_maintenance_factory")(store)
        registry = optional_registry(request, store)
        loop = _FaultLoop(store, maintenance, registry, asm_driver_faults.relay.using)
        if not loop.run():
            installed = ", ".join(asm_driver_faults.drivers.installed) or "none"
            pytest.skip(
                f"execute made no write through the drivers the kit intercepts (installed: "
                f"{installed}); MNT-4's failing steps are checked through the fault hook instead"
            )


#: What the loop's execute is given: every step but the age of sessions has work.
FAULT_POLICY = a_policy(
    max_completed_session_age_days=30, max_events_per_session=3, hard_delete_after_days=30
)
STEPS = ("soft delete", "hard delete", "prune", "orphaned artifacts")
Arm = Callable[[FailNthWrite], AbstractContextManager[FailNthWrite]]


@dataclasses.dataclass
class _Outcome:
    """Per step, how many units execute did and left; the units it left half done."""

    done: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(STEPS, 0))
    left: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(STEPS, 0))
    partial: list[str] = dataclasses.field(default_factory=list)

    def count(self, step: str, done: bool) -> None:
        (self.done if done else self.left)[step] += 1

    def expected_report(self, counts: dict[str, int]) -> dict[str, int]:
        """The report's counts that match ``counts`` units of each step."""
        return {
            "sessions_soft_deleted": counts["soft delete"],
            "sessions_hard_deleted": counts["hard delete"],
            "events_pruned": 2 * counts["prune"],  # each pruned session held 5 events, keeps 3
            "artifacts_cleaned": counts["orphaned artifacts"],
        }


class _FaultWorld:
    """Two units of work for each step of execute, and a session no step selects, under ids
    of their own (``tag``), so that every attempt of the loop runs on the same store."""

    def __init__(self, store: Any, registry: Any, tag: str) -> None:
        self.store, self.registry, self.tag = store, registry, tag
        self.before: dict[str, Held] = {}

    def ids(self, kind: str) -> list[str]:
        return [f"{self.tag}-{kind}-{n}" for n in (1, 2)]

    def prepare(self) -> None:
        store, completed = self.store, SessionStatus.COMPLETED
        for sid in self.ids("soft"):
            store.save_session(a_stored_session(sid, status=completed, updated_at=days_ago(40)))
        for sid in self.ids("hard"):
            store.save_session(a_stored_session(sid, deleted_at=days_ago(40)))
            store.save_run(a_run(sid, id=f"{sid}-run"))
            typed_events(store, sid, ["run_started", "message_sent"])
        for sid in [*self.ids("prune"), f"{self.tag}-keep"]:
            store.save_session(a_stored_session(sid, status=SessionStatus.ACTIVE))
            typed_events(store, sid, ["message_sent"] * (3 if sid.endswith("keep") else 5))
        if self.registry is not None:
            for artifact_id in GHOSTS:
                self.registry.register(a_meta(f"{self.tag}-ghost", f"{self.tag}-{artifact_id}"))
            self.registry.register(a_meta(f"{self.tag}-keep", f"{self.tag}-art-keep"))
        watched = [*self.ids("soft"), *self.ids("hard"), *self.ids("prune"), f"{self.tag}-keep"]
        self.before = {sid: Held.read(store, sid, self.registry) for sid in watched}

    def outcome(self) -> _Outcome:
        found = _Outcome()
        for sid in self.ids("soft"):
            session = session_or_none(self.store, sid)
            stamp = None if session is None else session.deleted_at
            if session is None or stamp not in (None, NOW):
                found.partial.append(f"{sid} (to soft delete) has deleted_at {stamp}")
            found.count("soft delete", stamp == NOW)
        for sid in self.ids("hard"):
            held = Held.read(self.store, sid, self.registry)
            if held != self.before[sid] and not held.gone:
                found.partial.append(f"{sid} (to hard delete) is partly deleted: {held}")
            found.count("hard delete", held.gone)
        for sid in self.ids("prune"):
            events = [e.id for e in self.store.get_events(sid)]
            was = [e.id for e in self.before[sid].events]
            done = len(events) == 3 and set(events) <= set(was)
            if events != was and not done:
                found.partial.append(f"{sid} (5 events to prune to 3) holds {events}")
            found.count("prune", done)
        keep = f"{self.tag}-keep"
        if Held.read(self.store, keep, self.registry) != self.before[keep]:
            found.partial.append(f"{keep}, which no step selects, changed")
        if self.registry is not None:
            left = len(self.registry.list_by_session(f"{self.tag}-ghost"))
            found.done["orphaned artifacts"] = len(GHOSTS) - left
            found.left["orphaned artifacts"] = left
        return found


class _FaultLoop:
    def __init__(self, store: Any, maintenance: Any, registry: Any, arm: Arm) -> None:
        self.store, self.maintenance, self.registry, self.arm = store, maintenance, registry, arm

    def run(self) -> bool:
        """Fail execute's k-th write for k = 1, 2, ... until it completes without reaching k;
        False when its first run made no write that ``arm`` sees."""
        for fail_at in range(1, MAX_WRITES + 1):
            world, plan, report = self._attempt(fail_at, outage=False)
            if not plan.fired:
                if fail_at == 1:
                    return False
                self._check(world, report, f"execute made {fail_at - 1} writes", clean=True)
                return True
            failed = f"write #{fail_at} ({(plan.fired_on or '')[:60]}) failed"
            outcome = self._check(world, report, failed, one_failure=True)
            if not any(outcome.left.values()) and not report.errors:
                # The store retried the failed write and got through, which is allowed; the same
                # write failing as an outage leaves no retry a way through.
                world, plan, report = self._attempt(fail_at, outage=True)
                failed = f"write #{fail_at} and every write after it failed (an outage)"
                outcome = self._check(world, report, failed)
            self._finish(world, outcome, failed)
        _broken(f"execute was still writing after {MAX_WRITES} writes")

    def _attempt(self, fail_at: int, outage: bool) -> tuple[_FaultWorld, FailNthWrite, Any]:
        world = _FaultWorld(self.store, self.registry, f"k{fail_at}{'-outage' * outage}")
        world.prepare()
        with self.arm(FailNthWrite(fail_at, outage=outage)) as plan:
            try:
                report = self.maintenance.execute(FAULT_POLICY, now=NOW)
            except Exception as error:
                _broken(
                    f"with write #{fail_at} failing, execute raised {type(error).__name__}: "
                    f"{error}; a failing step is reported in errors and the other steps still run"
                )
        return world, plan, report

    def _check(
        self,
        world: _FaultWorld,
        report: Any,
        failed: str,
        *,
        one_failure: bool = False,
        clean: bool = False,
    ) -> _Outcome:
        """Check execute's outcome after ``failed``: one write failing (``one_failure``), an
        outage, or none failing (``clean``)."""
        outcome = world.outcome()
        if outcome.partial:
            _broken(f"after {failed}, not untouched nor fully processed: {outcome.partial}")
        expected = outcome.expected_report(outcome.done)
        found = {name: getattr(report, name) for name in expected}
        if found != expected:
            _broken(f"after {failed}, execute reported {found}; its effect was {expected}")
        undone = [step for step in STEPS if outcome.left[step]]
        if undone and not report.errors:
            _broken(f"after {failed}, {', '.join(undone)} did not complete, yet errors is empty")
        if one_failure and len(undone) > 1:
            _broken(
                f"after {failed} (one write), the steps {', '.join(undone)} were left undone: a "
                f"failing step is reported in errors and the others still run (errors: "
                f"{report.errors})"
            )
        if clean and (undone or report.errors):
            _broken(f"{failed}, none failing, yet left {undone} undone (errors {report.errors})")
        return outcome

    def _finish(self, world: _FaultWorld, outcome: _Outcome, failed: str) -> None:
        """Execute again without a fault: it does what was left, and reports exactly that."""
        report = self.maintenance.execute(FAULT_POLICY, now=NOW)
        again = world.outcome()
        left = [step for step in STEPS if again.left[step]] + again.partial
        expected = outcome.expected_report(outcome.left)
        found = {name: getattr(report, name) for name in expected}
        if left or found != expected or report.errors:
            _broken(
                f"after {failed}, execute run again without a fault must finish the work and "
                f"report it: expected {expected}, reported {found} (errors {report.errors}), "
                f"left undone {left}"
            )


def _broken(message: str) -> NoReturn:
    pytest.fail(f"MNT-4: {message}", pytrace=False)


__all__ = ["TestMaintenanceExecute"]
