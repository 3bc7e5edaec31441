"""Crash consistency for ``shared_backend`` stores: a writer process killed mid-commit.

A writer process opens the store from its ``asm_reopen_spec()`` and commits a seeded list of
flushes, batches and single appends, one after another, telling this process through a pipe when
each commit begins and when it has returned. This process waits until the writer has *begun*
a chosen commit, waits a further seeded fraction of the time commits of that kind have taken so
far, and kills the writer with SIGKILL: the pipe is the synchronisation, the extra delay is fault
timing (it decides where inside the commit the kill lands), not a guess about when something
will have happened.

Then a fresh store instance, opened from the same spec, must show every commit whole or absent
and take new writes (``crash_checks.py``).

The next round starts another writer on the same sessions. Which commit is the target and how
far into it the kill lands are fixed by the seed; where exactly the writer is at that moment
also depends on the scheduler, so a replay with the same seed repeats the scenario, not the
instruction the writer was killed at.
"""

from __future__ import annotations

import collections
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from pytest_asm_contract._concurrency.async_bridge import open_reopened
from pytest_asm_contract._concurrency.crash_checks import Ledger
from pytest_asm_contract._concurrency.crash_plans import (
    KINDS,
    Commit,
    RoundReport,
    perform_commit,
    plan_round,
)
from pytest_asm_contract._concurrency.processes import TaskContext, Worker, WorkerError
from pytest_asm_contract._contract.port import ReopenSpec, close_quietly

#: Hang guards only: a healthy writer answers within milliseconds.
READY_GUARD_S = 120.0
COMMIT_GUARD_S = 120.0
#: How many writer processes are started ahead of their round.
PREFETCH = 3

#: The kind of commit each round kills the writer in, round after round.
TARGET_KINDS = ("flush", "batch", "flush", "batch", "append")


class CrashSetupError(RuntimeError):
    """The crash scenario could not be set up (the writer failed on its own or hung)."""


def commit_in_turn(context: TaskContext, commits: list[Commit]) -> None:
    """The writer's task: commit one after another, saying when each begins and returns."""
    for commit in commits:
        context.report("begin", commit.index, time.monotonic_ns())
        perform_commit(context.store, commit)
        context.report("done", commit.index, time.monotonic_ns())


class _Writer:
    """One writer process, started early so that its start-up overlaps the previous round."""

    def __init__(self, spec: ReopenSpec, commits: list[Commit], number: int) -> None:
        self.spec = spec
        self.commits = commits
        self.worker = Worker(f"asm-crash-writer-{number}")
        self.worker.submit("open", spec)
        self.begun: dict[int, int] = {}
        self.done: dict[int, int] = {}
        self.error: str | None = None
        self.finished = False

    def go(self) -> None:
        """Start committing, once the writer has opened the store."""
        try:
            self.worker.answer(READY_GUARD_S)
        except WorkerError as error:
            raise CrashSetupError(f"the writer process did not start: {error}") from None
        self.worker.submit("run", self.spec, commit_in_turn, self.commits)

    def _take(self, message: tuple[str, Any]) -> None:
        kind, payload = message
        if kind == "progress":
            what, index, at = payload
            (self.begun if what == "begin" else self.done)[index] = at
        elif kind == "error":
            self.error = str(payload)
        else:
            self.finished = True

    def wait_for_begin(self, index: int) -> None:
        while index not in self.begun:
            if self.error is not None or self.finished:
                raise CrashSetupError(
                    f"the writer stopped before commit {index} began: {self.error or 'finished'}"
                )
            try:
                message = self.worker.receive(COMMIT_GUARD_S)
            except WorkerError as error:
                raise CrashSetupError(f"the writer died before commit {index}: {error}") from None
            if message is None:
                raise CrashSetupError(f"the writer did not reach commit {index} (hung)")
            self._take(message)

    def durations_ms(self, kind: str) -> list[float]:
        return [
            (self.done[i] - self.begun[i]) / 1e6
            for i in self.done
            if i in self.begun and self.commits[i].kind == kind
        ]

    def kill(self) -> None:
        for message in self.worker.kill():  # what it said before it died
            self._take(message)

    def stop(self) -> None:
        """Dispose of a writer that was never used."""
        self.worker.kill()


class CrashRounds:
    """Kill writers of one backend round after round; check what a fresh instance sees."""

    def __init__(
        self,
        store: Any,
        spec: ReopenSpec,
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
        self.ledger = Ledger(tag, [f"ses-{tag}-{i}" for i in range(sessions)])
        self.reports: list[RoundReport] = []

    def run(self, rounds: int, on_round: Callable[[RoundReport], None] | None = None) -> None:
        for session in self.ledger.versions.values():
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
        return plan_round(self.seed, self.tag, number, self.ledger.session_ids, self.commits)

    def _round(self, number: int, writer: _Writer) -> RoundReport:
        commits = writer.commits
        # Flushes and batches over two sessions, where a per-session commit shows, in turns; a
        # single append (one write in any store) now and then.
        wanted = TARGET_KINDS[number % len(TARGET_KINDS)]
        candidates = [c.index for c in commits[2 : self.commits - 2] if c.kind == wanted]
        target = self.rng.choice(candidates or list(range(2, self.commits - 2)))
        fraction = self.rng.random()
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
        fresh = open_reopened(self.spec)
        try:
            self.ledger.check(fresh, commits, writer.begun, writer.done, report)
            if not report.problems:
                self.ledger.recover(fresh, commits, report)
        finally:
            close_quietly(fresh)
        return report


__all__ = ["CrashRounds", "CrashSetupError", "commit_in_turn"]
