"""The stateful contract machine: steps per second, and how fast it catches sequence-only bugs.

Usage: python benchmarks/stateful.py [--seeds N] [--profile ci] [--zoo sequences|all]
                                    [--only NAME ...] [--skip-throughput]
                                    [--skip-detection] [--skip-reports]

1. Throughput: the machine against the in-memory reference store under the profile (a passing
   run), per seed: steps (rule executions) and store calls per second, wall and CPU time.
2. Detection: every broken store in ``tests/zoo/sequences.py`` (with ``--zoo all``: every broken
   session store of the zoo that breaks a rule the machine checks), per seed, with shrinking off:
   how many examples and how much time until the first violation (median and max over the
   seeds), and which rules were reported.
3. Reports: the same runs as the suite does them (Hypothesis's phases for the profile, then
   replay-based minimisation and simplification): whether every rule the store breaks was
   reported, the length of the reproduction (store calls, including the failing check) and the
   time until the report is ready.

Wall-clock figures depend on what else the machine runs; CPU seconds (this process only) are
shown beside them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import Phase, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_asm_contract._machine import (
    STATEFUL_RULES,
    StatefulResult,
    machine_settings,
    run_contract_machine,
)
from pytest_asm_contract._plugin.profiles import hypothesis_settings
from reference_stores.memory import InMemorySessionStore
from tests.zoo import mutants


def median_max(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):g} / {max(values):g}"


def selected_mutants(zoo: str, names: list[str]) -> list[tuple[str, type[Any]]]:
    """The broken stores to measure: sequence-only ones, or all the machine should catch."""
    chosen: list[tuple[str, type[Any]]] = []
    store_class: type[Any]
    for target, store_class in mutants():
        name = target.rsplit(":", 1)[1]
        if names and name not in names:
            continue
        if zoo == "sequences" and not target.startswith("tests.zoo.sequences:"):
            continue
        if getattr(store_class, "KIND", "session") != "session":
            continue
        if not set(store_class.BREAKS) & set(STATEFUL_RULES):
            continue
        chosen.append((name, store_class))
    return chosen


def throughput(profile: str, seeds: list[int]) -> None:
    print(f"== throughput: in-memory store, profile {profile} (passing runs)")
    print(
        f"{'seed':>6} {'examples':>9} {'steps':>7} {'calls':>7} {'wall s':>7} {'cpu s':>6} "
        f"{'steps/s wall':>13} {'steps/s cpu':>12} {'calls/s cpu':>12}"
    )
    rates = []
    for seed in seeds:
        wall, cpu = time.perf_counter(), time.process_time()
        result = run_contract_machine(InMemorySessionStore, hypothesis_settings(profile), seed)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert result.passed, [v.rule_id for v in result.violations]
        c = result.coverage
        rates.append(c.steps / cpu)
        print(
            f"{seed:>6} {c.examples:>9} {c.steps:>7} {c.calls:>7} {wall:>7.1f} {cpu:>6.1f} "
            f"{c.steps / wall:>13.0f} {c.steps / cpu:>12.0f} {c.calls / cpu:>12.0f}"
        )
    print(f"median steps per CPU second: {statistics.median(rates):.0f}\n")


def detection(profile: str, seeds: list[int], chosen: list[tuple[str, type[Any]]]) -> None:
    print(f"== detection: {len(chosen)} broken stores, profile {profile}, shrinking off")
    print(
        f"{'store':<34} {'BREAKS':<15} {'failed':>6} {'on rule':>7} {'examples med/max':>17} "
        f"{'cpu s med/max':>14} {'wall s med/max':>15}  rules reported"
    )
    plain = settings(hypothesis_settings(profile), phases=[Phase.generate])
    for name, store_class in chosen:
        examples, cpu, wall, rules, on_rule = [], [], [], set(), 0
        expected = set(store_class.BREAKS) & set(STATEFUL_RULES)
        for seed in seeds:
            result = run_contract_machine(store_class, plain, seed, minimize_seconds=0)
            c = result.coverage
            found = {r for v in result.violations for r in v.rule_ids}
            # On rule: every rule the store breaks (that the machine checks) was reported.
            on_rule += expected <= found
            if c.examples_before_violation is not None:
                examples.append(c.examples_before_violation)
                cpu.append(round(c.cpu_seconds_to_violation or 0.0, 2))
                wall.append(round(c.seconds_to_violation or 0.0, 2))
            rules |= found
        print(
            f"{name:<34} {','.join(store_class.BREAKS):<15} {len(examples):>3}/{len(seeds):<2} "
            f"{on_rule:>4}/{len(seeds):<2} "
            f"{median_max(examples):>17} {median_max(cpu):>14} {median_max(wall):>15}  "
            f"{','.join(sorted(rules))}"
        )
    print()


def suite_run(store_class: type[Any], profile: str, seed: int) -> StatefulResult:
    """One run of the machine as the bundled suite module makes it."""
    return run_contract_machine(store_class, hypothesis_settings(profile), seed)


def phases_of(profile: str) -> str:
    phases = machine_settings(hypothesis_settings(profile)).phases
    return ", ".join(phase.name for phase in phases)


def reports(profile: str, seeds: list[int], chosen: list[tuple[str, type[Any]]]) -> None:
    print(
        f"== reports: as the suite runs it (profile {profile}: phases {phases_of(profile)}; "
        "then replay minimisation and simplification)"
    )
    print(
        f"{'store':<34} {'BREAKS':<15} {'on rule':>7} {'steps med/max':>14} "
        f"{'cpu s med/max':>14} {'wall s med/max':>15}  rules reported"
    )
    for name, store_class in chosen:
        steps, cpu, wall, rules, on_rule = [], [], [], set(), 0
        expected = set(store_class.BREAKS) & set(STATEFUL_RULES)
        for seed in seeds:
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            result = suite_run(store_class, profile, seed)
            cpu.append(round(time.process_time() - started_cpu, 1))
            wall.append(round(time.perf_counter() - started_wall, 1))
            found = {r for v in result.violations for r in v.rule_ids}
            on_rule += expected <= found
            rules |= found
            broken = [v for v in result.violations if set(v.rule_ids) & expected]
            if broken:
                steps.append(min(len(v.steps) for v in broken))
        print(
            f"{name:<34} {','.join(store_class.BREAKS):<15} {on_rule:>4}/{len(seeds):<2} "
            f"{median_max(steps):>14} {median_max(cpu):>14} {median_max(wall):>15}  "
            f"{','.join(sorted(rules))}"
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N (default 5)")
    parser.add_argument("--profile", default="ci", choices=("quick", "ci", "deep"))
    parser.add_argument("--zoo", default="sequences", choices=("sequences", "all"))
    parser.add_argument("--only", nargs="*", default=[], help="broken store class names")
    parser.add_argument("--skip-throughput", action="store_true", help="skip the passing runs")
    parser.add_argument("--skip-detection", action="store_true", help="skip first violations")
    parser.add_argument("--skip-reports", action="store_true", help="skip the full runs")
    args = parser.parse_args()
    seeds = list(range(1, args.seeds + 1))
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; seeds {seeds}\n"
    )
    chosen = selected_mutants(args.zoo, args.only)
    if not args.skip_throughput:
        throughput(args.profile, seeds)
    if not args.skip_detection:
        detection(args.profile, seeds, chosen)
    if not args.skip_reports:
        reports(args.profile, seeds, chosen)


if __name__ == "__main__":
    main()
