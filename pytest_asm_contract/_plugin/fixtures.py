"""Fixtures the plugin provides: stores under test and their hooks, seed, Hypothesis settings,
worker processes."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from pytest_asm_contract._concurrency.async_bridge import (
    AsyncStoreFacade,
    StoreBuilder,
    store_builder,
)
from pytest_asm_contract._concurrency.processes import ProcessPool
from pytest_asm_contract._contract.maintenance import MAINTENANCE_OPERATIONS
from pytest_asm_contract._contract.port import (
    FAULT_HOOK,
    HookError,
    ReopenSpec,
    close_store,
    declared_capabilities,
    missing_operations,
    reopen_spec,
)
from pytest_asm_contract._contract.query import QUERY_OPERATIONS
from pytest_asm_contract._contract.registry import REGISTRY_OPERATIONS
from pytest_asm_contract._contract.rules import CAPABILITIES
from pytest_asm_contract._faults.policies import Relay
from pytest_asm_contract._faults.targets import DRIVERS, DriverFaults, Injector, injector_for
from pytest_asm_contract._plugin.loading import StoreFactory
from pytest_asm_contract._plugin.marks import mark_violated, required_capabilities, rules_of
from pytest_asm_contract._plugin.profiles import hypothesis_settings
from pytest_asm_contract._plugin.recorder import ASYNC_STORE_PROPERTY
from pytest_asm_contract._plugin.state import STATE

MIGRATION_GUIDE = "docs/migrating-v07.md"


@pytest.fixture(scope="session")
def asm_store_factory(pytestconfig: pytest.Config) -> StoreFactory:
    """Returns a fresh, empty store per call. Override it in a conftest for custom setup: the
    checks build through ``asm_store_builder``, which wraps what an override returns."""
    factory = pytestconfig.stash[STATE].factory
    if factory is None:
        pytest.skip(
            "no session store configured: pass --asm-store=module:attr, set asm_store in the "
            "ini file, or override the asm_store_factory fixture"
        )
    return factory


@pytest.fixture
def asm_store_builder(asm_store_factory: StoreFactory) -> StoreFactory:
    """``asm_store_factory`` (the kit's, or a conftest's override) as the checks build through
    it: an async store it returns comes back behind the kit's facade, on an event loop of its
    own (docs/async.md). Function scope, so that an override of any scope fits."""
    if isinstance(asm_store_factory, StoreBuilder):
        return asm_store_factory  # the kit's own: the stateful check compares identities
    return store_builder(asm_store_factory)


@pytest.fixture
def asm_store(request: pytest.FixtureRequest, asm_store_builder: StoreFactory) -> Generator[Any]:
    """A fresh store for one test, skipped when the test needs what the store does not offer."""
    store = asm_store_builder()
    is_async = isinstance(store, AsyncStoreFacade)
    request.node.user_properties.append((ASYNC_STORE_PROPERTY, is_async))  # for the report
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


def _side_builder(config: pytest.Config, name: str, what: str, example: str) -> Any:
    """The builder of side port ``name`` (``--asm-query``, ...), or a skip saying how to set it."""
    port = config.stash[STATE].side_ports[name]
    if port.builder is None:
        pytest.skip(
            f"no {what} configured: pass {port.option}=module:attr (a callable taking the store "
            f"under test, e.g. {example}), set asm_{name} in the ini file, or override the "
            f"asm_{name}_factory fixture"
        )
    return port.builder


def _side_object(
    store: Any, request: pytest.FixtureRequest, name: str, what: str, operations: tuple[str, ...]
) -> Any:
    """Side port ``name`` built from ``store``. A store whose backend cannot offer it says why in
    ``asm_<name>_unavailable`` (a string); the checks then skip with that reason."""
    unavailable = getattr(store, f"asm_{name}_unavailable", None)
    if isinstance(unavailable, str) and unavailable:
        pytest.skip(f"{type(store).__name__} offers no {what}: {unavailable}")
    factory: Callable[[Any], Any] = request.getfixturevalue(f"asm_{name}_factory")
    built = factory(store)
    missing = [op for op in operations if not callable(getattr(built, op, None))]
    if missing:
        pytest.fail(
            f"the {what} ({type(built).__name__}) lacks {', '.join(missing)}: it offers the "
            "operations docs/api.md lists",
            pytrace=False,
        )
    return built


@pytest.fixture(scope="session")
def asm_query_factory(pytestconfig: pytest.Config) -> Callable[[Any], Any]:
    """Builds the QueryAPI under test from a store (``--asm-query``). Override it in a conftest
    for custom setup."""
    builder: Callable[[Any], Any] = _side_builder(
        pytestconfig, "query", "QueryAPI", "reference_stores.memory:InMemoryQueryAPI"
    )
    return builder


@pytest.fixture
def asm_query(asm_store: Any, request: pytest.FixtureRequest) -> Any:
    """The QueryAPI built from this test's store: it sees exactly what ``asm_store`` holds
    (skipped with the store's reason when it sets ``asm_query_unavailable``)."""
    return _side_object(asm_store, request, "query", "QueryAPI", QUERY_OPERATIONS)


@pytest.fixture(scope="session")
def asm_artifact_registry_factory(pytestconfig: pytest.Config) -> Callable[[Any], Any]:
    """Builds the artifact registry under test from a store (``--asm-artifact-registry``).
    Override it in a conftest for custom setup."""
    builder: Callable[[Any], Any] = _side_builder(
        pytestconfig,
        "artifact_registry",
        "artifact registry",
        "reference_stores.memory:InMemoryArtifactRegistry",
    )
    return builder


@pytest.fixture
def asm_artifact_registry(asm_store: Any, request: pytest.FixtureRequest) -> Any:
    """The artifact registry built from this test's store: it keeps its records in the store's
    backend (skipped with the store's reason when it sets ``asm_artifact_registry_unavailable``)."""
    return _side_object(
        asm_store, request, "artifact_registry", "artifact registry", REGISTRY_OPERATIONS
    )


@pytest.fixture(scope="session")
def asm_maintenance_factory(pytestconfig: pytest.Config) -> Callable[[Any], Any]:
    """Builds the Maintenance object under test from a store (``--asm-maintenance``). Override
    it in a conftest for custom setup."""
    builder: Callable[[Any], Any] = _side_builder(
        pytestconfig, "maintenance", "Maintenance", "reference_stores.memory:InMemoryMaintenance"
    )
    return builder


@pytest.fixture
def asm_maintenance(asm_store: Any, request: pytest.FixtureRequest) -> Any:
    """The Maintenance object built from this test's store: it works on the store's backend
    (skipped with the store's reason when it sets ``asm_maintenance_unavailable``)."""
    return _side_object(asm_store, request, "maintenance", "Maintenance", MAINTENANCE_OPERATIONS)


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


@pytest.fixture
def asm_reopen_spec(asm_store: Any) -> ReopenSpec:
    """How worker processes open the store under test; fails when the store cannot say."""
    try:
        return reopen_spec(asm_store)
    except HookError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)


@pytest.fixture
def asm_fault_injector(request: pytest.FixtureRequest, asm_store: Any) -> Injector:
    """Arms the store's fault targets with a policy; skips, saying why, without the hook."""
    try:
        injector = injector_for(asm_store)
    except HookError as error:
        message = str(error)
    else:
        if injector is not None:
            return injector
        message = ""
    if message:
        mark_violated(request.node, "FLUSH-3")  # the hook is FLUSH-3's, whatever else is checked
        pytest.fail(message, pytrace=False)
    pytest.skip(
        f"the store offers no fault hook ({FAULT_HOOK}() returning its SQLAlchemy Engine, "
        "botocore client or FaultGate), so the kit cannot fail its backend writes; see "
        "docs/fault-injection.md"
    )


@pytest.fixture
def asm_driver_faults(
    request: pytest.FixtureRequest, asm_store_builder: StoreFactory
) -> Generator[DriverFaults]:
    """A fresh store built while the kit watches the database drivers (a sqlite3 connection is
    only seen when opened then), with the drivers instrumented until the store is closed."""
    with DRIVERS.armed(Relay()) as relay:
        store = asm_store_builder()
        try:
            _skip_unless_applicable(request.node, store)
            yield DriverFaults(store, relay)
        finally:
            close_store(store)


class ProcessPools:
    """Worker pools started on first use (skipped tests cost nothing), one per topology."""

    def __init__(self) -> None:
        self._pools: dict[tuple[int, int | None], ProcessPool] = {}

    def get(self, size: int, parties: int | None = None) -> ProcessPool:
        key = (size, parties)
        pool = self._pools.get(key)
        if pool is not None and not pool.alive:
            pool.stop()  # a worker died in an earlier test: start afresh
            pool = None
        if pool is None:
            pool = self._pools[key] = ProcessPool(size, parties)
        return pool

    def stop(self) -> None:
        for pool in self._pools.values():
            pool.stop()
        self._pools.clear()


@pytest.fixture(scope="module")
def asm_process_pools() -> Iterator[ProcessPools]:
    """Worker processes for the checks across processes, stopped after the module."""
    pools = ProcessPools()
    yield pools
    pools.stop()


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
