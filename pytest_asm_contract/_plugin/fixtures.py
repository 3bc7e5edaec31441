"""Fixtures the plugin provides: stores under test, seed, Hypothesis settings."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from pytest_asm_contract._contract.port import (
    close_store,
    declared_capabilities,
    missing_operations,
)
from pytest_asm_contract._contract.rules import CAPABILITIES
from pytest_asm_contract._plugin.loading import StoreFactory
from pytest_asm_contract._plugin.marks import required_capabilities, rules_of
from pytest_asm_contract._plugin.profiles import hypothesis_settings
from pytest_asm_contract._plugin.state import STATE

MIGRATION_GUIDE = "docs/migrating-v07.md"


@pytest.fixture(scope="session")
def asm_store_factory(pytestconfig: pytest.Config) -> StoreFactory:
    """Returns a fresh, empty store per call. Override it in a conftest for custom setup."""
    factory = pytestconfig.stash[STATE].factory
    if factory is None:
        pytest.skip(
            "no session store configured: pass --asm-store=module:attr, set asm_store in the "
            "ini file, or override the asm_store_factory fixture"
        )
    return factory


@pytest.fixture
def asm_store(request: pytest.FixtureRequest, asm_store_factory: StoreFactory) -> Generator[Any]:
    """A fresh store for one test, skipped when the test needs what the store does not offer."""
    store = asm_store_factory()
    try:
        _skip_unless_applicable(request.node, store)
        yield store
    finally:
        close_store(store)


@pytest.fixture(scope="session")
def asm_artifact_store_factory(pytestconfig: pytest.Config) -> StoreFactory:
    """Returns a fresh, empty artifact store per call (``--asm-artifact-store``)."""
    factory = pytestconfig.stash[STATE].artifact_factory
    if factory is None:
        pytest.skip(
            "no artifact store configured: pass --asm-artifact-store=module:attr, set "
            "asm_artifact_store in the ini file, or override the asm_artifact_store_factory fixture"
        )
    return factory


@pytest.fixture
def asm_artifact_store(asm_artifact_store_factory: StoreFactory) -> Generator[Any]:
    store = asm_artifact_store_factory()
    try:
        yield store
    finally:
        close_store(store)


@pytest.fixture(scope="session")
def asm_seed(pytestconfig: pytest.Config) -> int:
    """The run's seed (``--asm-seed``), shared by all xdist workers."""
    return pytestconfig.stash[STATE].seed


@pytest.fixture(scope="session")
def asm_profile(pytestconfig: pytest.Config) -> str:
    return pytestconfig.stash[STATE].profile


@pytest.fixture(scope="session")
def asm_hypothesis_settings(pytestconfig: pytest.Config) -> settings:
    """Hypothesis settings of the chosen ``--asm-profile``, for generated checks."""
    return hypothesis_settings(pytestconfig.stash[STATE].profile)


@pytest.fixture(scope="session")
def asm_repro_dir(pytestconfig: pytest.Config) -> Path | None:
    """Where reproducer files go (``--asm-repro-dir``), or None."""
    return pytestconfig.stash[STATE].repro_dir


def _skip_unless_applicable(item: pytest.Item, store: object) -> None:
    missing = missing_operations(store)
    if missing and "PORT-1" not in rules_of(item):
        pytest.skip(
            f"the store does not implement the v0.8 port (missing: {', '.join(missing)}); "
            f"see the PORT-1 failure and {MIGRATION_GUIDE}"
        )
    declared = declared_capabilities(store)
    for capability in required_capabilities(item):
        if capability not in declared:
            pytest.skip(
                f"store does not declare capability {capability!r} "
                f"({CAPABILITIES[capability]}); implement it and add {capability!r} to the "
                "store's `capabilities` to run this check"
            )
