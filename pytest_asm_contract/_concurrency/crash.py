"""Crash consistency for ``shared_backend`` stores: a writer process killed mid-commit.

A writer process opens the store from its ``asm_reopen_spec()`` and commits a seeded list of
flushes, batches and single appends, one after another, telling this process through a pipe when
each commit begins and when it has returned. This process waits until the writer has *begun*
a chosen commit, waits a further seeded fraction of the time commits of that kind have taken so
far, and kills the writer with SIGKILL: the pipe is the synchronisation, the extra delay is fault
timing (it decides where inside the commit the kill lands), not a guess about when something
will have happened.

Then a fresh store instance, opened from the same spec, must show:

* every commit whole or absent: every acknowledged commit whole, the one in flight whole or
  absent, nothing of the commits that never began (FLUSH-3 for a flush, with its run and its
  session record; BATCH-3 for a batch);
* each session's numbers exactly 1..n, the events from before the crash unchanged,
  get_latest_sequence equal to n (SEQ-1);
* and it accepts new writes: retrying the commit that was in flight stores nothing twice and
  returns the events as stored (IDEM-1), and further appends continue at n+1 (SEQ-1).

The next round starts another writer on the same sessions. Which commit is the target and how
far into it the kill lands are fixed by the seed; where exactly the writer is at that moment
also depends on the scheduler, so a replay with the same seed repeats the scenario, not the
instruction the writer was killed at.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import multiprocessing
import random
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from pytest_asm_contract._concurrency.history import describe_error
from pytest_asm_contract._concurrency.workloads import T0, Spec, close_quietly, open_from_spec
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
)

#: Hang guards only: a healthy writer answers within milliseconds.
READY_GUARD_S = 120.0
COMMIT_GUARD_S = 120.0
KINDS = ("flush", "batch", "append")
#: How many writer processes are started ahead of their round.
PREFETCH = 3


@dataclasses.dataclass(frozen=True)
class Commit:
    index: int
    kind: str
    events: tuple[Event, ...]
    result: ExecutionResult | None = None

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.events]

    @property
    def sessions(self) -> list[str]:
        return sorted({e.session_id for e in self.events})


@dataclasses.dataclass(frozen=True)
class Problem:
    rule: str
    message: str


@dataclasses.dataclass
class RoundReport:
    number: int
    target: int
    target_kind: str
    delay_ms: float
    acknowledged: int
    in_flight: int | None
    in_flight_stored: bool | None
    problems: list[Problem]

    def summary(self) -> str:
        flight = (
            "nothing in flight"
            if self.in_flight is None
            else f"commit {self.in_flight} in flight, "
            + ("stored whole" if self.in_flight_stored else "absent")
        )
        return (
            f"round {self.number}: killed {self.delay_ms:.2f} ms after commit {self.target} "
            f"({self.target_kind}) began; {self.acknowledged} commits acknowledged, {flight}"
        )


def session_version(session_id: str, version: str) -> Session:
    return Session(
        id=session_id,
        agent_id="agent-crash",
        metadata={"version": version},
        created_at=T0,
        updated_at=T0,
    )


def plan_round(
    seed: int, tag: str, number: int, sessions: Sequence[str], count: int
) -> list[Commit]:
    """The commits of one writer: flushes, batches (some over two sessions) and appends."""
    rng = random.Random(f"{seed}:{tag}:round:{number}")
    commits: list[Commit] = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)] if index < len(KINDS) else rng.choice(KINDS)
        prefix = f"{tag}-r{number}-c{index}"
        session_id = rng.choice(sessions)
        event = functools.partial(_commit_event, prefix, number, index)
        if kind == "flush":
            run = Run(
                id=f"{prefix}-run",
                session_id=session_id,
                status=RunStatus.COMPLETED,
                started_at=T0,
                turn_count=index,
            )
            events = tuple(event(i, session_id, run.id) for i in range(rng.randint(1, 6)))
            result = ExecutionResult(
                session=session_version(session_id, prefix), run=run, events=list(events)
            )
            commits.append(Commit(index, kind, events, result))
        elif kind == "batch":
            other = rng.choice(sessions)
            size = rng.randint(2, 8)
            events = tuple(event(i, session_id if i % 3 else other) for i in range(size))
            commits.append(Commit(index, kind, events))
        else:
            commits.append(Commit(index, kind, (event(0, session_id),)))
    return commits


def _commit_event(
    prefix: str, number: int, index: int, i: int, session_id: str, run_id: str | None = None
) -> Event:
    return Event(
        id=f"{prefix}-e{i}",
        type=EventType.MESSAGE_SENT,
        timestamp=T0 + timedelta(seconds=number, microseconds=index * 100 + i),
        session_id=session_id,
        run_id=run_id,
        data={"round": number, "commit": index, "i": i},
    )


def perform_commit(store: Any, commit: Commit) -> Any:
    if commit.kind == "flush":
        assert commit.result is not None
        store.flush(commit.result)
        return None
    if commit.kind == "batch":
        return store.append_events(list(commit.events))
    return store.append_event_with_sequence(commit.events[0])


def _writer_main(spec: Spec, commits: list[Commit], conn: Any) -> None:
    """The writer process: open the store, wait for "go", then commit and report each step."""
    try:
        store = open_from_spec(spec)
    except BaseException as error:
        conn.send(("error", -1, f"opening the store failed: {describe_error(error)[0]}"))
        return
    conn.send(("ready", -1, 0))
    if conn.recv() != "go":
        close_quietly(store)
        return
    for commit in commits:
        conn.send(("begin", commit.index, time.monotonic_ns()))
        try:
            perform_commit(store, commit)
        except BaseException as error:
            conn.send(
                ("error", commit.index, f"{describe_error(error)[0]}\n{traceback.format_exc()}")
            )
            close_quietly(store)
            return
        conn.send(("done", commit.index, time.monotonic_ns()))
    conn.send(("finished", -1, 0))
    close_quietly(store)


class _Writer:
    """One writer process, started early so that its start-up overlaps the previous round."""

    def __init__(self, spec: Spec, commits: list[Commit], number: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.commits = commits
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_writer_main, args=(spec, commits, child), name=f"asm-crash-writer-{number}"
        )
        self.process.start()
        child.close()
        self.begun: dict[int, int] = {}
        self.done: dict[int, int] = {}
        self.error: str | None = None
        self.finished = False

    def _receive(self, guard: float) -> tuple[str, int, Any] | None:
        if not self.conn.poll(guard):
            return None
        try:
            message: tuple[str, int, Any] = self.conn.recv()
        except (EOFError, OSError):
            return None
        kind, index, payload = message
        if kind == "begin":
            self.begun[index] = payload
        elif kind == "done":
            self.done[index] = payload
        elif kind == "error":
            self.error = str(payload)
        elif kind == "finished":
            self.finished = True
        return message

    def wait_ready(self) -> None:
        message = self._receive(READY_GUARD_S)
        if message is None or message[0] != "ready":
            raise CrashSetupError(
                f"the writer process did not start: {self.error or message or 'no answer'}"
            )

    def go(self) -> None:
        self.conn.send("go")

    def wait_for_begin(self, index: int) -> None:
        while index not in self.begun:
            if self.error is not None or self.finished:
                raise CrashSetupError(
                    f"the writer stopped before commit {index} began: {self.error or 'finished'}"
                )
            if self._receive(COMMIT_GUARD_S) is None:
                raise CrashSetupError(f"the writer did not reach commit {index} (hung or died)")

    def durations_ms(self, kind: str) -> list[float]:
        return [
            (self.done[i] - self.begun[i]) / 1e6
            for i in self.done
            if i in self.begun and self.commits[i].kind == kind
        ]

    def kill(self) -> None:
        self.process.kill()
        self.process.join(COMMIT_GUARD_S)
        while self._receive(0) is not None:  # what it said before it died
            pass
        self.conn.close()

    def stop(self) -> None:
        """Dispose of a writer that was never used."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(COMMIT_GUARD_S)
        self.conn.close()


class CrashSetupError(RuntimeError):
    """The crash scenario could not be set up (the writer failed on its own or hung)."""


class CrashRounds:
    """Kill writers of one backend round after round; check what a fresh instance sees."""

    def __init__(
        self,
        store: Any,
        spec: Spec,
        seed: int,
        tag: str = "crash",
        sessions: int = 2,
        commits: int = 40,
    ) -> None:
        self.store = store
        self.spec = spec
        self.seed = seed
        self.tag = tag
        self.commits = commits
        self.rng = random.Random(f"{seed}:{tag}:kills")
        self.session_ids = [f"ses-{tag}-{i}" for i in range(sessions)]
        self.logs: dict[str, list[Event]] = {s: [] for s in self.session_ids}
        self.versions: dict[str, Session] = {
            s: session_version(s, "initial") for s in self.session_ids
        }
        self.reports: list[RoundReport] = []

    def run(self, rounds: int, on_round: Callable[[RoundReport], None] | None = None) -> None:
        for session in self.versions.values():
            self.store.save_session(session)
        # Writers start PREFETCH rounds ahead, so their start-up overlaps the rounds before.
        upcoming = collections.deque(
            _Writer(self.spec, self._plan(n), n) for n in range(min(PREFETCH, rounds))
        )
        try:
            for number in range(rounds):
                writer = upcoming.popleft()
                if number + PREFETCH < rounds:
                    upcoming.append(
                        _Writer(self.spec, self._plan(number + PREFETCH), number + PREFETCH)
                    )
                report = self._round(number, writer)
                self.reports.append(report)
                if on_round is not None:
                    on_round(report)
                if report.problems:
                    break
        finally:
            for writer in upcoming:
                writer.stop()

    def _plan(self, number: int) -> list[Commit]:
        return plan_round(self.seed, self.tag, number, self.session_ids, self.commits)

    def _round(self, number: int, writer: _Writer) -> RoundReport:
        commits = writer.commits
        wanted = "flush" if number % 2 == 0 else self.rng.choice(("batch", "append"))
        candidates = [c.index for c in commits[2 : self.commits - 2] if c.kind == wanted]
        target = self.rng.choice(candidates or list(range(2, self.commits - 2)))
        fraction = self.rng.random()
        writer.wait_ready()
        writer.go()
        try:
            writer.wait_for_begin(target)
            seen_at = time.monotonic()
            durations = writer.durations_ms(commits[target].kind) or [
                d for kind in KINDS for d in writer.durations_ms(kind)
            ]
            delay_ms = fraction * 1.2 * (statistics.median(durations) if durations else 1.0)
            # Fault timing, not synchronisation: where inside the commit the kill lands.
            remaining = delay_ms / 1000 - (time.monotonic() - seen_at)
            if remaining > 0:
                time.sleep(remaining)
        finally:
            writer.kill()
        if writer.error is not None:
            raise CrashSetupError(f"the writer failed on its own: {writer.error}")
        in_flight = next((i for i in sorted(writer.begun) if i not in writer.done), None)
        report = RoundReport(
            number=number,
            target=target,
            target_kind=commits[target].kind,
            delay_ms=delay_ms,
            acknowledged=len(writer.done),
            in_flight=in_flight,
            in_flight_stored=None,
            problems=[],
        )
        fresh = open_from_spec(self.spec)
        try:
            self._check(fresh, commits, writer, report)
            if not report.problems:
                self._recover(fresh, commits, report)
        finally:
            close_quietly(fresh)
        return report

    # -- what a fresh instance sees -------------------------------------------------------------
    def _read_logs(self, store: Any, report: RoundReport) -> dict[str, list[Event]] | None:
        logs: dict[str, list[Event]] = {}
        for session_id in self.session_ids:
            try:
                log = list(store.get_events(session_id))
                latest = store.get_latest_sequence(session_id)
            except Exception as error:
                report.problems.append(
                    Problem("SEQ-1", f"reading {session_id!r} failed: {describe_error(error)[0]}")
                )
                return None
            numbers = [e.sequence_number for e in log]
            if numbers != list(range(1, len(log) + 1)):
                report.problems.append(
                    Problem("SEQ-1", f"{session_id!r} holds numbers {numbers}, not 1..{len(log)}")
                )
            if latest != len(log):
                report.problems.append(
                    Problem(
                        "SEQ-1",
                        f"get_latest_sequence({session_id!r}) is {latest}, but the session holds "
                        f"{len(log)} events",
                    )
                )
            before = self.logs[session_id]
            if log[: len(before)] != before:
                report.problems.append(
                    Problem(
                        "SEQ-1",
                        f"the {len(before)} events {session_id!r} held before this round changed "
                        "or moved",
                    )
                )
            logs[session_id] = log
        return logs

    def _check(
        self, store: Any, commits: list[Commit], writer: _Writer, report: RoundReport
    ) -> None:
        logs = self._read_logs(store, report)
        if logs is None:
            return
        stored = {e.id: e for log in logs.values() for e in log}
        versions = dict(self.versions)
        for commit in commits:
            rule = "FLUSH-3" if commit.kind == "flush" else "BATCH-3"
            present = [i for i in commit.ids if i in stored]
            whole = len(present) == len(commit.ids)
            began, done = commit.index in writer.begun, commit.index in writer.done
            state = "acknowledged" if done else "in flight" if began else "never begun"
            if present and not whole:
                report.problems.append(
                    Problem(
                        rule,
                        f"commit {commit.index} ({commit.kind}, {state}) is stored in part: "
                        f"{len(present)} of its {len(commit.ids)} events ({present[:4]}...)",
                    )
                )
                continue
            if done and not whole:
                report.problems.append(
                    Problem(
                        rule,
                        f"commit {commit.index} ({commit.kind}) had returned to the writer, but "
                        "after the writer was killed none of it is stored",
                    )
                )
            if whole and not began:
                report.problems.append(
                    Problem(rule, f"commit {commit.index} never began, yet its events are stored")
                )
            if commit.index == report.in_flight:
                report.in_flight_stored = whole
            if whole:
                self._check_block(commit, stored, report)
            if commit.kind == "flush" and commit.result is not None:
                self._check_flush(store, commit, whole, state, report)
                if whole:
                    versions[commit.result.session.id] = commit.result.session
        for session_id, expected in versions.items():
            try:
                got = store.get_session(session_id)
            except Exception as error:
                got = describe_error(error)[0]
            if got != expected:
                report.problems.append(
                    Problem(
                        "FLUSH-3",
                        f"session {session_id!r} reads back as {got!r:.160}, but the last flush "
                        f"stored whole saved {expected.metadata}",
                    )
                )
        self.versions = versions
        self.logs = logs

    @staticmethod
    def _check_block(commit: Commit, stored: dict[str, Event], report: RoundReport) -> None:
        for session_id in commit.sessions:
            numbers = [
                stored[e.id].sequence_number or 0
                for e in commit.events
                if e.session_id == session_id
            ]
            if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
                report.problems.append(
                    Problem(
                        "SEQ-1",
                        f"commit {commit.index} ({commit.kind}) got numbers {numbers} in "
                        f"{session_id!r}: not one consecutive block in input order",
                    )
                )

    @staticmethod
    def _check_flush(
        store: Any, commit: Commit, whole: bool, state: str, report: RoundReport
    ) -> None:
        assert commit.result is not None
        run = commit.result.run
        try:
            got: Any = store.get_run(run.id)
        except Exception as error:
            got = None
            text, code = describe_error(error)
            if code != "run_not_found":
                report.problems.append(Problem("FLUSH-3", f"get_run({run.id!r}) failed: {text}"))
                return
        if whole and got != run:
            report.problems.append(
                Problem(
                    "FLUSH-3",
                    f"flush {commit.index} ({state}): its events are stored but its run reads back "
                    f"as {got!r:.120}",
                )
            )
        if not whole and got is not None:
            report.problems.append(
                Problem(
                    "FLUSH-3",
                    f"flush {commit.index} ({state}): its run is stored but none of its events are",
                )
            )

    # -- recovery: the store takes new writes ---------------------------------------------------
    def _recover(self, store: Any, commits: list[Commit], report: RoundReport) -> None:
        before = {s: len(log) for s, log in self.logs.items()}
        if report.in_flight is not None:
            commit = commits[report.in_flight]
            had = report.in_flight_stored
            old = {e.id: e for log in self.logs.values() for e in log}
            try:
                returned = perform_commit(store, commit)
            except Exception as error:
                report.problems.append(
                    Problem(
                        "IDEM-1",
                        f"retrying the commit that was in flight ({commit.kind} {commit.index}) "
                        f"failed: {describe_error(error)[0]}",
                    )
                )
                return
            if commit.result is not None:
                self.versions[commit.result.session.id] = commit.result.session
            if had:
                got = [returned] if isinstance(returned, Event) else list(returned or [])
                for event in got:
                    if old.get(event.id) != event:
                        report.problems.append(
                            Problem(
                                "IDEM-1",
                                f"retrying {commit.kind} {commit.index}, already stored whole, "
                                f"returned {event.id!r} as #{event.sequence_number}; it is stored "
                                f"as #{getattr(old.get(event.id), 'sequence_number', None)}",
                            )
                        )
                        break
        extra = {
            s: [
                Event(
                    id=f"{self.tag}-r{report.number}-after-{s}-{i}",
                    type=EventType.TURN_COMPLETED,
                    timestamp=T0,
                    session_id=s,
                )
                for i in range(2)
            ]
            for s in self.session_ids
        }
        try:
            for events in extra.values():
                store.append_events(events)
        except Exception as error:
            report.problems.append(
                Problem(
                    "SEQ-1", f"after the crash, a new append failed: {describe_error(error)[0]}"
                )
            )
            return
        logs = self._read_logs(store, report)
        if logs is None:
            return
        for session_id, log in logs.items():
            ids = [e.id for e in log]
            if len(ids) != len(set(ids)):
                report.problems.append(
                    Problem("IDEM-1", f"{session_id!r} holds an event id twice after the retry")
                )
            tail = [e.id for e in log[-2:]]
            if tail != [e.id for e in extra[session_id]] or len(log) < before[session_id] + 2:
                report.problems.append(
                    Problem(
                        "SEQ-1",
                        f"new appends to {session_id!r} after the crash did not land at the end "
                        f"of its log as #{before[session_id] + 1}..",
                    )
                )
        self.logs = logs


__all__ = [
    "Commit",
    "CrashRounds",
    "CrashSetupError",
    "Problem",
    "RoundReport",
    "perform_commit",
    "plan_round",
]
