"""The FLUSH-3 scenarios and the loop that fails each write of one in turn.

Two checks share them: ``test_faults.py`` fails writes through the store's fault hook,
``test_driver_faults.py`` below it, in the database driver. Each scenario runs its operation with
the 1st, 2nd, ... k-th write failing, until the operation completes without reaching k. A store
may retry a failed write and complete; then the same write fails again as an outage (it and every
later write fail), which no retry gets through, so a retry cannot hide a torn write. Every
failure must surface as a ``StoreError`` with a storage code, leave exactly the state from before
the operation (read back through the port), and consume no sequence number: running the
operation again without a fault gives the complete result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, NoReturn

import pytest

from pytest_asm_contract._contract.errors import STORAGE_CODES, ErrorCode, StoreError
from pytest_asm_contract._contract.model import (
    Event,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from pytest_asm_contract._faults.policies import FailNthWrite
from pytest_asm_contract._plugin.marks import mark_violated
from pytest_asm_contract.suite._builders import a_run, a_session, an_event, at, expect_error

#: More writes than any reasonable implementation needs for one of these operations.
MAX_WRITES = 64


@dataclasses.dataclass
class Scenario:
    """One operation on a prepared state, and the two states a reader may see afterwards."""

    operation: str
    #: The rule a partial result breaks (that the failure surfaces as a StoreError is FLUSH-3).
    rule: str
    prepare: Callable[[], None]
    act: Callable[[], None]
    untouched: Callable[[], None]
    done: Callable[[], None]


def _events_of(store: Any, session: Session) -> list[tuple[str, int | None]]:
    return [(e.id, e.sequence_number) for e in store.get_events(session.id)]


def _assert_absent(store: Any, session: Session, run: Run) -> None:
    lookups: list[tuple[str, Callable[[], object], ErrorCode]] = [
        ("session", lambda: store.get_session(session.id), ErrorCode.SESSION_NOT_FOUND),
        ("run", lambda: store.get_run(run.id), ErrorCode.RUN_NOT_FOUND),
    ]
    for what, lookup, code in lookups:
        try:
            found = lookup()
        except StoreError as error:
            assert error.code is code, f"reading the {what} of a failed write raised {error}"
        else:
            raise AssertionError(f"the {what} of a failed write is visible: {found!r}")
    assert store.list_runs(session.id) == [], "runs of a failed write are visible"
    assert store.get_events(session.id) == [], "events of a failed write are visible"
    assert store.get_latest_sequence(session.id) == 0, "a failed write consumed numbers"


def _flush_new(store: Any, tag: str) -> Scenario:
    session = a_session(id=f"ses-fault-new-{tag}", created_at=at(1))
    run = a_run(session, id=f"run-fault-new-{tag}", status=RunStatus.COMPLETED)
    events = [an_event(session, run, id=f"evt-fault-new-{tag}-{i}") for i in range(3)]
    result = ExecutionResult(session=session, run=run, events=events)

    def done() -> None:
        assert store.get_session(session.id) == session
        assert store.get_run(run.id) == run
        assert _events_of(store, session) == [(e.id, i) for i, e in enumerate(events, 1)]

    return Scenario(
        operation="flush",
        rule="FLUSH-3",
        prepare=lambda: None,
        act=lambda: store.flush(result),
        untouched=lambda: _assert_absent(store, session, run),
        done=done,
    )


def _flush_existing(store: Any, tag: str) -> Scenario:
    """Flush over a session and run that exist, with two events already stored."""
    before = a_session(id=f"ses-fault-old-{tag}", status=SessionStatus.ACTIVE, created_at=at(2))
    run_before = a_run(before, id=f"run-fault-old-{tag}", status=RunStatus.RUNNING)
    old = [an_event(before, run_before, id=f"evt-fault-old-{tag}-{i}") for i in range(2)]
    after = before.model_copy(update={"status": SessionStatus.COMPLETED, "updated_at": at(9)})
    run_after = run_before.model_copy(update={"status": RunStatus.COMPLETED, "turn_count": 3})
    new = [an_event(before, run_before, id=f"evt-fault-more-{tag}-{i}") for i in range(3)]
    result = ExecutionResult(session=after, run=run_after, events=old + new)

    def prepare() -> None:
        store.save_session(before)
        store.save_run(run_before)
        store.append_events(old)

    def untouched() -> None:
        assert store.get_session(before.id) == before, "the session changed in a failed flush"
        assert store.get_run(run_before.id) == run_before, "the run changed in a failed flush"
        assert _events_of(store, before) == [(e.id, i) for i, e in enumerate(old, 1)]
        assert store.get_latest_sequence(before.id) == len(old)

    def done() -> None:
        assert store.get_session(before.id) == after
        assert store.get_run(run_before.id) == run_after
        assert _events_of(store, before) == [(e.id, i) for i, e in enumerate(old + new, 1)]

    return Scenario("flush", "FLUSH-3", prepare, lambda: store.flush(result), untouched, done)


def _append_mixed_batch(store: Any, tag: str) -> Scenario:
    """A batch over two sessions, one already holding events, with a repeated stored id."""
    first = a_session(id=f"ses-fault-a-{tag}", created_at=at(3))
    second = a_session(id=f"ses-fault-b-{tag}", created_at=at(4))
    stored = an_event(first, id=f"evt-fault-stored-{tag}")
    fresh_a = [an_event(first, id=f"evt-fault-a-{tag}-{i}") for i in range(2)]
    fresh_b = [an_event(second, id=f"evt-fault-b-{tag}-{i}") for i in range(2)]
    batch: list[Event] = [fresh_a[0], fresh_b[0], stored, fresh_a[1], fresh_b[1]]

    def prepare() -> None:
        store.save_session(first)
        store.save_session(second)
        store.append_events([stored])

    def untouched() -> None:
        assert _events_of(store, first) == [(stored.id, 1)], "a failed batch left events behind"
        assert _events_of(store, second) == [], "a failed batch left events behind"
        assert store.get_latest_sequence(first.id) == 1, "a failed batch consumed numbers"
        assert store.get_latest_sequence(second.id) == 0, "a failed batch consumed numbers"

    def done() -> None:
        assert _events_of(store, first) == [(stored.id, 1), (fresh_a[0].id, 2), (fresh_a[1].id, 3)]
        assert _events_of(store, second) == [(fresh_b[0].id, 1), (fresh_b[1].id, 2)]

    return Scenario(
        "append_events", "BATCH-6", prepare, lambda: store.append_events(batch), untouched, done
    )


def _delete_session(store: Any, tag: str) -> Scenario:
    """Delete a session with two runs and three events, next to a session that must stay."""
    doomed = a_session(id=f"ses-fault-doomed-{tag}", created_at=at(5))
    kept = a_session(id=f"ses-fault-kept-{tag}", created_at=at(6))
    runs = [a_run(doomed, id=f"run-fault-doomed-{tag}-{i}", started_at=at(i)) for i in range(2)]
    events = [an_event(doomed, runs[0], id=f"evt-fault-doomed-{tag}-{i}") for i in range(3)]
    kept_event = an_event(kept, id=f"evt-fault-kept-{tag}")

    def prepare() -> None:
        for session in (doomed, kept):
            store.save_session(session)
        for run in runs:
            store.save_run(run)
        store.append_events([*events, kept_event])

    def untouched() -> None:
        assert store.get_session(doomed.id) == doomed, "a failed delete removed the session"
        assert store.list_runs(doomed.id) == runs, "a failed delete removed runs"
        assert _events_of(store, doomed) == [(e.id, i) for i, e in enumerate(events, 1)]
        assert store.get_latest_sequence(doomed.id) == len(events)

    def done() -> None:
        with expect_error(ErrorCode.SESSION_NOT_FOUND):
            store.get_session(doomed.id)
        assert store.list_runs(doomed.id) == []
        assert store.get_events(doomed.id) == []
        assert store.get_latest_sequence(doomed.id) == 0
        assert store.get_session(kept.id) == kept
        assert _events_of(store, kept) == [(kept_event.id, 1)]

    return Scenario(
        "delete_session", "SES-4", prepare, lambda: store.delete_session(doomed.id), untouched, done
    )


SCENARIOS: dict[str, Callable[[Any, str], Scenario]] = {
    "flush-new-session": _flush_new,
    "flush-over-existing-state": _flush_existing,
    "append_events-mixed-batch": _append_mixed_batch,
    "delete_session-cascade": _delete_session,
}

#: The scenarios that check FLUSH-3 alone (the batch one checks BATCH-6, the delete one SES-4).
FLUSH_SCENARIOS = ("flush-new-session", "flush-over-existing-state")

#: Puts a policy where the store's writes pass, for the length of a block.
Arm = Callable[[FailNthWrite], AbstractContextManager[FailNthWrite]]


def fail_each_write(
    item: pytest.Item, store: Any, scenario: str, arm: Arm, *, through: str
) -> None:
    """Run ``scenario`` with its 1st, 2nd, ... write failing, each time on a fresh state, until
    it completes without reaching the k-th; fail the test (``item``) where the scenario's rule or
    FLUSH-3 does not hold. ``through`` names where the writes are failed, for the message when
    none was seen."""

    def broken(rule_id: str, message: str) -> NoReturn:
        mark_violated(item, rule_id)
        pytest.fail(message, pytrace=False)

    def attempt(fail_at: int, outage: bool) -> tuple[Scenario, FailNthWrite, StoreError | None]:
        case = SCENARIOS[scenario](store, f"k{fail_at}{'-outage' if outage else ''}")
        case.prepare()
        error: StoreError | None = None
        with arm(FailNthWrite(fail_at, outage=outage)) as plan:
            try:
                case.act()
            except StoreError as raised:
                error = raised
            except Exception as raw:
                broken(
                    "FLUSH-3",
                    f"{scenario}: with write #{fail_at} failing, a raw "
                    f"{type(raw).__module__}.{type(raw).__name__} escaped the store: {raw} "
                    "(backend failures must surface as StoreError)",
                )
        return case, plan, error

    failures = 0
    for fail_at in range(1, MAX_WRITES + 1):
        case, plan, error = attempt(fail_at, outage=False)
        if not plan.fired:
            if error is not None:
                broken("FLUSH-3", f"{scenario} failed without an injected fault: {error}")
            case.done()
            break
        failed = f"write #{fail_at} failed"
        if error is None:
            # The store retried the failed write itself and completed: that is allowed. A retry
            # also hides a torn write (what committed before it stays either way), so the same
            # write fails again as an outage, which no retry gets through.
            case.done()
            case, plan, error = attempt(fail_at, outage=True)
            if error is None:
                case.done()
                continue
            failed = f"write #{fail_at} and every write after it failed (an outage)"
        failures += 1
        if error.code not in STORAGE_CODES:
            broken(
                "FLUSH-3",
                f"{scenario}: {failed} in the backend, and the store raised "
                f"{error.code.value} ({error.message}); FLUSH-3 wants a storage code: "
                f"{', '.join(sorted(c.value for c in STORAGE_CODES))}",
            )
        try:
            case.untouched()
        except AssertionError as partial:
            broken(
                case.rule,
                f"{scenario}: after {failed}, part of the {case.operation} is visible: {partial}",
            )
        case.act()  # the same operation, no fault: it must complete as if never tried
        case.done()
    else:
        broken("FLUSH-3", f"{scenario} was still writing after {MAX_WRITES} writes")
    if fail_at == 1 and not failures:
        broken("FLUSH-3", f"{scenario} completed without one write through {through}")


__all__ = ["FLUSH_SCENARIOS", "MAX_WRITES", "SCENARIOS", "Arm", "Scenario", "fail_each_write"]
