"""Throughput of the async SQL store against the sync store, in one run.

Each round times, on each backend, two contenders appending single events to 10 sessions:

* async: ``AsyncSqlSessionStore``, 100 concurrent tasks on one event loop
  (``asyncio.gather``), each ``append_event_with_sequence``;
* sync: ``SqlSessionStore``, 8 threads, each ``append_event_with_sequence`` (the baseline,
  measured the same way: same events, same sessions, same count).

The contenders take turns within each round, so a slow spell of the machine falls on both; the
figure is the median events/s over the rounds and the median of the per-round ratios. Every run
checks that each session's numbers are exactly 1..n.

    .venv/bin/python benchmarks/async_throughput.py [--events 2000] [--rounds 3]

PostgreSQL defaults to the development service (``--postgres-url ''`` leaves it out).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_asm_contract._contract.model import Event, EventType, Session
from reference_stores.sql import AsyncSqlSessionStore, SqlSessionStore

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SESSIONS = 10
TASKS = 100
THREADS = 8


def workload(events: int) -> tuple[list[Session], list[Event]]:
    sessions = [Session(agent_id="bench") for _ in range(SESSIONS)]
    batch = [
        Event(
            type=EventType.MESSAGE_SENT,
            session_id=sessions[i % SESSIONS].id,
            data={"i": i, "text": "the quick brown fox jumps over the lazy dog"},
        )
        for i in range(events)
    ]
    return sessions, batch


def check_numbers(latest: Callable[[str], int], sessions: list[Session], events: int) -> None:
    total = sum(latest(s.id) for s in sessions)
    if total != events:
        raise AssertionError(f"{total} numbers taken for {events} events")


async def async_run(url: str | None, events: int) -> float:
    """Events/s of 100 tasks on one loop; the store's opening is not timed."""
    store = AsyncSqlSessionStore(url, isolated=True) if url else AsyncSqlSessionStore()
    try:
        sessions, batch = workload(events)
        for session in sessions:
            await store.save_session(session)
        queue = iter(batch)

        async def worker() -> None:
            for event in queue:
                await store.append_event_with_sequence(event)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(TASKS)))
        elapsed = time.perf_counter() - start
        latest = {s.id: await store.get_latest_sequence(s.id) for s in sessions}
        check_numbers(latest.__getitem__, sessions, events)
        return events / elapsed
    finally:
        await store.close()


def sync_run(url: str | None, events: int) -> float:
    """Events/s of 8 threads on the sync store."""
    sync_url = url.replace("postgresql://", "postgresql+psycopg://") if url else None
    store = SqlSessionStore(sync_url, isolated=True) if sync_url else SqlSessionStore()
    try:
        sessions, batch = workload(events)
        for session in sessions:
            store.save_session(session)
        lock = threading.Lock()
        queue = iter(batch)

        def worker() -> None:
            while True:
                with lock:
                    event = next(queue, None)
                if event is None:
                    return
                store.append_event_with_sequence(event)

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        check_numbers(store.get_latest_sequence, sessions, events)
        return events / elapsed
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    backends: dict[str, str | None] = {"SQLite (file)": None}
    if args.postgres_url:
        backends["PostgreSQL"] = args.postgres_url
    print(
        f"{args.events} single appends to {SESSIONS} sessions, {args.rounds} rounds "
        f"(run {uuid.uuid4().hex[:6]}); async: {TASKS} tasks on one loop, sync: {THREADS} threads"
    )
    print(f"{'backend':<15} {'async ev/s':>11} {'sync ev/s':>10} {'async/sync':>11}")
    for name, url in backends.items():
        async_rates, sync_rates = [], []
        for _ in range(args.rounds):
            async_rates.append(asyncio.run(async_run(url, args.events)))
            sync_rates.append(sync_run(url, args.events))
        ratio = statistics.median(a / s for a, s in zip(async_rates, sync_rates, strict=True))
        print(
            f"{name:<15} {statistics.median(async_rates):>11,.0f} "
            f"{statistics.median(sync_rates):>10,.0f} {ratio:>11.2f}"
        )


if __name__ == "__main__":
    main()
