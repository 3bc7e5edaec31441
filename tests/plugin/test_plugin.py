"""The plugin as a user meets it: options, ini, fixture override, xdist, usage errors, report."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET

import pytest

from pytest_asm_contract._contract.rules import RULES
from tests.verdicts import Verdicts

MEMORY = "reference_stores.memory:InMemorySessionStore"
QUICK = ("-p", "no:cacheprovider", "--asm-rules=SES")

STORES = textwrap.dedent(
    """
    from reference_stores.memory import InMemorySessionStore


    class V07Store(InMemorySessionStore):
        # The v0.7 port had neither append_events nor flush.
        append_events = None
        flush = None


    class NeedsOption(InMemorySessionStore):
        def __init__(self, *, namespace):
            assert namespace == "tenant-7", namespace
            super().__init__()


    def broken_factory():
        raise RuntimeError("cannot reach the database")


    class Exploding(InMemorySessionStore):
        def get_session(self, session_id):
            raise AssertionError("boom")


    def make_store():
        return InMemorySessionStore()
    """
)


@pytest.fixture
def stores(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(user_stores=STORES)
    pytester.syspathinsert()
    return pytester


def test_asm_store_runs_the_bundled_suite_and_prints_the_summary(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(f"--asm-store={MEMORY}", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "asm-contract *: store reference_stores.memory:InMemorySessionStore; profile ci; *",
            "*= ASM contract conformance =*",
            "ok   SES    Sessions *passed*",
        ]
    )
    assert result.parseoutcomes()["passed"] > 30


@pytest.mark.parametrize("verbosity", [(), ("-v",)], ids=["default", "verbose"])
def test_bundled_suite_progress_names_modules_only_when_verbose(
    pytester: pytest.Pytester, verbosity: tuple[str, ...]
) -> None:
    # The suite runs in rule order, so its modules recur: by default only dots, one line per 72
    # checks; -v restores pytest's per-test lines with their module.
    result = pytester.runpytest(f"--asm-store={MEMORY}", *QUICK, "--asm-rules=SES,RUN", *verbosity)
    assert result.ret == 0
    module_lines = [line for line in result.outlines if line.startswith("test_")]
    if verbosity:
        modules = {line.split("::")[0] for line in module_lines}
        assert modules >= {"test_sessions.py", "test_runs.py"}
    else:
        assert module_lines == []
        assert any(re.fullmatch(r"[.s]+ +\[ *\d+%\]", line) for line in result.outlines)


def test_explicit_paths_are_not_replaced(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_mine():\n    pass\n")
    result = pytester.runpytest(f"--asm-store={MEMORY}", "test_own.py", "-p", "no:cacheprovider")
    assert result.parseoutcomes()["passed"] == 1


def test_rule_ids_appear_in_test_ids(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(f"--asm-store={MEMORY}", "--collect-only", "-q", *QUICK)
    result.stdout.fnmatch_lines(["*test_unknown_session_raises_not_found[[]SES-2[]]*"])


def test_rule_ids_are_junit_properties(pytester: pytest.Pytester) -> None:
    pytester.runpytest(f"--asm-store={MEMORY}", "--junitxml=out.xml", *QUICK)
    tree = ET.parse(pytester.path / "out.xml")
    values = {p.get("value") for p in tree.iter("property") if p.get("name") == "asm_rules"}
    assert {"SES-1", "SES-3", "SES-4,SEQ-2"} <= values


def test_asm_rules_selects_groups_and_ids(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        f"--asm-store={MEMORY}",
        "--asm-rules=SES-2,PORT",
        "--asm-report=r",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 0
    verdicts = Verdicts.read(pytester.path / "r.json")
    assert verdicts.status("SES-2") == verdicts.status("PORT-1") == "passed"
    assert verdicts.status("SES-1") == "not_run"
    assert verdicts.rules["SES-1"]["reason"] == "not selected by --asm-rules"


def test_ini_option_and_imported_suite(stores: pytest.Pytester) -> None:
    stores.makeini(
        """
        [pytest]
        asm_store = user_stores:NeedsOption
        asm_store_options = namespace=tenant-7
        asm_rules = SES
        """
    )
    stores.makepyfile(
        test_contract="from pytest_asm_contract.suite.test_sessions import TestSessions\n"
    )
    result = stores.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    assert result.parseoutcomes()["passed"] >= 10


def test_store_options_reach_the_factory(stores: pytest.Pytester) -> None:
    result = stores.runpytest(
        "--asm-store=user_stores:NeedsOption", "--asm-store-option", "namespace=tenant-7", *QUICK
    )
    assert result.ret == 0


def _sessions_suite_on_own_factory(stores: pytest.Pytester) -> None:
    """The SES tests of the bundled suite, on the user's own ``asm_store_factory``."""
    stores.makeconftest(
        """
        import pytest
        from reference_stores.memory import InMemorySessionStore

        @pytest.fixture(scope="session")
        def asm_store_factory():
            return InMemorySessionStore
        """
    )
    stores.makepyfile(
        test_contract="from pytest_asm_contract.suite.test_sessions import TestSessions\n"
    )


def test_fixture_override_in_conftest(stores: pytest.Pytester) -> None:
    _sessions_suite_on_own_factory(stores)
    result = stores.runpytest("-p", "no:cacheprovider", "--asm-report=r")
    assert result.ret == 0
    verdicts = Verdicts.read(stores.path / "r.json")
    assert verdicts.store == "asm_store_factory fixture"
    assert verdicts.status("SES-1") == "passed"


def test_the_conformance_table_needs_a_store_under_test(stores: pytest.Pytester) -> None:
    # A project's own rule-marked unit tests, with no store under test: no table of one store.
    stores.makepyfile(
        test_unit="""
        from pytest_asm_contract._plugin.marks import rule

        @rule("MIG-1")
        def test_schema_check():
            pass
        """
    )
    result = stores.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    assert "ASM contract conformance" not in result.stdout.str()
    # The same tests next to contract tests on the user's own factory: the table is printed.
    _sessions_suite_on_own_factory(stores)
    result = stores.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*= ASM contract conformance =*", "ok   SES *", "ok   MIG *"])


def test_without_a_store_contract_tests_skip_with_a_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_contract="from pytest_asm_contract.suite.test_sessions import TestSessions\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.stdout.fnmatch_lines(["*no session store configured: pass --asm-store=module:attr*"])
    assert result.parseoutcomes()["skipped"] > 10


def test_runs_under_xdist(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        f"--asm-store={MEMORY}",
        "-n",
        "2",
        "--asm-report=r",
        "--asm-seed=7",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*= ASM contract conformance =*"])
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["seed"] == 7
    assert report["summary"]["failed"] == 0
    assert report["summary"]["passed"] >= 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--asm-store=no_colon"], "*--asm-store=no_colon: expected 'module:attr'*got 'no_colon'*"),
        (["--asm-store=no_such_module:Store"], "*cannot import module 'no_such_module'*"),
        (["--asm-store=user_stores:Missing"], "*module 'user_stores' has no attribute 'Missing'*"),
        (["--asm-store=user_stores:STORES_DOC"], "*not a class or a callable*"),
        (
            ["--asm-store=user_stores:broken_factory"],
            "*building the store raised RuntimeError: cannot reach the database*",
        ),
        (
            ["--asm-store=builtins:dict"],
            "*returned an object of type dict, which is not a session store*",
        ),
        (
            [f"--asm-store={MEMORY}", "--asm-rules=SQE"],
            "*--asm-rules: unknown rule or group 'SQE'*",
        ),
        ([f"--asm-store={MEMORY}", "--asm-store-option=novalue"], "*expects KEY=VALUE*"),
    ],
    ids=[
        "format",
        "import",
        "attr",
        "not-callable",
        "factory-raises",
        "not-a-store",
        "rules",
        "option",
    ],
)
def test_bad_usage_gives_one_clear_error(
    stores: pytest.Pytester, args: list[str], message: str
) -> None:
    (stores.path / "user_stores.py").write_text(STORES + "\nSTORES_DOC = 'a string'\n")
    result = stores.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_v07_store_gets_one_clear_failure(stores: pytest.Pytester) -> None:
    result = stores.runpytest("--asm-store=user_stores:V07Store", "-p", "no:cacheprovider", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*the store lacks append_events, flush of the 14 port operations. This looks like a "
            "v0.7-era store*docs/migrating-v07.md*",
        ]
    )
    assert "AttributeError" not in result.stdout.str()
    assert outcomes["skipped"] > 10


def test_failure_explains_the_rule(stores: pytest.Pytester) -> None:
    result = stores.runpytest("--asm-store=user_stores:Exploding", "--asm-full-run", *QUICK)
    result.stdout.fnmatch_lines(
        [
            "*expected StoreError(session_not_found), but a raw builtins.AssertionError escaped*",
            "*ASM contract rule*",
            "SES-2 (MUST): get_session of an unknown id raises session_not_found.",
            "  likely mistake: *",
        ]
    )
    result.stdout.fnmatch_lines(["FAIL SES *Sessions*failed*", "FAILED SES-2: *"])


ZERO = "tests.zoo.sequencing:SequenceStartsAtZero"


def test_a_broken_foundation_is_shown_first_and_its_dependents_are_not_run(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(f"--asm-store={ZERO}", "--asm-profile=quick", "-rs", *QUICK[:2])
    assert result.ret == 1
    out = result.stdout.str()
    first = out.index("ASM contract rule")
    assert out[first:].splitlines()[1].startswith("SEQ-1 (MUST)"), out[first : first + 500]
    result.stdout.fnmatch_lines(["SKIPPED *not run: fix SEQ-1 first*--asm-full-run*"])
    failed = re.findall(r"^FAILED (\S+):", out, flags=re.MULTILINE)
    assert failed == ["SEQ-1"], failed
    # Further failures of the rule take a line each; how to see them whole is said once.
    assert out.count("SEQ-1 fails here too: ") >= 2, out
    assert out.count("--asm-full-run shows every failure in full") == 1, out
    # Far fewer lines than the full run, which fails every check that reads a number.
    full = pytester.runpytest(f"--asm-store={ZERO}", "--asm-profile=quick", "--asm-full-run")
    full_failed = re.findall(r"^FAILED (\S+):", full.stdout.str(), flags=re.MULTILINE)
    assert "SEQ-1" in full_failed and len(full_failed) > 3, full_failed
    assert len(out.splitlines()) * 3 < len(full.stdout.lines)


def test_report_lists_every_rule_with_metadata(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        f"--asm-store={MEMORY}",
        "--asm-report=out/conformance.json",
        "--asm-seed=42",
        "--asm-profile=quick",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 0
    report = json.loads((pytester.path / "out" / "conformance.json").read_text())
    assert [r["id"] for r in report["rules"]] == [r.id for r in RULES]
    assert report["store"] == MEMORY
    assert report["seed"] == 42 and report["profile"] == "quick"
    assert report["kit_version"]
    for entry in report["rules"]:
        assert entry["status"] in {"passed", "failed", "skipped", "not_run"}
        assert entry["statement"]
        if entry["status"] in {"skipped", "not_run"}:
            assert entry["reason"], entry["id"]
    markdown = (pytester.path / "out" / "conformance.md").read_text()
    assert "| SES-1 | MUST | passed |" in markdown


def test_undeclared_capability_is_skipped_with_what_to_implement(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_cap="""
        from pytest_asm_contract import rule

        @rule("POLL-1")
        def test_needs_long_poll(asm_store):
            pass
        """
    )
    pytester.makepyfile(
        plain="""
        from reference_stores.memory import InMemorySessionStore

        class Plain(InMemorySessionStore):
            capabilities = frozenset()
        """
    )
    pytester.syspathinsert()
    result = pytester.runpytest("--asm-store=plain:Plain", "test_cap.py", "-rs")
    result.stdout.fnmatch_lines(
        ["*store does not declare capability 'long_poll'*add 'long_poll' to the store's*"]
    )


def test_artifact_store_runs_the_artifact_suite(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--asm-artifact-store=reference_stores.memory:InMemoryArtifactStore",
        "--asm-report=r",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 0
    verdicts = Verdicts.read(pytester.path / "r.json")
    assert verdicts.status("ART-1") == verdicts.status("ART-2") == "passed"
    assert verdicts.status("SES-1") == "not_run"


def test_a_session_store_is_not_an_artifact_store(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(f"--asm-artifact-store={MEMORY}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *which is not an artifact store (missing: put, get, delete)"]
    )
