"""The plugin's options, their ini equivalents, and the run's state read from them."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from pytest_asm_contract import __version__
from pytest_asm_contract._contract.rules import select_rules
from pytest_asm_contract._plugin.dependencies import Failures
from pytest_asm_contract._plugin.loading import (
    StoreFactory,
    StoreSpec,
    build_factory,
    check_artifact_store,
    check_session_store,
    parse_options,
    resolve_target,
)
from pytest_asm_contract._plugin.profiles import DEFAULT_PROFILE, PROFILES
from pytest_asm_contract._plugin.report import ConformanceReport
from pytest_asm_contract._plugin.state import ContractState, SidePort


def add_options(parser: pytest.Parser) -> None:
    """The plugin's command-line options (one group) and their ini equivalents."""
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
        "--asm-query",
        metavar="MODULE:ATTR",
        help="QueryAPI under test (QRY rules): a callable that takes the store under test and "
        "returns its QueryAPI, e.g. reference_stores.memory:InMemoryQueryAPI. (ini: asm_query)",
    )
    group.addoption(
        "--asm-artifact-registry",
        metavar="MODULE:ATTR",
        help="artifact registry under test (REG rules): a callable that takes the store under "
        "test and returns its registry, e.g. reference_stores.memory:InMemoryArtifactRegistry. "
        "(ini: asm_artifact_registry)",
    )
    group.addoption(
        "--asm-maintenance",
        metavar="MODULE:ATTR",
        help="Maintenance under test (MNT rules): a callable that takes the store under test and "
        "returns its Maintenance object, e.g. reference_stores.memory:InMemoryMaintenance. "
        "(ini: asm_maintenance)",
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
    group.addoption(
        "--asm-full-run",
        action="store_true",
        default=None,
        help="run every check even when a rule it builds on already failed (by default such "
        "checks say which rule to fix first). (ini: asm_full_run)",
    )
    parser.addini("asm_full_run", "run every check whatever failed before (true/false)", "bool")
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
    parser.addini("asm_query", "QueryAPI under test, as module:attr taking the store")
    parser.addini(
        "asm_artifact_registry", "artifact registry under test, as module:attr taking the store"
    )
    parser.addini("asm_maintenance", "Maintenance under test, as module:attr taking the store")
    parser.addini("asm_profile", "Hypothesis budget: quick, ci or deep", default=DEFAULT_PROFILE)
    parser.addini("asm_rules", "rules or groups to run, comma-separated")
    parser.addini("asm_report", "conformance report path (writes PATH.json, PATH.md, PATH.html)")


#: The ports built from the store under test: name -> the ini name of its option.
SIDE_PORTS = {
    "query": "asm_query",
    "artifact_registry": "asm_artifact_registry",
    "maintenance": "asm_maintenance",
}


def _side_port(config: pytest.Config, name: str) -> SidePort:
    ini = SIDE_PORTS[name]
    option = "--" + ini.replace("_", "-")
    target = _setting(config, ini) or None
    return SidePort(option, target, resolve_target(target, option) if target else None)


def _setting(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    return value if value not in (None, []) else config.getini(name)


def read_state(config: pytest.Config) -> ContractState:
    """The run's settings from options and ini, checked once: a bad one is a usage error.

    On the xdist controller the stores are built once, so that a broken factory or a non-store
    is one clear message instead of a failure per test; workers take the controller's seed.
    """
    worker_input = getattr(config, "workerinput", None)
    spec, factory = _store_from_settings(config, "asm_store")
    if spec and factory and worker_input is None:
        check_session_store(factory, spec)
    artifact_spec, artifact_factory = _store_from_settings(config, "asm_artifact_store")
    if artifact_spec and artifact_factory and worker_input is None:
        check_artifact_store(artifact_factory, artifact_spec)

    side_ports = {name: _side_port(config, name) for name in SIDE_PORTS}

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
    full_run = bool(_setting(config, "asm_full_run"))
    if full_run:
        failures = None
    elif worker_input is not None:
        failures = Failures(Path(worker_input["asm_failures"]))
    else:
        failures = Failures.create()
    return ContractState(
        spec=spec,
        factory=factory,
        artifact_spec=artifact_spec,
        artifact_factory=artifact_factory,
        side_ports=side_ports,
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
        failures=failures,
    )


def _store_from_settings(
    config: pytest.Config, name: str
) -> tuple[StoreSpec | None, StoreFactory | None]:
    target = _setting(config, name) or None
    if not target:
        return None, None
    spec = StoreSpec(target, parse_options(_setting(config, f"{name}_options") or []))
    return spec, build_factory(spec, "--" + name.replace("_", "-"))


__all__ = ["add_options", "read_state"]
