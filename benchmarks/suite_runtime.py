"""Wall time of the bundled contract suite against a store, serial and with xdist.

Usage: python benchmarks/suite_runtime.py [--store module:attr] [--repeat N]

Each figure is the median of N runs of a fresh pytest process. The baseline, measured the same way
in the same run, is pytest collecting the suite without running it (interpreter start, plugin
load, imports and collection), so the difference is the time the checks themselves take.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

MEMORY = "reference_stores.memory:InMemorySessionStore"


def run_pytest(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"pytest {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return elapsed, done.stdout


def counts(output: str) -> str:
    """The outcome counts of pytest's closing line."""
    closing = output.strip().splitlines()[-1] if output.strip() else ""
    found = re.findall(r"(\d+) (passed|failed|skipped|tests? collected)", closing)
    return ", ".join(f"{n} {what}" for n, what in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=MEMORY)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    store = f"--asm-store={options.store}"
    cases = {
        "baseline: collect only": [store, "--collect-only"],
        "suite, serial": [store],
        "suite, -n 2": [store, "-n", "2"],
    }
    print(f"store: {options.store}; median of {options.repeat} runs, seconds")
    baseline = None
    for label, args in cases.items():
        times, output = [], ""
        for _ in range(options.repeat):
            elapsed, output = run_pytest(args)
            times.append(elapsed)
        median = statistics.median(times)
        baseline = median if baseline is None else baseline
        extra = "" if median is baseline else f"  (+{median - baseline:.2f} over baseline)"
        print(f"{label:<24} {median:7.2f} s  min {min(times):.2f}  [{counts(output)}]{extra}")


if __name__ == "__main__":
    main()
