"""Histories of concurrent store calls, and a checker that explains them by a serial order.

A *history* is every call that threads (and processes) made on a store during a workload: the
operation, its input, its result or exception, and when it started and ended
(``time.monotonic_ns()``, which is system-wide, so calls recorded in different processes on one
machine compare). After the workload the kit reads the final state, and :func:`check_history`
looks for anything no correct store could have produced:

* every call succeeded (CONC-1 for writes, CONC-2 for readers, PORT-3 for a raw exception);
* each session's final log is exactly 1..n, holds every event that was appended and nothing else,
  each id once (CONC-1; IDEM-4 for ids appended by racing callers, IDEM-1 for retried or repeated
  ones), and every caller got back exactly the stored event;
* the new events of one call form one consecutive block per session, in input order (BATCH-5;
  FLUSH-5 for a flush); callers racing on one new id all got the same event;
* a read with ``after=cursor`` returns exactly ``cursor+1 .. cursor+m`` (SEQ-5);
* linearizability of each session's log: the numbers give the order of the writes, and every
  read, ``get_latest_sequence``, ``get_run`` and ``get_session`` says which prefix of that order
  it saw. The history is explained by a serial order consistent with real time exactly when no
  call that *finished before another began* has to come after it in that order: an append that
  finished before another started has the lower numbers; a read reflects every write that
  completed before it began and nothing that had not yet begun; readers never go backwards; and
  no read sees the middle of a batch or of a flush (CONC-1, CONC-2, FLUSH-5).

The checker is sound (everything it reports is a real violation) and, for the writes and the
reads whose visible prefix is exact, complete: if it reports nothing, a serial order consistent
with real time exists. It costs O(n log n) in the number of calls, plus the number of events the
reads returned.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import gc
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from pytest_asm_contract._contract.errors import RETRYABLE_CODES, ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, Run, Session

T = TypeVar("T")

INF = float("inf")
RETRYABLE = frozenset(code.value for code in RETRYABLE_CODES)
#: At most this many violations of one kind are listed; the rest are counted.
MAX_LISTED = 5
#: A read's newest events are compared field by field with the stored ones; the rest by id.
EDGE = 8


class Op(enum.StrEnum):
    """The store operations a history records."""

    APPEND = "append_event_with_sequence"
    APPEND_QUIET = "append_event"
    BATCH = "append_events"
    FLUSH = "flush"
    READ = "get_events"
    LATEST = "get_latest_sequence"
    GET_RUN = "get_run"
    GET_SESSION = "get_session"

    @property
    def writes(self) -> bool:
        return self in WRITES


WRITES = frozenset({Op.APPEND, Op.APPEND_QUIET, Op.BATCH, Op.FLUSH})


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptError:
    """An attempt of a retried call that raised after the caller had stopped waiting for it."""

    code: str | None
    text: str


@dataclasses.dataclass(slots=True)
class Call:
    """One store call as a client saw it.

    ``fresh`` holds the ids this call introduces (by the workload's plan); a deliberate repeat of
    a stored id is in ``events`` but not in ``fresh``. Callers racing on one new id all list it
    in ``fresh``. ``also`` holds the results of earlier attempts of a retried call that returned
    after the caller had given up on them (they must agree with ``result``).
    """

    worker: str
    op: Op
    start: int
    end: int
    events: tuple[Event, ...] = ()
    fresh: frozenset[str] = frozenset()
    session_id: str | None = None
    after: int | None = None
    limit: int | None = None
    run_id: str | None = None
    flushed_session: Session | None = None
    flushed_run: Run | None = None
    result: Any = None
    error: str | None = None
    error_code: str | None = None
    attempts: int = 1
    also: tuple[Any, ...] = ()
    label: str = ""
    key: str = ""
    index: int = -1

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def absent(self) -> bool:
        """A ``get_run``/``get_session`` that found nothing: an observation, not a failure."""
        return self.error_code in (ErrorCode.RUN_NOT_FOUND, ErrorCode.SESSION_NOT_FOUND) and (
            self.op in (Op.GET_RUN, Op.GET_SESSION)
        )

    @property
    def failed(self) -> bool:
        return self.error is not None and not self.absent


def describe_error(error: BaseException) -> tuple[str, str | None]:
    """A one-line description of ``error`` and its contract code (None for a raw exception)."""
    if isinstance(error, StoreError):
        return f"StoreError({error.code.value}): {error.message}"[:300], error.code.value
    return f"{type(error).__module__}.{type(error).__name__}: {error}"[:300], None


class Recorder:
    """Records the calls of one thread (no locking: give each thread its own recorder)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.calls: list[Call] = []

    def call(self, op: Op, fn: Callable[[], T], **fields: Any) -> T | None:
        """Run ``fn`` as one ``op`` call and record it; return its result (None if it raised)."""
        start = time.monotonic_ns()
        try:
            result = fn()
        except Exception as error:
            end = time.monotonic_ns()
            text, code = describe_error(error)
            self.calls.append(
                Call(self.worker, op, start, end, error=text, error_code=code, **fields)
            )
            return None
        end = time.monotonic_ns()
        self.calls.append(Call(self.worker, op, start, end, result=result, **fields))
        return result


@dataclasses.dataclass
class History:
    """The calls of one workload and the state the store was left in."""

    calls: list[Call]
    final_events: dict[str, list[Event]]
    final_sessions: dict[str, Session | None] = dataclasses.field(default_factory=dict)
    final_runs: dict[str, Run | None] = dataclasses.field(default_factory=dict)
    initial_sessions: dict[str, Session] = dataclasses.field(default_factory=dict)
    seed: int = 0
    description: str = ""
    final_errors: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.calls.sort(key=lambda c: (c.start, c.end, c.worker))
        for index, call in enumerate(self.calls):
            call.index = index

    @property
    def origin(self) -> int:
        return min((c.start for c in self.calls), default=0)


@dataclasses.dataclass(frozen=True)
class Violation:
    rule: str
    kind: str
    message: str
    calls: tuple[Call, ...] = ()
    #: How many more violations of this kind were found and not listed.
    omitted: int = 0


# -- formatting ---------------------------------------------------------------------------------
def _ids(events: Iterable[Event], limit: int = 4) -> str:
    ids = [e.id for e in events]
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids)} events)" if len(ids) > limit else "")


def _numbers(result: Any) -> str:
    if isinstance(result, Event):
        return f"#{result.sequence_number}"
    if isinstance(result, list) and all(isinstance(e, Event) for e in result):
        numbers = [e.sequence_number for e in result]
        if len(numbers) > 8:
            return f"[{numbers[0]}..{numbers[-1]}] ({len(numbers)} events)"
        return str(numbers)
    if isinstance(result, Run | Session):
        return f"{type(result).__name__}({result.id!r}, metadata={result.metadata})"
    return repr(result)


def format_call(call: Call, origin: int = 0) -> str:
    """One line: who, what, with which input, what came back, and when (ms from the origin)."""
    if call.op in (Op.READ,):
        args = f"{call.session_id!r}, after={call.after}" + (
            f", limit={call.limit}" if call.limit is not None else ""
        )
    elif call.op in (Op.LATEST, Op.GET_SESSION):
        args = repr(call.session_id)
    elif call.op is Op.GET_RUN:
        args = repr(call.run_id)
    elif call.op is Op.FLUSH:
        args = f"session={call.session_id!r}, run={call.run_id!r}, events=[{_ids(call.events)}]"
    else:
        args = _ids(call.events)
    outcome = call.error if call.error is not None else _numbers(call.result)
    if call.attempts > 1:
        outcome += f" (after {call.attempts} attempts)"
    label = f" {call.label}" if call.label else ""
    return (
        f"#{call.index} [{call.worker}{label}] {call.op.value}({args}) -> {outcome}"
        f"   {(call.start - origin) / 1e6:.3f}..{(call.end - origin) / 1e6:.3f} ms"
    )


def format_report(
    history: History, violations: Sequence[Violation], replay: str | None = None
) -> str:
    """The failure text: each violation with its calls, then the seed and how to replay."""
    origin = history.origin
    total = sum(1 + v.omitted for v in violations)
    rules = ", ".join(violated_rules(violations))
    lines = [
        f"{total} violation(s) of {rules} in a history of {len(history.calls)} calls "
        f"({history.description}; seed {history.seed}); times in ms from the first call:"
    ]
    for number, violation in enumerate(violations, 1):
        lines.append(f"{number}. {violation.rule} [{violation.kind}] {violation.message}")
        lines.extend("     " + format_call(call, origin) for call in violation.calls)
        if violation.omitted:
            lines.append(f"     ... and {violation.omitted} more like it")
    lines.append(f"seed: {history.seed}")
    if replay:
        lines.append(f"replay: {replay}")
    return "\n".join(lines)


# -- the checker --------------------------------------------------------------------------------
@dataclasses.dataclass
class _Unit:
    """The calls that created one block of numbers in one session (a race group has several)."""

    calls: tuple[Call, ...]
    session_id: str
    numbers: list[int] = dataclasses.field(default_factory=list)

    @property
    def interval(self) -> tuple[float, float]:
        done = [c for c in self.calls if c.ok]
        if not done:  # a failed call may have taken effect at any time after it started
            return min(c.start for c in self.calls), INF
        return min(c.start for c in self.calls), min(c.end for c in done)

    @property
    def is_flush(self) -> bool:
        return any(c.op is Op.FLUSH for c in self.calls)

    @property
    def flush(self) -> Call | None:
        """The flush that alone created this block, if it is one."""
        if len(self.calls) == 1 and self.calls[0].op is Op.FLUSH:
            return self.calls[0]
        return None

    @property
    def is_race(self) -> bool:
        return len(self.calls) > 1


@dataclasses.dataclass
class _Point:
    """A call placed in one session's log: it saw (or made) a state between ``lo`` and ``hi``.

    States are encoded as 2*t for "the first t numbers are visible" and a write whose block ends
    at t sits at 2*t - 1, just before the state it creates.
    """

    lo: float
    hi: float
    start: float
    end: float
    calls: tuple[Call, ...]
    what: str  # "write", "read", "probe"


class _Checker:
    def __init__(self, history: History) -> None:
        self.history = history
        self.found: dict[str, list[Violation]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, rule: str, kind: str, message: str, *calls: Call) -> None:
        key = f"{rule}:{kind}"
        self.counts[key] += 1
        if len(self.found[key]) < MAX_LISTED:
            self.found[key].append(Violation(rule, kind, message, tuple(calls)))

    def result(self) -> list[Violation]:
        out: list[Violation] = []
        for key, listed in self.found.items():
            extra = self.counts[key] - len(listed)
            out.extend(listed[:-1])
            out.append(dataclasses.replace(listed[-1], omitted=extra))
        return out

    # -- driving ----------------------------------------------------------------------------------
    def run(self) -> list[Violation]:
        h = self.history
        for text in h.final_errors:
            self.add("CONC-2", "final-read-failed", f"reading the final state failed: {text}")
        self.by_id: dict[str, list[Call]] = defaultdict(list)
        self.fresh_in: dict[str, list[Call]] = defaultdict(list)
        by_id, fresh_in = self.by_id, self.fresh_in
        for call in h.calls:
            if call.error is not None and call.failed:
                self._failed(call)
            for event in call.events:
                calls = by_id[event.id]
                if not calls or calls[-1] is not call:
                    calls.append(call)
            for event_id in call.fresh:
                fresh_in[event_id].append(call)
        self.creators = self._creators()
        self.stored: dict[str, Event] = {}
        self._check_final_logs()
        self._check_first_write_wins()
        self._check_results()
        units = self._units()
        self._check_blocks(units)
        self._check_flush_records(units)
        for session_id in h.final_events:
            self._check_session_order(session_id, units.get(session_id, []))
        return self.result()

    def _creators(self) -> dict[str, tuple[Call, ...]]:
        """For each id, the calls that may have stored it first.

        That is the calls introducing it (several when callers race on it), and any call that
        repeats it but began before every one of those had finished: when a client puts off the
        retry of a failed call, its own later calls may store the id first.
        """
        creators: dict[str, tuple[Call, ...]] = {}
        for event_id, calls in self.by_id.items():
            fresh = self.fresh_in.get(event_id)
            if not fresh:
                creators[event_id] = tuple(calls)
                continue
            # Once one caller got the event back it was stored; a call repeating it later
            # cannot have stored it.
            done = min((c.end for c in fresh if c.ok), default=INF)
            early = [c for c in calls if event_id not in c.fresh and c.start < done]
            creators[event_id] = tuple(sorted([*fresh, *early], key=lambda c: c.index))
        return creators

    def _failed(self, call: Call) -> None:
        if call.error_code is None:
            self.add(
                "PORT-3",
                "raw-exception",
                f"a raw exception escaped the store: {call.error} (failures surface only as "
                "StoreError)",
                call,
            )
        elif call.op.writes:
            self.add("CONC-1", "call-failed", f"a concurrent write failed: {call.error}", call)
        else:
            self.add("CONC-2", "read-failed", f"a concurrent read failed: {call.error}", call)

    def _rule_for_id(self, event_id: str) -> str:
        calls = self.by_id.get(event_id, [])
        if len(self.creators.get(event_id, ())) > 1:
            return "IDEM-4"
        if any(c.attempts > 1 or c.also for c in calls):
            return "IDEM-1"
        if len(calls) > 1:
            return "IDEM-1"
        return "CONC-1"

    # -- the final state ------------------------------------------------------------------------
    def _check_final_logs(self) -> None:
        h = self.history
        where: dict[str, list[Event]] = defaultdict(list)
        for session_id, log in h.final_events.items():
            numbers = [e.sequence_number for e in log]
            if numbers != list(range(1, len(log) + 1)):
                self.add(
                    "CONC-1",
                    "final-numbers",
                    f"session {session_id!r} ends with sequence numbers {_summary(numbers)}, "
                    f"not exactly 1..{len(log)}",
                )
            for event in log:
                where[event.id].append(event)
        for event_id, copies in where.items():
            self.stored.setdefault(event_id, copies[0])
            if len(copies) > 1:
                rule = self._rule_for_id(event_id)
                if rule == "IDEM-1" and any(c.op is Op.FLUSH for c in self.by_id[event_id]):
                    rule = "FLUSH-4" if self._retried(event_id) else rule
                self.add(
                    rule,
                    "stored-twice",
                    f"event {event_id!r} is stored {len(copies)} times "
                    f"(as {[(e.session_id, e.sequence_number) for e in copies]}); one id, one "
                    "stored event",
                    *self.by_id.get(event_id, [])[:6],
                )
            if event_id not in self.by_id:
                self.add(
                    "CONC-1",
                    "phantom",
                    f"event {event_id!r} (#{copies[0].sequence_number} of "
                    f"{copies[0].session_id!r}) is stored, but no call appended it",
                )
        for event_id, calls in self.by_id.items():
            if event_id in where:
                continue
            done = [c for c in calls if c.ok]
            if done:
                self.add(
                    "CONC-1",
                    "lost",
                    f"event {event_id!r} was appended successfully but is not stored",
                    *done[:3],
                )

    def _retried(self, event_id: str) -> bool:
        return any(_retried(c) for c in self.by_id.get(event_id, []))

    def _check_first_write_wins(self) -> None:
        """A stored event holds what one of the calls that may have stored it first sent."""
        for event_id, stored in self.stored.items():
            creators = self.creators.get(event_id, ())
            versions = [e for c in creators for e in c.events if e.id == event_id]
            if not versions or any(
                v.data == stored.data and v.type == stored.type and v.run_id == stored.run_id
                for v in versions
            ):
                continue
            later = [c for c in self.by_id.get(event_id, []) if c not in creators]
            self.add(
                "IDEM-1",
                "last-write-wins",
                f"event {event_id!r} is stored with data {stored.data}, which none of the calls "
                "that could have stored it first sent (a later repeat's copy?); the first write "
                "of an id wins",
                *creators[:2],
                *later[:2],
            )

    def _check_results(self) -> None:
        """Every caller got back exactly the stored event; first write wins."""
        for call in self.history.calls:
            if not call.ok or not call.op.writes:
                continue
            returned: list[Any]
            if call.op is Op.APPEND:
                returned = [call.result]
            elif call.op is Op.BATCH:
                returned = list(call.result) if isinstance(call.result, list) else [call.result]
                if len(returned) != len(call.events):
                    self.add(
                        "BATCH-5",
                        "batch-result",
                        f"append_events of {len(call.events)} events returned {len(returned)}",
                        call,
                    )
                    continue
            else:
                returned = []
            for given, got in zip(call.events, returned, strict=False):
                self._check_returned(call, given, got)
            for other in call.also:
                if isinstance(other, AttemptError):
                    if other.code not in RETRYABLE:
                        self.add(
                            "IDEM-4",
                            "attempt-failed",
                            f"an earlier attempt of this call, still running when it was "
                            f"retried, failed with {other.text}: racing appends of one id must "
                            "all get the stored event back",
                            call,
                        )
                    continue
                if other != call.result:
                    self.add(
                        "IDEM-4",
                        "attempts-disagree",
                        f"an earlier attempt of this call, still running when it was retried, "
                        f"returned {_numbers(other)} but the retry returned "
                        f"{_numbers(call.result)}: a retried write must be renumbered never",
                        call,
                    )
        for event_id, racers in self.fresh_in.items():
            if len(racers) < 2:
                continue
            answers = {
                repr(c.result)
                for c in racers
                if c.ok and c.op is Op.APPEND and isinstance(c.result, Event)
            }
            answers |= {
                repr(c.result[0])
                for c in racers
                if c.ok and c.op is Op.BATCH and isinstance(c.result, list) and c.result
            }
            if len(answers) > 1:
                self.add(
                    "IDEM-4",
                    "racers-disagree",
                    f"{len(racers)} callers raced on new id {event_id!r} and were told "
                    f"{len(answers)} different events",
                    *racers[:6],
                )

    def _check_returned(self, call: Call, given: Event, got: Any) -> None:
        stored = self.stored.get(given.id)
        if not isinstance(got, Event) or got.id != given.id:
            self.add(
                "CONC-1",
                "wrong-result",
                f"for {given.id!r} the caller got {got!r:.200}",
                call,
            )
            return
        if stored is None or got == stored:
            return
        rule = self._rule_for_id(given.id)
        if rule == "CONC-1" and given.id not in call.fresh:
            rule = "IDEM-1"
        self.add(
            rule,
            "result-differs",
            f"the caller was told {given.id!r} is #{got.sequence_number} of "
            f"{got.session_id!r}, but the store holds #{stored.sequence_number} of "
            f"{stored.session_id!r}"
            + ("" if got.sequence_number != stored.sequence_number else " with other fields")
            + ("" if given.id in call.fresh else " (a repeat must return the first stored event)"),
            call,
        )

    # -- blocks ---------------------------------------------------------------------------------
    def _units(self) -> dict[str, list[_Unit]]:
        """Group each session's stored numbers by the calls that created them."""
        units: dict[tuple[tuple[int, ...], str], _Unit] = {}
        for session_id, log in self.history.final_events.items():
            for event in log:
                creators = self.creators.get(event.id)
                if not creators or event.sequence_number is None:
                    continue
                if self.stored.get(event.id) is not event:
                    continue  # a second copy: reported already
                key = (tuple(c.index for c in creators), session_id)
                unit = units.get(key)
                if unit is None:
                    unit = units[key] = _Unit(tuple(creators), session_id)
                unit.numbers.append(event.sequence_number)
        grouped: dict[str, list[_Unit]] = defaultdict(list)
        for unit in units.values():
            grouped[unit.session_id].append(unit)
        return grouped

    def _check_blocks(self, units: Mapping[str, list[_Unit]]) -> None:
        for session_id, session_units in units.items():
            numbered = {e.sequence_number: e.id for e in self.history.final_events[session_id]}
            for unit in session_units:
                if unit.is_race:
                    continue
                call = unit.calls[0]
                mine = [
                    e.id
                    for e in _unique(call.events)
                    if e.session_id == session_id
                    and e.id in self.stored
                    and self.stored[e.id].session_id == session_id
                ]
                order = [
                    self.stored[i].sequence_number or 0
                    for i in mine
                    if self.creators.get(i) == unit.calls
                ]
                # Ids another call may have stored first (a repeat racing a put-off retry) may
                # sit inside the block or outside it.
                maybe = {i for i in mine if call in self.creators.get(i, ())}
                if not order:
                    continue
                inside = range(min(order), max(order) + 1)
                foreign = [n for n in inside if n not in order and numbered.get(n) not in maybe]
                if order != sorted(order) or foreign:
                    flush = call.op is Op.FLUSH
                    self.add(
                        "FLUSH-5" if flush else "BATCH-5",
                        "block-interleaved",
                        f"the {len(order)} new events this {'flush' if flush else 'batch'} "
                        f"stored in {session_id!r} got numbers {_summary(order)}: not "
                        "one consecutive block in input order, so other writers got in between",
                        call,
                    )

    def _check_flush_records(self, units: Mapping[str, list[_Unit]]) -> None:
        """A flush's run is stored as given; the session record is the last flush's."""
        h = self.history
        for call in h.calls:
            if call.op is not Op.FLUSH or not call.ok or call.flushed_run is None:
                continue
            if call.run_id in h.final_runs and h.final_runs[call.run_id] != call.flushed_run:
                self.add(
                    "FLUSH-5",
                    "run-lost",
                    f"after the workload, run {call.run_id!r} is "
                    f"{_numbers(h.final_runs[call.run_id])}, not the flushed run",
                    call,
                )
        flush_calls = [c for c in h.calls if c.op is Op.FLUSH]
        for session_id, session_units in units.items():
            flushes = [u for u in session_units if u.flush is not None and u.numbers]
            if not flushes or session_id not in h.final_sessions:
                continue
            last = max(flushes, key=lambda u: max(u.numbers))
            expected = last.calls[0].flushed_session
            final = h.final_sessions[session_id]
            writer = next(
                (
                    c
                    for c in reversed(flush_calls)
                    if c.session_id == session_id and c.flushed_session == final
                ),
                None,
            )
            if (
                writer is not None
                and _retried(writer)
                and (writer.also or writer.end > last.calls[0].start)
            ):
                continue  # an attempt of that retried flush saved its session after the last one
            if expected is not None and final != expected:
                self.add(
                    "FLUSH-5",
                    "session-record",
                    f"the last flush in {session_id!r}'s log (numbers {_summary(last.numbers)})"
                    f" saved session version {_numbers(expected)}, but the store ended with "
                    f"{_numbers(final)}: a flush's session and events are one atomic step",
                    *([last.calls[0]] + ([writer] if writer else [])),
                )

    # -- linearizability of one session's log ---------------------------------------------------
    def _check_session_order(self, session_id: str, units: list[_Unit]) -> None:
        h = self.history
        log = h.final_events[session_id]
        top = len(log)
        owner: dict[int, _Unit] = {}
        points: list[_Point] = []
        for unit in units:
            for number in unit.numbers:
                owner[number] = unit
            start, end = unit.interval
            position = 2 * max(unit.numbers) - 1
            points.append(_Point(position, position, start, end, unit.calls, "write"))
        flush_units = sorted(
            (u for u in units if u.flush is not None and u.numbers), key=lambda u: min(u.numbers)
        )
        by_run = {
            c.run_id: u for u in flush_units for c in u.calls if c.op is Op.FLUSH and c.run_id
        }
        for call in h.calls:
            if call.failed or call.op.writes:
                continue
            point = self._observation(call, session_id, top, owner, by_run, flush_units)
            if point is not None:
                points.append(point)
        self._real_time(points, session_id)

    def _observation(
        self,
        call: Call,
        session_id: str,
        top: int,
        owner: Mapping[int, _Unit],
        by_run: Mapping[str, _Unit],
        flushes: Sequence[_Unit],
    ) -> _Point | None:
        log = self.history.final_events[session_id]
        if call.op is Op.READ and call.session_id == session_id:
            return self._read(call, log, owner)
        if call.op is Op.LATEST and call.session_id == session_id:
            value = call.result
            if not isinstance(value, int) or not 0 <= value <= top:
                self.add(
                    "CONC-2",
                    "latest-impossible",
                    f"get_latest_sequence said {value!r}; the log only ever reached {top}",
                    call,
                )
                return None
            self._partial(call, value, owner)
            return _Point(2 * value, 2 * value, call.start, call.end, (call,), "read")
        if call.op is Op.GET_RUN and call.run_id in by_run:
            unit = by_run[call.run_id or ""]
            flush = next(c for c in unit.calls if c.op is Op.FLUSH)
            if call.absent:
                return _Point(
                    -INF, 2 * (min(unit.numbers) - 1), call.start, call.end, (call,), "probe"
                )
            if call.result != flush.flushed_run:
                self.add(
                    "FLUSH-5",
                    "run-differs",
                    f"get_run({call.run_id!r}) returned {_numbers(call.result)}, not the "
                    "flushed run",
                    call,
                    flush,
                )
                return None
            return _Point(2 * max(unit.numbers), INF, call.start, call.end, (call,), "probe")
        if call.op is Op.GET_SESSION and call.session_id == session_id:
            return self._session_probe(call, session_id, flushes)
        return None

    def _read(self, call: Call, log: Sequence[Event], owner: Mapping[int, _Unit]) -> _Point | None:
        cursor = call.after or 0
        result = call.result if isinstance(call.result, list) else []
        numbers = [e.sequence_number for e in result]
        expected = list(range(cursor + 1, cursor + 1 + len(result)))
        if numbers != expected:
            missing = sorted(set(expected) - set(numbers))[:2]
            writers = [
                c
                for n in missing
                if n <= len(log)
                for c in self.creators.get(log[n - 1].id, ())[:1]
            ]
            self.add(
                "SEQ-5",
                "read-hole",
                f"get_events(after={call.after}) returned numbers {_summary(numbers)}; a tailing "
                f"reader must get exactly {cursor + 1}..{cursor + len(result)} (no holes, no "
                "repeats, in order), or it skips events for good"
                + (f"; the writes of the missing {missing} follow" if writers else ""),
                call,
                *writers,
            )
            return None
        edge = len(result) - EDGE
        for position, event in enumerate(result):
            number = event.sequence_number or 0
            # Ids everywhere; whole events at the newest end, where a write still in progress
            # would show (comparing every event of every whole-log read costs O(n^2)).
            if (
                number > len(log)
                or log[number - 1].id != event.id
                or (position >= edge and log[number - 1] != event)
            ):
                stored = log[number - 1] if number <= len(log) else None
                self.add(
                    "CONC-2",
                    "read-phantom",
                    f"a reader saw {event.id!r} as #{number}, but the final log holds "
                    f"{stored.id if stored else 'nothing'!r} there",
                    call,
                )
                return None
        seen = cursor + len(result)
        limited = call.limit is not None and len(result) >= call.limit
        lo = 2 * seen if result or cursor == 0 else -INF
        hi = INF if limited else 2 * seen
        if not limited and (result or cursor == 0):
            self._partial(call, seen, owner)
        return _Point(lo, hi, call.start, call.end, (call,), "read")

    def _partial(self, call: Call, seen: int, owner: Mapping[int, _Unit]) -> None:
        """A reader saw ``seen`` numbers: that must be a boundary between blocks."""
        unit = owner.get(seen + 1)
        if unit is None or min(unit.numbers) > seen:
            return
        flush = unit.is_flush
        self.add(
            "FLUSH-5" if flush else "CONC-2",
            "partial-write",
            f"a reader saw the log up to #{seen}, inside the block "
            f"{min(unit.numbers)}..{max(unit.numbers)} one {'flush' if flush else 'batch'} "
            "stored: part of an atomic write was visible",
            call,
            *unit.calls[:3],
        )

    def _session_probe(
        self, call: Call, session_id: str, flushes: Sequence[_Unit]
    ) -> _Point | None:
        got = call.result
        if call.absent:
            self.add("CONC-2", "session-vanished", f"{session_id!r} was not found", call)
            return None
        lo, hi = -INF, INF
        initial = self.history.initial_sessions.get(session_id)
        if got == initial:
            if flushes:
                hi = 2 * (min(flushes[0].numbers) - 1)
            return _Point(lo, hi, call.start, call.end, (call,), "probe")
        for index, unit in enumerate(flushes):
            flush = next(c for c in unit.calls if c.op is Op.FLUSH)
            if flush.flushed_session == got:
                lo = 2 * max(unit.numbers)
                if index + 1 < len(flushes) and not _retried(flush):
                    hi = 2 * (min(flushes[index + 1].numbers) - 1)
                return _Point(lo, hi, call.start, call.end, (call,), "probe")
        if any(c.op is Op.FLUSH and c.flushed_session == got for c in self.history.calls):
            return None  # a flush whose events other calls may have stored: no fixed place
        self.add(
            "CONC-2",
            "session-unknown",
            f"get_session({session_id!r}) returned a version no call saved: {_numbers(got)}",
            call,
        )
        return None

    def _real_time(self, points: list[_Point], session_id: str) -> None:
        """No call that finished before another began may need to come after it in the log."""
        ordered = sorted(points, key=lambda p: p.end)
        ends = [p.end for p in ordered]
        best: list[_Point] = []
        for point in ordered:
            best.append(point if not best or point.lo > best[-1].lo else best[-1])
        for later in points:
            count = bisect.bisect_left(ends, later.start)
            if count == 0:
                continue
            earlier = best[count - 1]
            if earlier.lo > later.hi:
                self._order_violation(earlier, later, session_id)

    def _order_violation(self, earlier: _Point, later: _Point, session_id: str) -> None:
        calls = earlier.calls[:3] + later.calls[:3]
        where = f"in {session_id!r}"
        if earlier.what == "write" and later.what == "write":
            self.add(
                "CONC-1",
                "numbered-against-time",
                f"{where}: a write finished (its block ends at #{(earlier.lo + 1) // 2:.0f}) "
                f"before another began, yet the later write got the lower numbers (its block "
                f"ends at #{(later.hi + 1) // 2:.0f}); no serial order explains that",
                *calls,
            )
        elif earlier.what == "write":
            self.add(
                "FLUSH-5" if later.what == "probe" else "CONC-2",
                "stale-read",
                f"{where}: a write had completed (up to #{(earlier.lo + 1) // 2:.0f}) before "
                f"this read began, but the read saw at most #{later.hi / 2:.0f}",
                *calls,
            )
        elif later.what == "write":
            self.add(
                "FLUSH-5" if earlier.what == "probe" else "CONC-2",
                "read-from-future",
                f"{where}: a read saw the log up to #{earlier.lo / 2:.0f} and finished before "
                f"the write of #{(later.hi + 1) // 2:.0f} had even begun",
                *calls,
            )
        else:
            self.add(
                "FLUSH-5" if "probe" in (earlier.what, later.what) else "CONC-2",
                "went-backwards",
                f"{where}: one read saw at least #{earlier.lo / 2:.0f} and finished before "
                f"another began that saw at most #{later.hi / 2:.0f}: the log went backwards",
                *calls,
            )


def _retried(call: Call) -> bool:
    """A retried call may have taken effect more than once (a flush re-saves its records)."""
    return call.attempts > 1 or bool(call.also)


def _unique(events: Iterable[Event]) -> Iterator[Event]:
    seen: set[str] = set()
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            yield event


def _summary(numbers: Sequence[int | None]) -> str:
    if len(numbers) <= 12:
        return str(list(numbers))
    return f"[{', '.join(map(str, numbers[:6]))}, ..., {', '.join(map(str, numbers[-3:]))}]"


def check_history(history: History) -> list[Violation]:
    """Every contract violation the history shows (empty when a serial order explains it)."""
    # The checker allocates many small objects and frees them all at the end: the cyclic
    # garbage collector would only rescan the history's events over and over (half the time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _Checker(history).run()
    finally:
        if enabled:
            gc.enable()


def violated_rules(violations: Iterable[Violation]) -> list[str]:
    return sorted({v.rule for v in violations})


def merge(recorders: Iterable[Recorder | Sequence[Call]]) -> list[Call]:
    """The calls of several recorders (or lists of calls from other processes) in one list."""
    return list(
        itertools.chain.from_iterable(r.calls if isinstance(r, Recorder) else r for r in recorders)
    )


__all__ = [
    "AttemptError",
    "Call",
    "History",
    "Op",
    "Recorder",
    "Violation",
    "check_history",
    "format_call",
    "format_report",
    "merge",
    "violated_rules",
]
