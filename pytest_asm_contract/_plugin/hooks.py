"""The pytest plugin: options, the store fixtures, rule-aware collection, summary and report."""

from __future__ import annotations

import random
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_asm_contract import __version__
from pytest_asm_contract._contract.rules import get_rule, select_rules
from pytest_asm_contract._plugin.loading import (
    StoreFactory,
    StoreSpec,
    build_factory,
    check_artifact_store,
    check_session_store,
    parse_options,
)
from pytest_asm_contract._plugin.marks import MARKER, VIOLATED_PROPERTY, rules_of
from pytest_asm_contract._plugin.profiles import DEFAULT_PROFILE, PROFILES
from pytest_asm_contract._plugin.report import (
    FAILED,
    PASSED,
    RULES_PROPERTY,
    SKIPPED,
    ConformanceReport,
    TestOutcome,
)
from pytest_asm_contract._plugin.state import STATE, ContractState

SUITE_DIR = Path(__file__).parents[1] / "suite"
ARTIFACT_SUITE_DIR = Path(__file__).parents[1] / "artifact_suite"

# The fixtures live in their own module; pytest registers it along with this plugin.
pytest_plugins = ("pytest_asm_contract._plugin.fixtures",)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asm-contract", "ASM session-store contract")
    group.addoption(
        "--asm-store",
        metavar="MODULE:ATTR",
        help="session store under test: a class, or a callable returning a fresh empty store. "
        "With no test paths, runs the bundled contract suite. (ini: asm_store)",
    )
    group.addoption(
        "--asm-store-option",
        dest="asm_store_options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument (a string) for the store factory; repeatable. "
        "(ini: asm_store_options)",
    )
    group.addoption(
        "--asm-artifact-store",
        metavar="MODULE:ATTR",
        help="artifact store under test (ART rules): a class or a callable returning a fresh, "
        "empty store. With no test paths, runs the bundled artifact suite. "
        "(ini: asm_artifact_store)",
    )
    group.addoption(
        "--asm-artifact-store-option",
        dest="asm_artifact_store_options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument (a string) for the artifact store factory; repeatable. "
        "(ini: asm_artifact_store_options)",
    )
    group.addoption(
        "--asm-profile",
        choices=PROFILES,
        help=f"Hypothesis budget: {', '.join(PROFILES)} (default {DEFAULT_PROFILE}). "
        "(ini: asm_profile)",
    )
    group.addoption(
        "--asm-rules",
        metavar="IDS",
        help="run only these rules or groups, comma-separated, e.g. SEQ,FLUSH-2. (ini: asm_rules)",
    )
    group.addoption(
        "--asm-report",
        metavar="PATH",
        help="write the conformance report as PATH.json, PATH.md and PATH.html. (ini: asm_report)",
    )
    group.addoption(
        "--asm-seed",
        type=int,
        metavar="N",
        help="seed for generated workloads (printed in the header; pass it again to replay)",
    )
    group.addoption(
        "--asm-repro-dir",
        metavar="DIR",
        help="write a standalone reproducer test file into DIR for every failure the stateful "
        "tests find. (ini: asm_repro_dir)",
    )
    parser.addini("asm_repro_dir", "directory for reproducer test files")
    parser.addini("asm_store", "session store under test, as module:attr")
    parser.addini(
        "asm_store_options", "store factory keyword arguments, KEY=VALUE per line", "linelist"
    )
    parser.addini("asm_artifact_store", "artifact store under test, as module:attr")
    parser.addini(
        "asm_artifact_store_options",
        "artifact store factory keyword arguments, KEY=VALUE per line",
        "linelist",
    )
    parser.addini("asm_profile", "Hypothesis budget: quick, ci or deep", default=DEFAULT_PROFILE)
    parser.addini("asm_rules", "rules or groups to run, comma-separated")
    parser.addini("asm_report", "conformance report path (writes PATH.json, PATH.md, PATH.html)")


def _setting(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    return value if value not in (None, []) else config.getini(name)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*rule_ids, capability=None): the contract rules a test checks",
    )
    worker_input = getattr(config, "workerinput", None)
    spec, factory = _store_from_settings(config, "asm_store")
    if spec and factory and worker_input is None:
        check_session_store(factory, spec)
    artifact_spec, artifact_factory = _store_from_settings(config, "asm_artifact_store")
    if artifact_spec and artifact_factory and worker_input is None:
        check_artifact_store(artifact_factory, artifact_spec)

    profile = _setting(config, "asm_profile") or DEFAULT_PROFILE
    if profile not in PROFILES:
        raise pytest.UsageError(
            f"asm_profile must be one of {', '.join(PROFILES)}, got {profile!r}"
        )
    try:
        selected = select_rules(_setting(config, "asm_rules") or None)
    except ValueError as error:
        raise pytest.UsageError(f"--asm-rules: {error}") from None
    seed = config.getoption("asm_seed")
    if seed is None:
        seed = worker_input["asm_seed"] if worker_input else random.randrange(2**32)
    report_path = _setting(config, "asm_report") or None
    repro_dir = _setting(config, "asm_repro_dir") or None

    config.stash[STATE] = ContractState(
        spec=spec,
        factory=factory,
        artifact_spec=artifact_spec,
        artifact_factory=artifact_factory,
        profile=profile,
        seed=seed,
        selected_rules=selected,
        report_path=Path(report_path) if report_path else None,
        repro_dir=Path(repro_dir) if repro_dir else None,
        report=ConformanceReport(
            store=spec.label if spec else "asm_store_factory fixture",
            kit_version=__version__,
            seed=seed,
            profile=profile,
            selected_rules=selected,
        ),
    )
    config.pluginmanager.register(ReportRecorder(config.stash[STATE]), "asm-contract-report")
    # `pytest --asm-store=...` with no paths runs the bundled suite. This is deterministic, so
    # xdist workers, which run this hook again with the same arguments, collect the same tests.
    suites = [
        str(path)
        for option, path in (("asm_store", SUITE_DIR), ("asm_artifact_store", ARTIFACT_SUITE_DIR))
        if config.getoption(option)
    ]
    if suites and config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = suites


def _store_from_settings(
    config: pytest.Config, name: str
) -> tuple[StoreSpec | None, StoreFactory | None]:
    target = _setting(config, name) or None
    if not target:
        return None, None
    spec = StoreSpec(target, parse_options(_setting(config, f"{name}_options") or []))
    return spec, build_factory(spec, "--" + name.replace("_", "-"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker uses the controller's seed."""
    node.workerinput["asm_seed"] = node.config.stash[STATE].seed


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    if state.spec is None:
        return []
    return [
        f"asm-contract {__version__}: store {state.spec.label}; profile {state.profile}; "
        f"seed {state.seed} (replay with --asm-seed={state.seed})"
    ]


# -- rule ids in test ids, JUnit properties and selection ---------------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is not None:
        ids = tuple(marker.args)
        metafunc.parametrize("asm_rule_ids", [ids], ids=["+".join(ids)])


@pytest.fixture(autouse=True)
def asm_rule_ids(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The rule ids the current test checks (empty for tests that name no rule)."""
    return tuple(getattr(request, "param", ()))


#: Fixtures that hand a test the store under test (``--asm-store`` or the user's own factory).
STORE_FIXTURES = frozenset({"asm_store_factory", "asm_artifact_store_factory"})
STORE_UNDER_TEST_PROPERTY = "asm_store_under_test"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected_rules = config.stash[STATE].selected_rules
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        ids = rules_of(item)
        if not ids:
            keep.append(item)
            continue
        for rule_id in ids:
            get_rule(rule_id)
        item.user_properties.append((RULES_PROPERTY, ",".join(ids)))
        if STORE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.user_properties.append((STORE_UNDER_TEST_PROPERTY, True))
        (keep if selected_rules.intersection(ids) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# -- failures that explain the rule, and the conformance report ---------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    ids = rules_of(item)
    if report.failed and ids:
        text = []
        for rule_id in ids:
            rule = get_rule(rule_id)
            text.append(f"{rule.id} ({rule.level.value}): {rule.statement}")
            text.extend(f"  likely mistake: {hint}" for hint in rule.hints)
        report.sections.append(("ASM contract rule", "\n".join(text)))
    return report


def _message(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else report.longreprtext.strip().splitlines()[-1]


_DETAILS_LIMIT = 8000


class ReportRecorder:
    """Per-run plugin object: records rule outcomes (also from xdist workers) and prints them."""

    def __init__(self, state: ContractState) -> None:
        self.state = state
        self.store_under_test = state.spec is not None or state.artifact_spec is not None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        ids = properties.get(RULES_PROPERTY)
        if not isinstance(ids, str) or not ids:
            return
        self.store_under_test |= bool(properties.get(STORE_UNDER_TEST_PROPERTY))
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = PASSED if report.passed else (SKIPPED if report.skipped else FAILED)
        elif report.when == "teardown" and report.failed:
            outcome = FAILED
        else:
            return
        rule_ids = ids.split(",")
        violated = [v for k, v in report.user_properties if k == VIOLATED_PROPERTY]
        if outcome == FAILED and violated:
            # Only the rules the test saw broken failed; it says nothing about the others.
            rule_ids = [r for v in violated for r in str(v).split(",")]
        details = report.longreprtext[:_DETAILS_LIMIT] if outcome == FAILED else ""
        self.state.report.record(
            rule_ids, TestOutcome(report.nodeid, outcome, _message(report), details)
        )

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        report = self.state.report
        if hasattr(config, "workerinput") or not any(v.tests for v in report.verdicts.values()):
            return
        if not self.store_under_test and self.state.report_path is None:
            # Rule-marked tests ran, but none against a store under test (a project's own unit
            # tests of its store, say): a conformance table of one store would mislead.
            return
        terminalreporter.write_sep("=", "ASM contract conformance")
        for line in report.summary_lines():
            terminalreporter.write_line(line, red=line.startswith("FAIL"))
        if self.state.report_path is not None:
            written = report.write(self.state.report_path)
            terminalreporter.write_line("report: " + ", ".join(str(p) for p in written))
