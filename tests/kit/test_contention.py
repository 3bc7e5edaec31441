"""How the race checks count overlapping calls, and that they catch a store without its lock.

``Contention`` and ``contended_writes`` decide how long a race runs: they must count a call
only when another call began while it ran, stop the threads once the budget is met, and never
read the clock. Threads here are ordered with events, never with sleeps.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any

import pytest

from pytest_asm_contract._concurrency.plans import T0
from pytest_asm_contract._concurrency.recording import Call, History, Op
from pytest_asm_contract._concurrency.threads import (
    HANG_GUARD_S,
    RACE_SWITCH_INTERVAL_S,
    Contention,
    run_threads,
)
from pytest_asm_contract._concurrency.workloads import contended_writes
from pytest_asm_contract._contract.model import Event, EventType
from pytest_asm_contract.suite import test_concurrency as concurrency
from tests.zoo.dict_store import DictSessionStore, LocklessDictStore


def test_calls_one_after_another_are_not_contended() -> None:
    meter = Contention(budget=1, most=5)
    made = [meter.call(functools.partial(int, turn)) for turn in meter.turns()]
    assert made == [0, 1, 2, 3, 4], "never contended: the turns stop at the most calls"
    assert (meter.contended, meter.calls, meter.met) == (0, 5, True)
    assert str(meter) == "0 of 5 calls overlapped another"


def test_only_a_call_another_began_inside_is_contended() -> None:
    meter = Contention(budget=1, most=100)
    inside, second_returned = threading.Event(), threading.Event()
    outcome: list[bool] = []

    def first() -> bool:
        inside.set()
        return second_returned.wait(HANG_GUARD_S)

    worker = threading.Thread(target=lambda: outcome.append(meter.call(first)))
    worker.start()
    assert inside.wait(HANG_GUARD_S)
    assert not meter.met
    assert meter.call(lambda: "second") == "second"
    second_returned.set()
    worker.join(HANG_GUARD_S)

    assert outcome == [True]
    assert (meter.contended, meter.calls) == (1, 2)
    assert meter.met


def test_every_thread_takes_its_first_turn_once_the_budget_is_met() -> None:
    meter = Contention(budget=0, most=1000)
    assert meter.met
    assert list(meter.turns()) == [0]


def test_a_raising_call_is_counted_and_raises() -> None:
    meter = Contention(budget=1, most=10)

    def fail() -> None:
        raise ValueError("store error")

    with pytest.raises(ValueError, match="store error"):
        meter.call(fail)
    assert meter.calls == 1


def _write(start: int, end: int, name: str) -> Call:
    event = Event(id=name, type=EventType.MESSAGE_SENT, timestamp=T0, session_id="ses-c")
    return Call(name, Op.APPEND, start, end, events=(event,), session_id="ses-c")


def test_contended_writes_count_writes_another_write_began_inside() -> None:
    calls = [
        _write(0, 100, "a"),  # b begins inside it
        _write(50, 60, "b"),  # nothing begins inside it
        _write(200, 300, "c"),  # only a read begins inside it
        Call("r", Op.READ, 210, 220, session_id="ses-c"),
        _write(400, 500, "d"),  # e begins inside it, e ends after it
        _write(450, 600, "e"),
        _write(700, 800, "f"),  # g begins exactly as it ends: not inside
        _write(800, 900, "g"),
    ]
    assert contended_writes(History(calls=calls, final_events={})) == 2


def test_the_switch_interval_is_restored_after_racing_threads() -> None:
    before = sys.getswitchinterval()
    seen = run_threads({f"t{i}": sys.getswitchinterval for i in range(4)})
    assert list(seen.values()) == [pytest.approx(RACE_SWITCH_INTERVAL_S)] * 4
    assert sys.getswitchinterval() == before


# -- the CONC-1 race on the dict stores -----------------------------------------------------------
def _race(store: Any) -> None:
    concurrency.TestConcurrency().test_hundred_threads_append_to_one_session(store, "quick")


def test_the_race_passes_the_dict_store() -> None:
    for _ in range(3):
        _race(DictSessionStore())


def test_the_race_catches_the_dict_store_without_its_lock() -> None:
    """Every time: it goes on until enough appends overlapped, however loaded the machine."""
    for _ in range(5):
        with pytest.raises(AssertionError, match=r"repeats or gaps|not exactly"):
            _race(LocklessDictStore())
