"""What the plugin decides at configure time, shared by its hooks and fixtures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_asm_contract._plugin.dependencies import Failures
from pytest_asm_contract._plugin.loading import StoreFactory, StoreSpec
from pytest_asm_contract._plugin.report import ConformanceReport


@dataclasses.dataclass(frozen=True)
class SidePort:
    """A port built from the store under test, as an option names it."""

    option: str
    target: str | None
    builder: Callable[[Any], Any] | None


@dataclasses.dataclass
class ContractState:
    spec: StoreSpec | None
    factory: StoreFactory | None
    artifact_spec: StoreSpec | None
    artifact_factory: StoreFactory | None
    #: The side ports' builders, each taking the store under test (``--asm-query``,
    #: ``--asm-artifact-registry``): port name -> (module:attr, callable), None when not given.
    side_ports: dict[str, SidePort]
    profile: str
    seed: int
    selected_rules: frozenset[str]
    report_path: Path | None
    repro_dir: Path | None
    report: ConformanceReport
    #: Rules that failed so far; None with --asm-full-run (every check runs).
    failures: Failures | None = None


STATE = pytest.StashKey[ContractState]()
