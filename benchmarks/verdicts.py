"""How the kit's verdicts read: every broken store of the zoo, and the reference stores, over seeds.

For each broken store (``tests/zoo``) and seed, the bundled suite runs as a user runs it
(``pytest --asm-store=... --asm-seed=N``, default options otherwise) and the script records:

* detection: did every rule in the store's ``BREAKS`` fail (the JSON report says);
* the first failure printed: does its header or its "ASM contract rule" section name one of
  those rules (what a store author reads first);
* the length of the red run's output, in lines (with ``CI=true``, as on a CI service, where
  pytest neither truncates nor shortens its explanations).

The correct reference stores run over the same seeds; they must pass every time. It prints one
row per store and the totals::

    python benchmarks/verdicts.py                 # 10 seeds, every store (2.5 h on two cores)
    python benchmarks/verdicts.py --seeds 2 --stores sessions,SequenceStartsAtZero
    python benchmarks/verdicts.py --seeds 5 --first-seed 6 2> later.log   # seeds 6..10
    python benchmarks/verdicts.py --from-log earlier.log later.log        # both, one table
    python benchmarks/verdicts.py --from-log *.log --by-module            # + per zoo module
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.zoo import kit_arguments, mutants  # noqa: E402

CORRECT = (
    ("reference_stores.memory:InMemorySessionStore", "session"),
    ("tests.stores.memory.strict:StrictInMemorySessionStore", "session"),
    ("reference_stores.sql:SqlSessionStore", "session"),
    ("reference_stores.sql:AsyncSqlSessionStore", "session"),
    # correct stores written from the docs alone, the zoo's broken ones derived from them
    ("tests.zoo.dict_store:DictSessionStore", "session"),
    ("tests.zoo.redis_store:RedisSessionStore", "session"),
    # the common async facade: a sync store behind asyncio.to_thread
    ("tests.zoo.async_stores:AsyncThreadFacade", "session"),
    ("reference_stores.memory:InMemoryQueryAPI", "query"),
    ("reference_stores.memory:InMemoryArtifactRegistry", "registry"),
    ("reference_stores.memory:InMemoryMaintenance", "maintenance"),
)
HEADER = re.compile(r"^_+ (?P<test>.+?) _+$")  # long test names get a single "_" each side
RULE_IDS = re.compile(r"\b[A-Z]+-\d+\b")


@dataclasses.dataclass
class Run:
    detected: bool
    first_names_rule: bool
    lines: int
    passed: bool
    first: str


def first_failure(output: str) -> tuple[str, str]:
    """The first failure's header, and the rule section printed under it (if any)."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        found = HEADER.match(line)
        if found and "FAILURES" not in line and "ERRORS" not in line:
            section = []
            for later in lines[index + 1 :]:
                if HEADER.match(later) or later.startswith("=" * 5):
                    break
                section.append(later)
            text = "\n".join(section)
            rules = text.split("ASM contract rule", 1)[1] if "ASM contract rule" in text else ""
            return found.group("test"), rules
    return "", ""


def run_once(target: str, kind: str, seed: int, breaks: tuple[str, ...]) -> Run:
    with tempfile.TemporaryDirectory(prefix="asm-verdicts-") as workdir:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *kit_arguments(target, kind),
                f"--asm-seed={seed}",
                f"--asm-report={workdir}/report",
                "-p",
                "no:cacheprovider",
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
            # as on a CI service, where the kit gates adapters: pytest prints whole diffs there
            env={**os.environ, "PYTHONPATH": str(ROOT), "CI": "true"},
            check=False,
        )
        try:
            report = json.loads(Path(workdir, "report.json").read_text())
            failed = {r["id"] for r in report["rules"] if r["status"] == "failed"}
        except (OSError, ValueError):
            failed = set()
    header, section = first_failure(done.stdout)
    named = set(RULE_IDS.findall(header.split("[", 1)[-1] if "[" in header else "")) | set(
        RULE_IDS.findall(section.splitlines()[1] if section.count("\n") else section)
    )
    return Run(
        # Caught: one of its rules failed (with the others, where one builds on another, not
        # run: "fix IDEM-1 first"). tests/plugin/test_zoo.py shows every one failing in a full run.
        detected=bool(set(breaks) & failed),
        first_names_rule=bool(named & set(breaks)),
        lines=len(done.stdout.splitlines()),
        passed=done.returncode == 0,
        first=header,
    )


#: One run's verdict as printed to stderr when it ends; ``--from-log`` reads these lines back.
LOG_LINE = re.compile(
    r"^\d+/\d+ (?P<target>\S+) seed=(?P<seed>\d+) caught=(?P<caught>True|False) "
    r"first_names_rule=(?P<named>True|False) lines=(?P<lines>\d+) passed=(?P<passed>True|False)"
    r"(?: first=(?P<first>.*))?$"
)

Store = tuple[str, str, tuple[str, ...]]  # target, kind, BREAKS


def measure(stores: list[Store], seeds: range, jobs: int) -> dict[str, dict[int, Run]]:
    results: dict[str, dict[int, Run]] = {}
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = {
            pool.submit(run_once, target, kind, seed, breaks): (target, seed)
            for target, kind, breaks in stores
            for seed in seeds
        }
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            target, seed = futures[future]
            run = results.setdefault(target, {})[seed] = future.result()
            # each run's verdict as it ends, so that a long run interrupted still tells something
            print(
                f"{done}/{len(futures)} {target} seed={seed} caught={run.detected} "
                f"first_names_rule={run.first_names_rule} lines={run.lines} passed={run.passed} "
                f"first={run.first}",
                file=sys.stderr,
                flush=True,
            )
    return results


def read_logs(paths: list[str]) -> dict[str, dict[int, Run]]:
    """The runs recorded in earlier runs' stderr (a later record of a store and seed wins)."""
    results: dict[str, dict[int, Run]] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            found = LOG_LINE.match(line)
            if found:
                results.setdefault(found["target"], {})[int(found["seed"])] = Run(
                    detected=found["caught"] == "True",
                    first_names_rule=found["named"] == "True",
                    lines=int(found["lines"]),
                    passed=found["passed"] == "True",
                    first=found["first"] or "",
                )
    return results


def tabulate(
    zoo: list[Store], correct: list[Store], results: dict[str, dict[int, Run]], show_first: bool
) -> None:
    print(f"{'store':58} {'BREAKS':18} {'caught':>7} {'first':>6} {'lines med/max':>14}")
    single: list[tuple[str, float]] = []
    caught_all = named_all = measured = 0
    for target, _, breaks in zoo:
        runs = list(results.get(target, {}).values())
        if not runs:
            continue
        measured += 1
        caught = sum(r.detected for r in runs)
        named = sum(r.first_names_rule for r in runs)
        lines = [r.lines for r in runs]
        caught_all += caught == len(runs)
        named_all += named == len(runs)
        median = statistics.median(lines)
        if len(breaks) == 1:
            single.append((target, median))
        print(
            f"{target.removeprefix('tests.zoo.'):58} {','.join(breaks):18} "
            f"{caught:>3}/{len(runs):<3} {named:>2}/{len(runs):<3} {median:>6.0f}/{max(lines):<6}"
        )
        if show_first:
            for run in runs:
                if not run.first_names_rule:
                    print(f"    first failure: {run.first}")
    print()
    seeds = sorted({seed for runs in results.values() for seed in runs})
    print(f"seeds: {', '.join(map(str, seeds))}")
    if measured < len(zoo):
        print(f"broken stores with no run recorded: {len(zoo) - measured}")
    print(f"broken stores caught in every seed: {caught_all} of {measured}")
    print(f"first failure names the broken rule in every seed: {named_all} of {measured}")
    if single:
        medians = sorted(m for _, m in single)
        worst = sorted(single, key=lambda s: -s[1])[:3]
        print(
            f"single-bug stores ({len(single)}): median red run {statistics.median(medians):.0f} "
            f"lines; longest: "
            + ", ".join(f"{t.removeprefix('tests.zoo.')} {m:.0f}" for t, m in worst)
        )
    for target, _, _ in correct:
        runs = list(results.get(target, {}).values())
        if runs:
            print(f"correct store {target}: passed {sum(r.passed for r in runs)} of {len(runs)}")


def by_module(zoo: list[Store], results: dict[str, dict[int, Run]]) -> None:
    """The figures per zoo module, as the Markdown table of docs/verdicts.md."""
    print(
        "| zoo module | stores | caught in every seed | first failure names the rule in every "
        "seed | median red run (lines) | longest |"
    )
    print("|---|---|---|---|---|---|")
    modules: dict[str, list[list[Run]]] = {}
    for target, _, _ in zoo:
        runs = list(results.get(target, {}).values())
        if runs:
            modules.setdefault(target.split(":")[0].removeprefix("tests.zoo."), []).append(runs)
    for module, stores in modules.items():
        caught = sum(all(r.detected for r in runs) for runs in stores)
        named = sum(all(r.first_names_rule for r in runs) for runs in stores)
        lines = [r.lines for runs in stores for r in runs]
        print(
            f"| `{module}` | {len(stores)} | {caught} | {named} | "
            f"{statistics.median(lines):.0f} | {max(lines)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds per store")
    parser.add_argument(
        "--first-seed", type=int, default=1, help="seeds FIRST..FIRST+N-1 (to split a long run)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes at once")
    parser.add_argument(
        "--stores", default="", help="comma-separated parts of store names to keep (default: all)"
    )
    parser.add_argument("--skip-correct", action="store_true", help="leave out the reference")
    parser.add_argument(
        "--show-first", action="store_true", help="print each run's first failure as well"
    )
    parser.add_argument(
        "--by-module", action="store_true", help="also print the figures per zoo module (Markdown)"
    )
    parser.add_argument(
        "--from-log",
        nargs="+",
        metavar="STDERR",
        help="run nothing: tabulate the per-run lines earlier runs printed to stderr",
    )
    args = parser.parse_args()
    wanted = [w for w in args.stores.split(",") if w]
    zoo = [
        (target, getattr(cls, "KIND", "session"), tuple(vars(cls)["BREAKS"]))
        for target, cls in mutants()
        if not wanted or any(w in target for w in wanted)
    ]
    correct = [] if args.skip_correct else [(t, kind, ()) for t, kind in CORRECT]
    if args.from_log:
        results = read_logs(args.from_log)
    else:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        results = measure(zoo + correct, seeds, args.jobs)
    tabulate(zoo, correct, results, args.show_first)
    if args.by_module:
        print()
        by_module(zoo, results)


if __name__ == "__main__":
    main()
