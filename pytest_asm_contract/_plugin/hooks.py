"""The pytest plugin's hooks: options and state, rule ids in test ids, rule-aware collection and
failures that quote the rule. The plugin's entry point (``pytest11``)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_asm_contract import __version__
from pytest_asm_contract._contract.rules import get_rule
from pytest_asm_contract._plugin.marks import MARKER, rules_of
from pytest_asm_contract._plugin.options import add_options, read_state
from pytest_asm_contract._plugin.recorder import STORE_UNDER_TEST_PROPERTY, ReportRecorder
from pytest_asm_contract._plugin.report import RULES_PROPERTY
from pytest_asm_contract._plugin.state import STATE

SUITE_DIR = Path(__file__).parents[1] / "suite"
ARTIFACT_SUITE_DIR = Path(__file__).parents[1] / "artifact_suite"

# The fixtures live in their own module; pytest registers it along with this plugin.
pytest_plugins = ("pytest_asm_contract._plugin.fixtures",)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*rule_ids, capability=None): the contract rules a test checks",
    )
    config.stash[STATE] = read_state(config)
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
