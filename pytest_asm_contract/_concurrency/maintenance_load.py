"""MNT-7 under load: maintenance running while clients append and read, recorded and judged.

The workload is built so that what maintenance may remove does not depend on timing. One
session is preloaded with events of removable types (listed and not); while the check runs,
writers append only run_started and run_completed events, which no prune may remove. Whatever
the interleaving, the prunes (each with a lower limit) can then only remove a prefix of one
fixed order: the listed types by sequence, then the others by sequence. So:

* every read sees, of the preloaded events, exactly that order minus a prefix whose length is
  the total of some number of whole prunes (a prune seen in part shows another length);
* every appended event, and every preloaded event left, keeps its number; numbers are never
  given twice and ``get_latest_sequence`` ends at preload + appended (pruning lowers nothing);
* tailing readers (``after=cursor``) collect every appended event, in order, none twice;
* sessions soft-deleted long ago are hard-deleted meanwhile: a reader sees all of their events
  or none.

Every call is recorded (``recording.Recorder``) with its result; the judging reads only the
records and the final state.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_asm_contract._concurrency.recording import Call, Op, Recorder
from pytest_asm_contract._concurrency.threads import Countdown, run_threads
from pytest_asm_contract._contract.maintenance import RetentionPolicy
from pytest_asm_contract._contract.model import Event, EventType, Session, SessionStatus

NOW = datetime(2031, 6, 1, tzinfo=UTC)
LISTED = EventType.MESSAGE_STREAMED
OTHERS = (EventType.MESSAGE_SENT, EventType.TOOL_CALL_COMPLETED)
KEPT = (EventType.RUN_STARTED, EventType.RUN_COMPLETED)


@dataclasses.dataclass(frozen=True)
class LoadShape:
    preload: int = 600
    writers: int = 3
    appends_per_writer: int = 10
    prunes: int = 8
    prune_step: int = 40
    readers: int = 3
    tailers: int = 1
    doomed_sessions: int = 3
    doomed_events: int = 20


@dataclasses.dataclass
class LoadHistory:
    """What one run of the workload recorded."""

    seed: int
    session_id: str
    preload: list[Event]
    calls: list[Call]
    doomed: dict[str, list[Event]]
    final_events: list[Event]
    final_latest: int
    final_doomed: dict[str, list[Event]]


@dataclasses.dataclass(frozen=True)
class Finding:
    rule: str
    text: str


def run_load(store: Any, maintenance: Any, shape: LoadShape, seed: int, tag: str) -> LoadHistory:
    rng = random.Random(seed)
    target = Session(id=f"{tag}-pruned", agent_id="agent-1", status=SessionStatus.ACTIVE)
    store.save_session(target)
    types = [rng.choice((LISTED, *OTHERS, KEPT[0])) for _ in range(shape.preload)]
    preload = _append_all(store, [_event(target.id, f"{tag}-p{i}", t) for i, t in enumerate(types)])
    doomed = {}
    for index in range(shape.doomed_sessions):
        session = Session(
            id=f"{tag}-doomed{index}",
            agent_id="agent-1",
            status=SessionStatus.COMPLETED,
            deleted_at=NOW - timedelta(days=100),
        )
        store.save_session(session)
        events = [
            _event(session.id, f"{tag}-d{index}-{i}", LISTED) for i in range(shape.doomed_events)
        ]
        doomed[session.id] = _append_all(store, events)

    finished = Countdown(shape.writers + 2)
    recorders: dict[str, Recorder] = {}

    def recorder(name: str) -> Recorder:
        recorders[name] = Recorder(name)
        return recorders[name]

    def writer(index: int) -> Callable[[], None]:
        rec, plan = recorder(f"writer{index}"), random.Random(rng.random())

        def work() -> None:
            for step in range(shape.appends_per_writer):
                kind = KEPT[step % 2]
                base = f"{tag}-w{index}-{step}"
                if plan.random() < 0.5:
                    one = _event(target.id, base, kind)
                    rec.call(Op.APPEND, lambda e=one: store.append_event_with_sequence(e))  # type: ignore[misc]
                else:
                    batch = [_event(target.id, f"{base}-{i}", kind) for i in range(2)]
                    rec.call(Op.BATCH, lambda b=batch: store.append_events(b))  # type: ignore[misc]
            finished.done()

        return work

    def pruner() -> None:
        rec = recorder("pruner")
        for step in range(1, shape.prunes + 1):
            policy = RetentionPolicy(
                max_events_per_session=max(1, shape.preload - step * shape.prune_step),
                prune_event_types_first=[LISTED],
            )
            rec.call(Op.PRUNE, lambda p=policy: maintenance.prune_session_events(target.id, p))  # type: ignore[misc]
        finished.done()

    def deleter() -> None:
        policy = RetentionPolicy(max_completed_session_age_days=None, hard_delete_after_days=30)
        recorder("deleter").call(
            Op.HARD_DELETE, lambda: maintenance.hard_delete_expired_sessions(policy, now=NOW)
        )
        finished.done()

    def reader(index: int) -> Callable[[], None]:
        rec = recorder(f"reader{index}")
        order = list(doomed)

        def work() -> None:
            turn = index
            while not finished.finished.is_set():
                rec.call(Op.READ, lambda: store.get_events(target.id), session_id=target.id)
                if order:
                    sid = order[turn % len(order)]
                    rec.call(Op.READ, lambda s=sid: store.get_events(s), session_id=sid)  # type: ignore[misc]
                turn += 1

        return work

    def tailer(index: int) -> Callable[[], None]:
        rec = recorder(f"tailer{index}")

        def work() -> None:
            cursor = len(preload)
            while True:
                last_round = finished.finished.is_set()
                found = rec.call(
                    Op.READ,
                    lambda c=cursor: store.get_events(target.id, after=c),  # type: ignore[misc]
                    session_id=target.id,
                    after=cursor,
                )
                for event in found or ():
                    cursor = max(cursor, event.sequence_number or 0)
                if last_round:
                    return

        return work

    work: dict[str, Callable[[], None]] = {"pruner": pruner, "deleter": deleter}
    work.update({f"writer{i}": writer(i) for i in range(shape.writers)})
    work.update({f"reader{i}": reader(i) for i in range(shape.readers)})
    work.update({f"tailer{i}": tailer(i) for i in range(shape.tailers)})
    run_threads(work)
    calls = [call for rec in recorders.values() for call in rec.calls]
    calls.sort(key=lambda c: (c.start, c.end, c.worker))
    return LoadHistory(
        seed=seed,
        session_id=target.id,
        preload=preload,
        calls=calls,
        doomed=doomed,
        final_events=store.get_events(target.id),
        final_latest=store.get_latest_sequence(target.id),
        final_doomed={sid: store.get_events(sid) for sid in doomed},
    )


def _event(session_id: str, event_id: str, kind: EventType) -> Event:
    return Event(id=event_id, session_id=session_id, type=kind, data={"n": event_id})


def _append_all(store: Any, events: list[Event]) -> list[Event]:
    stored: list[Event] = []
    for start in range(0, len(events), 50):
        stored += store.append_events(events[start : start + 50])
    return stored


# -- judging ------------------------------------------------------------------------------------
def removal_order(preload: list[Event]) -> list[str]:
    """The order every prune of the workload removes preloaded events in (MNT-3)."""
    removable = [e for e in preload if e.type not in KEPT]
    listed = [e.id for e in removable if e.type == LISTED]
    return listed + [e.id for e in removable if e.type != LISTED]


def check_load(history: LoadHistory) -> list[Finding]:
    """Every way the recorded run breaks MNT-7 (or MNT-2), first the root causes."""
    findings: list[Finding] = []
    failed = [c for c in history.calls if c.failed]
    for call in failed[:3]:
        findings.append(Finding("MNT-7", f"{call.worker}: {call.op.value} raised {call.error}"))
    numbers = {e.id: e.sequence_number or 0 for e in history.preload}
    appended: dict[str, int] = {}
    for call in history.calls:
        if call.ok and call.op in (Op.APPEND, Op.BATCH):
            results = call.result if isinstance(call.result, list) else [call.result]
            appended.update((e.id, e.sequence_number or 0) for e in results)
    findings += _numbers_given_once(history, appended)
    numbers.update(appended)
    prunes = [c for c in history.calls if c.op is Op.PRUNE and c.ok]
    totals = _cumulative([int(c.result) for c in prunes])
    order = removal_order(history.preload)
    for call in history.calls:
        full_read = call.op is Op.READ and call.after is None
        if full_read and call.ok and call.session_id == history.session_id:
            problem = _read_problem(call.result, numbers, appended, order, totals)
            if problem:
                findings.append(Finding("MNT-7", f"{call.worker} read the session: {problem}"))
                break
    final = _read_problem(history.final_events, numbers, appended, order, totals[-1:])
    if final and not findings:
        findings.append(Finding("MNT-7", f"after the run, get_events: {final}"))
    expected_latest = len(history.preload) + len(appended)
    if history.final_latest != expected_latest:
        findings.append(
            Finding(
                "MNT-7",
                f"get_latest_sequence is {history.final_latest} after {len(history.preload)} "
                f"preloaded and {len(appended)} appended events: pruning must not change the "
                "counter",
            )
        )
    findings += _tails(history, appended)
    findings += _doomed(history)
    return findings


def _cumulative(counts: list[int]) -> list[int]:
    totals, running = [0], 0
    for count in counts:
        running += count
        totals.append(running)
    return totals


def _numbers_given_once(history: LoadHistory, appended: dict[str, int]) -> list[Finding]:
    owner: dict[int, str] = {}
    for event in history.preload:
        owner[event.sequence_number or 0] = event.id
    for event_id, number in sorted(appended.items(), key=lambda item: item[1]):
        if number in owner:
            return [
                Finding(
                    "MNT-7",
                    f"sequence number {number} was given to {owner[number]!r} and again to "
                    f"{event_id!r}: a prune let a number be reused",
                )
            ]
        owner[number] = event_id
    return []


def _read_problem(
    events: list[Event],
    numbers: dict[str, int],
    appended: dict[str, int],
    order: list[str],
    totals: list[int],
) -> str | None:
    """What is wrong with one full read of the pruned session, or None."""
    for event in events:
        known = numbers.get(event.id)
        if known is not None and event.sequence_number != known:
            return (
                f"event {event.id!r} has number {event.sequence_number}, but was stored as "
                f"{known}: events left by a prune keep their numbers"
            )
    present = {e.id for e in events}
    top = max((e.sequence_number or 0 for e in events), default=0)
    lost = [i for i, n in numbers.items() if i not in present and (i not in appended or n < top)]
    removable = set(order)
    unselected = [i for i in lost if i not in removable]
    if unselected:
        return (
            f"{unselected[0]!r} (number {numbers[unselected[0]]}) is missing: no prune may "
            "remove it (run_started and run_completed are never pruned)"
        )
    gone = [i for i in order if i not in present]
    if gone != order[: len(gone)]:
        early = next(i for i in gone if i not in order[: len(gone)])
        return (
            f"{early!r} was pruned before {order[len(gone) - 1]!r}: the listed types go first, "
            "lowest sequence first, then the others by sequence"
        )
    if len(gone) not in totals:
        return (
            f"{len(gone)} preloaded events are missing, but the prunes had removed "
            f"{', '.join(map(str, totals))} in total after each: a prune was seen in part"
        )
    return None


def _tails(history: LoadHistory, appended: dict[str, int]) -> list[Finding]:
    """Each tailer collected every appended event up to its last cursor, in order, once."""
    by_worker: dict[str, list[Event]] = {}
    for call in history.calls:
        if call.op is Op.READ and call.ok and call.after is not None:
            by_worker.setdefault(call.worker, []).extend(call.result)
    for worker, seen in sorted(by_worker.items()):
        numbers = [e.sequence_number or 0 for e in seen]
        if numbers != sorted(set(numbers)):
            return [
                Finding(
                    "MNT-7",
                    f"{worker} (after=cursor) saw numbers {numbers[:12]}...: "
                    "out of order or twice while maintenance ran",
                )
            ]
        top = max(numbers, default=0)
        missed = sorted(n for n in appended.values() if n <= top and n not in numbers)
        if missed:
            return [
                Finding(
                    "MNT-7",
                    f"{worker} tailing with after=cursor never saw appended events "
                    f"{missed[:5]} below its cursor {top} while maintenance ran",
                )
            ]
    return []


def _doomed(history: LoadHistory) -> list[Finding]:
    """Hard-deleted sessions were read whole or not at all, and are gone at the end."""
    findings: list[Finding] = []
    for call in history.calls:
        stored = history.doomed.get(call.session_id or "")
        seen = call.result if call.op is Op.READ and call.ok and stored is not None else None
        if seen and stored is not None and len(seen) != len(stored):
            findings.append(
                Finding(
                    "MNT-7",
                    f"{call.worker} read {len(seen)} of the {len(stored)} events of "
                    f"{call.session_id!r} while it was hard-deleted: a delete seen in part",
                )
            )
            break
    deletes = [c for c in history.calls if c.op is Op.HARD_DELETE and c.ok]
    left = sorted(sid for sid, events in history.final_doomed.items() if events)
    if left or (deletes and deletes[0].result != len(history.doomed)):
        findings.append(
            Finding(
                "MNT-2",
                f"hard_delete_expired_sessions returned "
                f"{deletes[0].result if deletes else None} for {len(history.doomed)} due "
                f"sessions; still holding events: {left}",
            )
        )
    return findings


__all__ = ["NOW", "Finding", "LoadHistory", "LoadShape", "check_load", "removal_order", "run_load"]
