"""The state machine alone catches every sequence-only broken store, with a short reproduction.

Each broken store in ``tests/zoo/sequences.py`` runs against the stateful suite module only
(``--asm-profile=ci``, a fixed seed): the run must fail, the report must mark the store's
``BREAKS`` rules failed, the reproduction must take at most ten store calls, and the reproducer
file written to ``--asm-repro-dir`` must fail on its own. The correct stores must pass.

A few cheaper checks of the machine's parts follow: a recorded example replays on a bare referee,
no profile waits for Hypothesis's shrinking, reproducer files import only the public package, and
the machine's modules import each other without cycles.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase

import pytest_asm_contract._machine as machine_package
import pytest_asm_contract.suite.test_stateful as stateful_module
from pytest_asm_contract._machine import (
    STATEFUL_RULES,
    machine_settings,
    replay,
    repro,
    run_contract_machine,
)
from pytest_asm_contract._plugin.profiles import PROFILES, hypothesis_settings
from tests.verdicts import Verdicts
from tests.zoo import mutants

STATEFUL_TEST = str(Path(stateful_module.__file__))
SEQUENCE_MUTANTS = [(t, c) for t, c in mutants() if t.startswith("tests.zoo.sequences:")]
SEED = 1
#: Seeds a broken store gets before the machine is said to miss it (see ``caught``). Six: with
#: three, LikeAgentFilter went unseen when other tests had loaded other code into the process.
SEEDS = (1, 2, 3, 4, 5, 6)
MAX_STEPS = 10
STEP_STARTS = ("store.", "result = store.", "with pytest.raises(")


def run_stateful(pytester: pytest.Pytester, store: str, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        STATEFUL_TEST,
        f"--asm-store={store}",
        "--asm-profile=ci",
        f"--asm-seed={SEED}",
        "--asm-report=report",
        "--asm-repro-dir=repro",
        "-p",
        "no:cacheprovider",
        *extra,
    )


def statuses(pytester: pytest.Pytester) -> dict[str, str]:
    return Verdicts.read(pytester.path / "report.json").statuses


def reproduction_steps(source: str) -> list[str]:
    """The store calls of a reproducer file's test body, one per step."""
    body = source.split("_reproduction(store):", 1)[1]
    return [
        line.strip()
        for line in body.splitlines()
        if line.startswith("    ")
        and not line.startswith("     ")
        and line.strip().startswith(STEP_STARTS)
    ]


@pytest.mark.parametrize("ci", ["true", None])
def test_the_seed_decides_the_run_on_ci_machines_too(ci: str | None) -> None:
    """Hypothesis picks a derandomized profile when CI is set; the kit's profiles must not
    inherit it, or a CI run explores other cases than ``--asm-seed`` replays locally."""
    probe = (
        "from pytest_asm_contract._plugin.profiles import PROFILES, hypothesis_settings; "
        "print([hypothesis_settings(p).derandomize for p in PROFILES])"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    found = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[False, False, False]", found.stdout + found.stderr


def caught(pytester: pytest.Pytester, target: str, store_class: type[Any], *options: str) -> str:
    """The output of the first run, over ``SEEDS``, that fails ``target`` on all its rules.

    Hypothesis now and then draws constants from the loaded code, so what one seed explores
    shifts when the code changes; a bug the machine finds should not hang on one lucky seed.
    """
    outputs = []
    for seed in SEEDS:
        shutil.rmtree(pytester.path / "repro", ignore_errors=True)
        result = run_stateful(pytester, target, f"--asm-seed={seed}", *options)
        outputs.append(result.stdout.str())
        found = statuses(pytester)
        if result.ret == 1 and all(found[rule] == "failed" for rule in store_class.BREAKS):
            failed = {rule for rule, status in found.items() if status == "failed"}
            allowed = {*store_class.BREAKS, *getattr(store_class, "ALSO", ())}
            assert failed <= allowed, f"{target} also failed {sorted(failed - allowed)}"
            return outputs[-1]
    raise AssertionError(
        f"{target} ({store_class.__doc__}) not caught on {store_class.BREAKS} with seeds "
        f"{SEEDS}:\n{outputs[-1]}"
    )


@pytest.mark.parametrize(
    ("target", "store_class"), SEQUENCE_MUTANTS, ids=[t for t, _ in SEQUENCE_MUTANTS]
)
def test_state_machine_alone_catches_sequence_bug(
    pytester: pytest.Pytester, target: str, store_class: type[Any]
) -> None:
    output = caught(pytester, target, store_class)
    for rule_id in store_class.BREAKS:
        assert f"{rule_id} violated" in output

    files = {path.name: path for path in (pytester.path / "repro").glob("test_asm_repro_*.py")}
    for rule_id in store_class.BREAKS:
        name = f"test_asm_repro_{rule_id.lower().replace('-', '_')}.py"
        assert name in files, f"no reproducer for {rule_id}: {sorted(files)}"
        steps = reproduction_steps(files[name].read_text())
        assert 1 <= len(steps) <= MAX_STEPS, "\n".join(steps)
        rerun = pytester.runpytest(str(files[name]), "-p", "no:cacheprovider")
        assert rerun.ret == 1, f"the reproducer for {rule_id} passes:\n{rerun.stdout.str()}"


def test_an_async_store_is_shown_with_awaited_calls(pytester: pytest.Pytester) -> None:
    """A sequence bug behind an async facade: the message and the reproducer await every call,
    and the reproducer (``asyncio.run``, no async plugin) fails on its own."""
    target = "tests.zoo.sequences:FailedBatchShiftsFlushNumbers"
    store = "tests.zoo.async_stores:AsyncFacadeOf"
    output = caught(pytester, store, dict(mutants())[target], f"--asm-store-option=target={target}")

    assert "await store." in output
    assert "    store." not in output.split("Shortest sequence found", 1)[1]
    source = (pytester.path / "repro" / "test_asm_repro_seq_1.py").read_text()
    assert "asyncio.run(main())" in source and "await store." in source
    rerun = pytester.runpytest("repro/test_asm_repro_seq_1.py", "-p", "no:cacheprovider")
    assert rerun.ret == 1, rerun.stdout.str()
    assert "SEQ-1" in rerun.stdout.str() or "assert" in rerun.stdout.str()


#: Broken stores outside the sequence zoo that only the state machine's newer steps reach: an
#: invalid single append (GapAfterFailedWrite) and agent ids holding LIKE wildcards
#: (LikeAgentFilter, which the example-based checks catch every time).
OTHER_MUTANTS = [
    "tests.zoo.sequencing:GapAfterFailedWrite",
    "tests.zoo.data:LikeAgentFilter",
]


@pytest.mark.parametrize("target", OTHER_MUTANTS)
def test_state_machine_alone_catches_other_zoo_bugs(pytester: pytest.Pytester, target: str) -> None:
    caught(pytester, target, dict(mutants())[target])


@pytest.mark.parametrize(
    "store",
    [
        "reference_stores.memory:InMemorySessionStore",
        "tests.stores.memory.strict:StrictInMemorySessionStore",
    ],
)
def test_correct_stores_pass_the_state_machine(pytester: pytest.Pytester, store: str) -> None:
    result = run_stateful(pytester, store, "-v")
    assert result.ret == 0, result.stdout.str()
    found = statuses(pytester)
    assert {found[rule] for rule in STATEFUL_RULES} == {"passed"}
    result.stdout.fnmatch_lines(["*asm-contract stateful coverage:*", "*flush stored*"])


def test_only_the_violated_rules_are_marked_failed(pytester: pytest.Pytester) -> None:
    run_stateful(pytester, "tests.zoo.sequences:LatestSequenceIgnoresFlush")
    found = statuses(pytester)
    failed = {rule for rule in STATEFUL_RULES if found[rule] == "failed"}
    assert failed == {"SEQ-2"}


def test_failure_message_names_rule_and_statement(pytester: pytest.Pytester) -> None:
    result = run_stateful(pytester, "tests.zoo.sequences:CounterNotResetOnDelete")
    result.stdout.fnmatch_lines(
        [
            "*SES-4 violated (MUST): delete_session removes the session with all its runs*",
            "*What happened:*",
            "*Shortest sequence found (* store calls; it fails against a fresh store):*",
            "*store.delete_session(*",
            "*Replay this search: pytest --asm-store=tests.zoo.sequences:CounterNotResetOnDelete*",
        ]
    )


def test_a_run_that_exercises_too_little_fails(pytester: pytest.Pytester) -> None:
    # A conftest only applies to tests below it: collect the suite's test from a local module.
    pytester.makeconftest(
        """
        import pytest
        from hypothesis import settings

        @pytest.fixture(scope="session")
        def asm_hypothesis_settings():
            return settings(max_examples=1, deadline=None)
        """
    )
    pytester.makepyfile(
        test_local="from pytest_asm_contract.suite.test_stateful import "
        "test_store_follows_the_contract_model  # noqa: F401\n"
    )
    result = pytester.runpytest(
        "test_local.py",
        "--asm-store=reference_stores.memory:InMemorySessionStore",
        "--asm-report=report",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*vacuous pass refused*never got to*"])
    found = statuses(pytester)
    assert "failed" in {found[rule] for rule in STATEFUL_RULES}


def test_reproducer_files_import_only_the_public_package() -> None:
    """A reproducer outlives the kit's private modules: it imports only ``pytest_asm_contract``."""
    source = repro.reproducer_module(
        rule_id="SES-4",
        statement="delete_session removes the session",
        what="the counter was not reset",
        code="store.delete_session('s1')",
        store_target="reference_stores.memory:InMemorySessionStore",
    )
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert {m for m in imported if m.startswith("pytest_asm_contract")} == {"pytest_asm_contract"}


def test_recorded_operations_replay_on_a_fresh_referee() -> None:
    """A violation's actions break the same rule when a bare referee replays them."""
    target = "tests.zoo.sequences:CounterNotResetOnDelete"
    store_class = dict(mutants())[target]
    result = run_contract_machine(
        store_class, hypothesis_settings("quick"), SEED, minimize_seconds=0
    )
    assert result.violations, result.coverage.table()
    violation = result.violations[0]
    assert violation.pools is not None
    again = replay(store_class, violation.pools, violation.actions)
    assert again is not None
    assert again.rule_id == violation.rule_id


@pytest.mark.parametrize("profile", PROFILES)
def test_no_profile_waits_for_hypothesis_shrinking(profile: str) -> None:
    """Hypothesis's shrinking has no public time limit; the kit's minimisation has one."""
    phases = machine_settings(hypothesis_settings(profile)).phases
    assert Phase.generate in phases
    assert Phase.shrink not in phases


def test_the_machine_modules_import_each_other_without_cycles() -> None:
    package = Path(machine_package.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == machine_package.__name__:
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                prefix, _, name = node.module.rpartition(".")
                if prefix == machine_package.__name__:
                    imported.add(name)
        graph[path.stem] = {name for name in imported if (package / f"{name}.py").exists()}
    graph.pop("__init__")
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
