"""What a fresh store instance must show after a writer was killed, and that it recovers.

Every commit whole or absent: every acknowledged commit whole, the one in flight whole or absent,
nothing of the commits that never began; each session's numbers exactly 1..n, the events from
before the crash unchanged, get_latest_sequence equal to n; and the store accepts new writes:
retrying the commit that was in flight stores nothing twice and returns the events as stored,
and further appends continue at n+1. A commit stored in part breaks FLUSH-3 for a flush and
BATCH-6 for a batch.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from pytest_asm_contract._concurrency.crash_plans import (
    Commit,
    Problem,
    RoundReport,
    perform_commit,
    session_version,
)
from pytest_asm_contract._concurrency.plans import T0
from pytest_asm_contract._concurrency.recording import describe_error
from pytest_asm_contract._contract.model import Event, EventType, Session
from pytest_asm_contract._machine.values import difference_text


class Ledger:
    """What the backend must hold: each session's log and record as of the last round."""

    def __init__(self, tag: str, session_ids: list[str]) -> None:
        self.tag = tag
        self.session_ids = session_ids
        self.logs: dict[str, list[Event]] = {s: [] for s in session_ids}
        self.versions: dict[str, Session] = {s: session_version(s, "initial") for s in session_ids}

    def read_logs(self, store: Any, report: RoundReport) -> dict[str, list[Event]] | None:
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

    def check(
        self,
        store: Any,
        commits: list[Commit],
        begun: Container[int],
        done: Container[int],
        report: RoundReport,
    ) -> None:
        """What a fresh instance shows after the kill: every commit whole or absent."""
        logs = self.read_logs(store, report)
        if logs is None:
            return
        stored = {e.id: e for log in logs.values() for e in log}
        versions = dict(self.versions)
        for commit in commits:
            rule = "FLUSH-3" if commit.kind == "flush" else "BATCH-6"
            present = [i for i in commit.ids if i in stored]
            whole = len(present) == len(commit.ids)
            began, acked = commit.index in begun, commit.index in done
            state = "acknowledged" if acked else "in flight" if began else "never begun"
            if present and not whole:
                report.problems.append(
                    Problem(
                        rule,
                        f"commit {commit.index} ({commit.kind}, {state}) is stored in part: "
                        f"{len(present)} of its {len(commit.ids)} events ({present[:4]}...)",
                    )
                )
                continue
            if acked and not whole:
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
                        f"session {session_id!r} reads back as {got!r}, but the last flush "
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
                    f"otherwise: {difference_text(run, got)}",
                )
            )
        if not whole and got is not None:
            report.problems.append(
                Problem(
                    "FLUSH-3",
                    f"flush {commit.index} ({state}): its run is stored but none of its events are",
                )
            )

    def recover(self, store: Any, commits: list[Commit], report: RoundReport) -> None:
        """The store takes new writes: the retried commit, then appends at the end of each log."""
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
        logs = self.read_logs(store, report)
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


__all__ = ["Ledger"]
