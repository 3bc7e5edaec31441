"""How the kit's verdicts read: every broken store of the zoo, and the reference stores, over seeds.

For each broken store (``tests/zoo``) and seed, the bundled suite runs as a user runs it
(``pytest --asm-store=... --asm-seed=N``, default options otherwise) and the script records:

* detection: did every rule in the store's ``BREAKS`` fail (the JSON report says);
* the first failure printed: does its header or its "ASM contract rule" section name one of
  those rules (what a store author reads first);
* the length of the red run's output, in lines.

The correct reference stores run over the same seeds; they must pass every time. It prints one
row per store and the totals::

    python benchmarks/verdicts.py                 # 10 seeds, every store (about an hour)
    python benchmarks/verdicts.py --seeds 2 --stores sessions,SequenceStartsAtZero
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
            env={**os.environ, "PYTHONPATH": str(ROOT)},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N per store")
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes at once")
    parser.add_argument(
        "--stores", default="", help="comma-separated parts of store names to keep (default: all)"
    )
    parser.add_argument("--skip-correct", action="store_true", help="leave out the reference")
    parser.add_argument(
        "--show-first", action="store_true", help="print each run's first failure as well"
    )
    args = parser.parse_args()
    wanted = [w for w in args.stores.split(",") if w]
    zoo = [
        (target, getattr(cls, "KIND", "session"), tuple(vars(cls)["BREAKS"]))
        for target, cls in mutants()
        if not wanted or any(w in target for w in wanted)
    ]
    correct = [] if args.skip_correct else [(t, kind, ()) for t, kind in CORRECT]
    jobs = [(store, seed) for store in zoo + correct for seed in range(1, args.seeds + 1)]
    results: dict[str, list[Run]] = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(run_once, target, kind, seed, breaks): (target, seed)
            for (target, kind, breaks), seed in jobs
        }
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            target, seed = futures[future]
            run = future.result()
            results.setdefault(target, []).append(run)
            # each run's verdict as it ends, so that a long run interrupted still tells something
            print(
                f"{done}/{len(futures)} {target} seed={seed} caught={run.detected} "
                f"first_names_rule={run.first_names_rule} lines={run.lines} passed={run.passed}",
                file=sys.stderr,
                flush=True,
            )

    print(f"{'store':58} {'BREAKS':18} {'caught':>7} {'first':>6} {'lines med/max':>14}")
    single: list[tuple[str, float]] = []
    caught_all = named_all = 0
    for target, _, breaks in zoo:
        runs = results[target]
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
        if args.show_first:
            for run in runs:
                if not run.first_names_rule:
                    print(f"    first failure: {run.first}")
    print()
    print(f"broken stores caught in every seed: {caught_all} of {len(zoo)}")
    print(f"first failure names the broken rule in every seed: {named_all} of {len(zoo)}")
    if single:
        medians = sorted(m for _, m in single)
        worst = sorted(single, key=lambda s: -s[1])[:3]
        print(
            f"single-bug stores ({len(single)}): median red run {statistics.median(medians):.0f} "
            f"lines; longest: "
            + ", ".join(f"{t.removeprefix('tests.zoo.')} {m:.0f}" for t, m in worst)
        )
    for target, _, _ in correct:
        runs = results[target]
        print(f"correct store {target}: passed {sum(r.passed for r in runs)} of {len(runs)}")


if __name__ == "__main__":
    main()
