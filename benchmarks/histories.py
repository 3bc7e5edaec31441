"""How fast the history checker is: calls verified per second, and a 10,000-call history.

Usage: python benchmarks/histories.py [--repeat N] [--seed S]

Histories are recorded for real, from threads on the in-memory reference store, so they hold
the interleavings a store produces, not a synthetic pattern. The headline row is 8 writer
threads making exactly 10,000 calls (appends, append_event, batches over one or two sessions,
repeats of stored ids, flushes); the other rows add 2 reader threads (tailing with after=cursor,
pages, whole logs, get_latest_sequence, get_run and get_session probes) - how many reads they
make depends on the scheduling - and show how the cost grows with the size. Each checking time
is the median of N runs of ``check_history`` on one recorded history; the time it took to record
it is shown for comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from pytest_asm_contract._concurrency.checking import check_history
from pytest_asm_contract._concurrency.plans import Shape, make_plan
from pytest_asm_contract._concurrency.recording import History
from pytest_asm_contract._concurrency.workloads import run_in_threads
from reference_stores.memory import InMemorySessionStore

WRITERS = 8
#: label -> (reader threads, phases, writes per phase per writer, reads per reader at most)
SIZES = {
    "10,000 writes": (0, 10, 125, 0),
    "50,000 writes": (0, 25, 250, 0),
    "1k + readers": (2, 5, 20, 300),
    "10k + readers": (2, 10, 100, 2000),
}


def record(readers: int, phases: int, ops: int, reads: int, seed: int) -> tuple[History, float]:
    shape = Shape(
        sessions=3,
        writers=WRITERS,
        readers=readers,
        phases=phases,
        ops_per_phase=ops,
        racers=0,  # keeps the write count exact; racing appends are a small share anyway
        own_reads=0.0,
        max_batch=4,
    )
    plan = make_plan(shape, seed, f"bench{phases}")
    start = time.perf_counter()
    history = run_in_threads(InMemorySessionStore(), plan, max_reads=reads)
    return history, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    options = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{WRITERS} writer threads on the in-memory store; median of {options.repeat} checks"
    )
    print(
        f"{'history':<15} {'calls':>7} {'reads':>6} {'events':>7} {'record s':>9} "
        f"{'check s':>8} {'calls/s':>9}"
    )
    for label, (readers, phases, ops, reads) in SIZES.items():
        history, recorded = record(readers, phases, ops, reads, options.seed)
        events = sum(len(log) for log in history.final_events.values())
        read_calls = sum(1 for call in history.calls if not call.op.writes)
        times = []
        for _ in range(options.repeat):
            start = time.perf_counter()
            violations = check_history(history)
            times.append(time.perf_counter() - start)
        if violations:
            raise SystemExit(f"the reference store's history has violations: {violations[:3]}")
        median = statistics.median(times)
        print(
            f"{label:<15} {len(history.calls):>7} {read_calls:>6} {events:>7} {recorded:>9.2f} "
            f"{median:>8.3f} {len(history.calls) / median:>9,.0f}"
        )


if __name__ == "__main__":
    main()
