"""Retention on a large store: the SQL Maintenance port's ``execute``, and appends beside it.

Usage: python benchmarks/maintenance.py [--events 1000000] [--sessions 10000]
                                        [--backends sqlite,postgresql] [--writers 4]
                                        [--appends 4000] [--batch 1]

For each backend, a fresh store (SQLite: the embedded default; servers: an isolated namespace,
dropped afterwards) is filled with ``--events`` events spread evenly over ``--sessions``
sessions, one run per session, by bulk INSERTs of the rows the store itself writes (``codec``,
loaded as ``benchmarks/query.py`` loads them), then ``ANALYZE``d. Each session's sequence
counter equals its highest number. Against a fixed ``now``, under
``RetentionPolicy(max_events_per_session=limit)`` (defaults otherwise: terminal sessions
soft-deleted after 90 days, hard deletes 30 days after the soft delete, batches of 100):

* a third of the sessions are terminal and last updated 120 days ago (soft-deleted by the policy;
  one in fifty of them carries the exempt tag ``pinned`` and stays);
* one in twenty was soft-deleted 60 days ago (hard-deleted, with its run and events);
* the others are active, paused, pending, or terminal but recent (kept);
* every session holds a tenth more events than the limit (pruned): run_started first,
  run_completed last, the listed types (message_streamed, token_usage_updated) among messages
  and tool calls, so a prune removes listed types first and then the oldest others;
* one counter in a hundred belongs to no session and no event (orphaned, cleaned).

Figures, per backend:

* ``execute (s)``: one ``execute`` on the filled store, alone, and its report (sessions soft- and
  hard-deleted, events pruned, counters cleaned, errors); ``report as expected`` is 1 when every
  count is what the data above makes it;
* ``appends alone (events/s)``: ``--writers`` threads, each appending ``--appends / --writers``
  calls of ``--batch`` events through the store to sessions of its own (active, below the limit,
  so never selected), on a second store filled the same way; events over the writers' span, from
  their common start to the last one's end;
* ``appends during execute (events/s)``: the same writers on that store again (new sessions),
  started together with ``execute`` in another thread; ``ratio during / alone`` is the cost of
  running maintenance beside the clients (the writers and ``execute`` share one process, so the
  GIL is part of it); ``writers inside execute (%)`` says how much of the writers' span
  ``execute`` was still running (below 100: part of the writes ran without it), and ``execute
  beside writers (s)`` how long that ``execute`` took.

Servers default to the development services (``ASM_TEST_POSTGRES_URL``, ``ASM_TEST_MYSQL_URL``);
MariaDB runs when listed (``--backends sqlite,postgresql,mariadb``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.query import CHUNK, PROVIDERS, START, load, open_store, reachable  # noqa: E402
from pytest_asm_contract import (  # noqa: E402
    Event,
    EventType,
    MaintenanceReport,
    RetentionPolicy,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from reference_stores.sql import SqlMaintenance, SqlSessionStore, codec  # noqa: E402

#: The fixed clock of every ``execute``.
NOW = START + timedelta(days=200)
TERMINAL = (SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED)
#: Between run_started and run_completed; every 25th event is a listed type.
BODY = (
    EventType.MESSAGE_SENT,
    EventType.MESSAGE_RECEIVED,
    EventType.TOOL_CALL_STARTED,
    EventType.TOOL_CALL_COMPLETED,
)
#: One printed row: its label and its value (an int prints as a count).
Figure = tuple[str, float | int]


@dataclass(frozen=True)
class Shape:
    """The store's data, and what ``execute`` must report on it."""

    sessions: int
    per_session: int

    @property
    def limit(self) -> int:
        return self.per_session - max(1, self.per_session // 10)

    @property
    def orphans(self) -> int:
        return self.sessions // 100

    def kind(self, n: int) -> str:
        """``hard`` (soft-deleted long ago), ``soft`` (terminal, old), ``pinned`` (the same,
        exempt by tag) or ``kept``."""
        if n % 20 == 1:
            return "hard"
        if n % 3 == 0:
            return "pinned" if n % 50 == 0 else "soft"
        return "kept"

    def session(self, n: int) -> Session:
        kind = self.kind(n)
        created = NOW - timedelta(days=180) + timedelta(seconds=n)
        updated = created + timedelta(hours=n % 97)
        status = (SessionStatus.ACTIVE, SessionStatus.PAUSED, SessionStatus.PENDING)[n % 3]
        deleted = None
        if kind == "hard":
            status, deleted = TERMINAL[n % 3], NOW - timedelta(days=60)
        elif kind in ("soft", "pinned"):
            status, updated = TERMINAL[n % 3], NOW - timedelta(days=120, seconds=n)
        elif n % 4 == 0:
            status, updated = TERMINAL[n % 3], NOW - timedelta(days=10, seconds=n)
        tags = ["bench", f"t{n % 7}"] + (["pinned"] if kind == "pinned" else [])
        return Session(
            id=f"s{n:06d}",
            agent_id=f"agent-{n % 10}",
            status=status,
            tags=tags,
            created_at=created,
            updated_at=updated,
            deleted_at=deleted,
        )

    def event_type(self, sequence: int) -> EventType:
        if sequence == 1:
            return EventType.RUN_STARTED
        if sequence == self.per_session:
            return EventType.RUN_COMPLETED
        if sequence % 25 == 0:
            return EventType.MESSAGE_STREAMED
        if sequence % 25 == 12:
            return EventType.TOKEN_USAGE_UPDATED
        return BODY[sequence % len(BODY)]

    def expected(self) -> MaintenanceReport:
        kinds = [self.kind(n) for n in range(self.sessions)]
        hard = kinds.count("hard")
        removable = self.per_session - 2  # run_started and run_completed stay
        over = min(self.per_session - self.limit, removable)
        return MaintenanceReport(
            sessions_soft_deleted=kinds.count("soft"),
            sessions_hard_deleted=hard,
            events_pruned=(self.sessions - hard) * over,
            orphaned_sequences_cleaned=self.orphans,
        )


def rows(shape: Shape) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(table, rows) chunks, as ``benchmarks.query.rows`` yields them, of ``shape``'s data."""
    sessions = [shape.session(n) for n in range(shape.sessions)]
    yield "sessions", [codec.session_row(session) for session in sessions]
    yield (
        "runs",
        [
            codec.run_row(
                Run(
                    id=f"r{n:06d}",
                    session_id=session.id,
                    status=RunStatus.COMPLETED,
                    provider=PROVIDERS[n % 3],
                    token_usage={"input_tokens": n % 1000, "output_tokens": n % 300},
                    started_at=session.created_at,
                )
            )
            for n, session in enumerate(sessions)
        ],
    )
    counters = [{"session_id": s.id, "last_sequence": shape.per_session} for s in sessions]
    counters += [{"session_id": f"orphan{n:06d}", "last_sequence": 1} for n in range(shape.orphans)]
    yield "sequences", counters
    chunk: list[dict[str, Any]] = []
    for n, session in enumerate(sessions):
        for sequence in range(1, shape.per_session + 1):
            event = Event(
                id=f"e{n:06d}-{sequence:05d}",
                type=shape.event_type(sequence),
                session_id=session.id,
                run_id=f"r{n:06d}",
                timestamp=session.created_at + timedelta(milliseconds=sequence),
                data={"text": "x" * 40},
                provider=PROVIDERS[n % 3],
            )
            chunk.append(codec.event_row(event, sequence))
            if len(chunk) == CHUNK:
                yield "events", chunk
                chunk = []
    if chunk:
        yield "events", chunk


def fill(store: SqlSessionStore, shape: Shape) -> float:
    """``shape``'s rows, loaded as ``benchmarks/query.py`` loads its own; counters analyzed too."""
    return load(store, rows(shape), ("sessions", "runs", "events", "sequences"))


@dataclass(frozen=True)
class Writers:
    writers: int
    appends: int  # append calls over all writers
    batch: int  # events per call


def writer_events(phase: str, writer: int, spec: Writers, limit: int) -> list[list[Event]]:
    """One writer's calls: batches to sessions of its own, at most ``limit`` events each (so
    that ``execute`` never selects them)."""
    calls, per_session = [], max(1, limit // spec.batch) * spec.batch
    for call in range(spec.appends // spec.writers):
        batch = []
        for k in range(spec.batch):
            index = call * spec.batch + k
            batch.append(
                Event(
                    id=f"{phase}-w{writer}-e{index:07d}",
                    type=BODY[index % len(BODY)],
                    session_id=f"{phase}-w{writer}-s{index // per_session:05d}",
                    timestamp=NOW + timedelta(milliseconds=index),
                    data={"text": "x" * 40},
                )
            )
        calls.append(batch)
    return calls


def run_writers(
    store: SqlSessionStore,
    phase: str,
    spec: Writers,
    limit: int,
    maintenance: SqlMaintenance | None,
    policy: RetentionPolicy,
) -> tuple[float, MaintenanceReport | None, float, float]:
    """Events/s of the writers (from their common start to the last end); with
    ``maintenance``, ``execute`` starts with them: its report, its seconds, and the share of
    the writers' span it was still running."""
    plans = [writer_events(phase, w, spec, limit) for w in range(spec.writers)]
    for w, plan in enumerate(plans):  # the writers' sessions exist before the clock starts
        for session_id in sorted({batch[0].session_id for batch in plan}):
            store.save_session(
                Session(
                    id=session_id,
                    agent_id="writer",
                    status=SessionStatus.ACTIVE,
                    tags=[f"w{w}"],
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    parties = spec.writers + (maintenance is not None)
    gate = threading.Barrier(parties)
    spans: list[tuple[float, float]] = []
    execute: list[tuple[MaintenanceReport, float, float]] = []
    failures: list[BaseException] = []

    def write(plan: list[list[Event]]) -> None:
        try:
            gate.wait()
            started = time.perf_counter()
            for batch in plan:
                store.append_events(batch)
            spans.append((started, time.perf_counter()))
        except BaseException as error:
            failures.append(error)
            raise

    def maintain() -> None:
        assert maintenance is not None
        try:
            gate.wait()
            started = time.perf_counter()
            report = maintenance.execute(policy, now=NOW)
            execute.append((report, started, time.perf_counter()))
        except BaseException as error:
            failures.append(error)
            raise

    threads = [threading.Thread(target=write, args=(plan,)) for plan in plans]
    if maintenance is not None:
        threads.append(threading.Thread(target=maintain))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{phase}: a thread failed") from failures[0]
    start, end = min(s for s, _ in spans), max(e for _, e in spans)
    rate = sum(len(batch) for plan in plans for batch in plan) / (end - start)
    if not execute:
        return rate, None, 0.0, 0.0
    report, began, ended = execute[0]
    inside = max(0.0, min(end, ended) - max(start, began)) / (end - start)
    return rate, report, ended - began, inside * 100


def report_figures(report: MaintenanceReport, expected: MaintenanceReport) -> list[Figure]:
    counts = ["sessions_soft_deleted", "sessions_hard_deleted", "events_pruned"]
    counts += ["orphaned_sequences_cleaned", "artifacts_cleaned"]
    figures: list[Figure] = [(f"  {name}", getattr(report, name)) for name in counts]
    figures.append(("  errors", len(report.errors)))
    right = all(getattr(report, name) == getattr(expected, name) for name in counts)
    figures.append(("  report as expected", int(right and not report.errors)))
    for error in report.errors[:5]:
        print(f"execute error: {error}", file=sys.stderr)
    return figures


def measure(backend: str, shape: Shape, spec: Writers) -> list[Figure]:
    policy = RetentionPolicy(max_events_per_session=shape.limit)
    expected = shape.expected()
    figures: list[Figure] = []
    store = open_store(backend)
    try:
        figures.append(("fill (s)", fill(store, shape)))
        started = time.perf_counter()
        report = SqlMaintenance(store).execute(policy, now=NOW)
        figures.append(("execute (s)", time.perf_counter() - started))
        figures += report_figures(report, expected)
    finally:
        store.close()
    store = open_store(backend)
    try:
        figures.append(("fill, second store (s)", fill(store, shape)))
        alone, _, _, _ = run_writers(store, "alone", spec, shape.limit, None, policy)
        during, beside, seconds, inside = run_writers(
            store, "during", spec, shape.limit, SqlMaintenance(store), policy
        )
        assert beside is not None
        figures += [
            ("appends alone (events/s)", alone),
            ("appends during execute (events/s)", during),
            ("  ratio during / alone", during / alone),
            ("  writers inside execute (%)", inside),
            ("execute beside writers (s)", seconds),
        ]
        figures += report_figures(beside, expected)
    finally:
        store.close()
    return figures


def cell(value: float | int) -> str:
    return f"{value:>14,}" if isinstance(value, int) else f"{value:>14,.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--appends", type=int, default=4000, help="append calls, all writers")
    parser.add_argument("--batch", type=int, default=1, help="events per append call")
    args = parser.parse_args()
    if args.sessions < 1 or args.events // args.sessions < 10:
        parser.error("--events must give every session at least 10 events")
    if args.writers < 1 or args.batch < 1 or args.appends < args.writers:
        parser.error("--appends must give every writer at least one call")
    shape = Shape(args.sessions, args.events // args.sessions)
    if args.batch > shape.limit:
        parser.error(f"--batch must not exceed max_events_per_session ({shape.limit})")
    spec = Writers(args.writers, args.appends, args.batch)
    backends = [b for b in args.backends.split(",") if b and reachable(b)]
    print(
        f"{shape.sessions * shape.per_session:,} events in {shape.sessions:,} sessions, "
        f"max_events_per_session={shape.limit}; {spec.writers} writers x "
        f"{spec.appends // spec.writers} calls of {spec.batch} event(s)"
    )
    results = {backend: measure(backend, shape, spec) for backend in backends}
    labels = [label for label, _ in results[backends[0]]] if backends else []
    print(f"{'figure':40}" + "".join(f"{b:>14}" for b in backends))
    for index, label in enumerate(labels):
        print(f"{label:40}" + "".join(cell(results[b][index][1]) for b in backends))
    print(f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
