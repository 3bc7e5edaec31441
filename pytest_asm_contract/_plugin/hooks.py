"""The pytest plugin's hooks: options and state, rule ids in test ids, rule-aware collection and
failures that quote the rule. The plugin's entry point (``pytest11``)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_asm_contract import __version__
from pytest_asm_contract._contract.rules import get_rule
from pytest_asm_contract._plugin.dependencies import failed_by, run_order, skip_if_blocked
from pytest_asm_contract._plugin.explain import explain
from pytest_asm_contract._plugin.marks import MARKER, rules_of, violated_rules
from pytest_asm_contract._plugin.options import add_options, read_state
from pytest_asm_contract._plugin.recorder import STORE_UNDER_TEST_PROPERTY, ReportRecorder
from pytest_asm_contract._plugin.report import RULES_PROPERTY
from pytest_asm_contract._plugin.state import STATE

#: Rules whose first failure this process showed in full.
SHOWN = pytest.StashKey[set[str]]()
#: Whether this process already said how to see repeat failures in full.
HINTED = pytest.StashKey[bool]()
#: Whether this run is the bundled suite (``--asm-store`` with no test paths).
BUNDLED = pytest.StashKey[bool]()
#: Whether a check of the contract (a test naming rules) is running: its comparisons are
#: explained short (``explain.py``).
IN_CHECK = pytest.StashKey[bool]()
SUITE_DIR = Path(__file__).parents[1] / "suite"
ARTIFACT_SUITE_DIR = Path(__file__).parents[1] / "artifact_suite"

# The fixtures live in their own module; pytest registers it along with this plugin.
pytest_plugins = ("pytest_asm_contract._plugin.fixtures",)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*rule_ids, capability=None, generated=False): the contract rules a test checks",
    )
    state = config.stash[STATE] = read_state(config)
    config.stash[SHOWN] = set()
    config.stash[HINTED] = False
    config.pluginmanager.register(ReportRecorder(state), "asm-contract-report")
    if (state.spec or state.artifact_spec) and config.option.tbstyle == "auto":
        # The suite's own frames say little to a store author: the message and the line do.
        config.option.tbstyle = "short"
    # `pytest --asm-store=...` with no paths runs the bundled suite. This is deterministic, so
    # xdist workers, which run this hook again with the same arguments, collect the same tests.
    suites = [
        str(path)
        for option, path in (("asm_store", SUITE_DIR), ("asm_artifact_store", ARTIFACT_SUITE_DIR))
        if config.getoption(option)
    ]
    config.stash[BUNDLED] = bool(suites) and config.args_source != pytest.Config.ArgsSource.ARGS
    if config.stash[BUNDLED]:
        config.args = suites


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The bundled suite's progress as dots without file names (what ``-q`` prints).

    It runs in rule order, so its modules recur: one progress line per recurrence would be half
    of a red run's output, ahead of the failure. ``-v`` (or any explicit verbosity) keeps
    pytest's own style.
    """
    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if config.stash.get(BUNDLED, False) and reporter is not None and config.option.verbose == 0:
        reporter.showfspath = False


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.failures is not None and not hasattr(config, "workerinput"):
        state.failures.remove()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker uses the controller's seed and shares its record of failed rules."""
    state = node.config.stash[STATE]
    node.workerinput["asm_seed"] = state.seed
    if state.failures is not None:
        node.workerinput["asm_failures"] = str(state.failures.directory)


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
    # Foundations first, generated workloads last: a red run leads with its root cause.
    items[:] = run_order(keep)


def _against_the_store(item: pytest.Item) -> bool:
    return (STORE_UNDER_TEST_PROPERTY, True) in item.user_properties


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    failures = item.config.stash[STATE].failures
    if failures is not None and _against_the_store(item):
        skip_if_blocked(item, failures)


# -- failures that explain the rule, and the conformance report ---------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    item.config.stash[IN_CHECK] = bool(rules_of(item))
    try:
        return (yield)
    finally:
        item.config.stash[IN_CHECK] = False


@pytest.hookimpl(tryfirst=True)
def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    if not config.stash.get(IN_CHECK, False):
        return None
    if config.get_verbosity(pytest.Config.VERBOSITY_ASSERTIONS) >= 2:
        return None  # -vv: pytest's full diff
    return explain(op, left, right)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    ids = rules_of(item)
    if not (report.failed and ids):
        return report
    state = item.config.stash[STATE]
    if state.failures is not None and _against_the_store(item):
        state.failures.record(failed_by(item))
    # Only the rules the test saw broken, when it said which (the generated checks do).
    broken = violated_rules(item) or list(ids)
    shown = item.config.stash[SHOWN]
    if state.failures is not None and set(broken) <= shown and call.excinfo is not None:
        # The first failure of these rules was shown in full; this one in a line.
        message = call.excinfo.exconly().splitlines()[0] if call.excinfo.exconly() else ""
        short = f"{'+'.join(broken)} fails here too: {message}"
        if not item.config.stash[HINTED]:
            item.config.stash[HINTED] = True
            short += (
                "\n(the rule's first failure, above, shows the details; --asm-full-run shows "
                "every failure in full)"
            )
        report.longrepr = short
        report.sections = []
        return report
    shown.update(broken)
    text = []
    for rule_id in broken:
        rule = get_rule(rule_id)
        text.append(f"{rule.id} ({rule.level.value}): {rule.statement}")
        text.extend(f"  likely mistake: {hint}" for hint in rule.hints)
    report.sections.append(("ASM contract rule", "\n".join(text)))
    return report
