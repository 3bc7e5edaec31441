"""The bundled contract suite: ``pytest --asm-store=...`` runs it, or bring it into a test module
of your own, next to an ``asm_store_factory`` fixture (docs/writing-a-store.md)::

    from pytest_asm_contract.suite import *  # noqa: F403

That one line imports every test of the suite and nothing else; the fixtures the tests use come
with the plugin. Each module holds the checks of one rule group.
"""

from pytest_asm_contract.suite.test_ambiguous import TestAmbiguousFailures
from pytest_asm_contract.suite.test_async_cancel import TestAsyncCancelAndBlocking
from pytest_asm_contract.suite.test_async_poll import TestAsyncPoll
from pytest_asm_contract.suite.test_async_tasks import TestAsyncTasks
from pytest_asm_contract.suite.test_backend_limits import TestBackendLimits
from pytest_asm_contract.suite.test_batch import TestBatch
from pytest_asm_contract.suite.test_concurrency import TestConcurrency
from pytest_asm_contract.suite.test_crash import TestCrash
from pytest_asm_contract.suite.test_data import TestData
from pytest_asm_contract.suite.test_driver_faults import TestDriverFaults
from pytest_asm_contract.suite.test_events import TestEvents
from pytest_asm_contract.suite.test_faults import TestFaults
from pytest_asm_contract.suite.test_flush import TestFlush
from pytest_asm_contract.suite.test_histories import TestProcessHistories, TestThreadHistories
from pytest_asm_contract.suite.test_idempotency import TestIdempotency
from pytest_asm_contract.suite.test_maintenance import TestMaintenance
from pytest_asm_contract.suite.test_maintenance_execute import TestMaintenanceExecute
from pytest_asm_contract.suite.test_maintenance_load import TestMaintenanceUnderLoad
from pytest_asm_contract.suite.test_maintenance_pruning import TestMaintenancePruning
from pytest_asm_contract.suite.test_maintenance_stateful import TestMaintenanceStateful
from pytest_asm_contract.suite.test_poll import TestPoll
from pytest_asm_contract.suite.test_port import TestPort
from pytest_asm_contract.suite.test_query import TestQuery
from pytest_asm_contract.suite.test_query_aggregates import TestQueryAggregates
from pytest_asm_contract.suite.test_query_concurrent import TestQueryConcurrentWrites
from pytest_asm_contract.suite.test_query_stateful import TestQueryStateful
from pytest_asm_contract.suite.test_registry import TestArtifactRegistry
from pytest_asm_contract.suite.test_runs import TestRuns
from pytest_asm_contract.suite.test_sequencing import TestSequencing
from pytest_asm_contract.suite.test_sessions import TestSessions
from pytest_asm_contract.suite.test_shared_backend import TestSharedBackend
from pytest_asm_contract.suite.test_stateful import test_store_follows_the_contract_model

__all__ = [
    "TestAmbiguousFailures",
    "TestArtifactRegistry",
    "TestAsyncCancelAndBlocking",
    "TestAsyncPoll",
    "TestAsyncTasks",
    "TestBackendLimits",
    "TestBatch",
    "TestConcurrency",
    "TestCrash",
    "TestData",
    "TestDriverFaults",
    "TestEvents",
    "TestFaults",
    "TestFlush",
    "TestIdempotency",
    "TestMaintenance",
    "TestMaintenanceExecute",
    "TestMaintenancePruning",
    "TestMaintenanceStateful",
    "TestMaintenanceUnderLoad",
    "TestPoll",
    "TestPort",
    "TestProcessHistories",
    "TestQuery",
    "TestQueryAggregates",
    "TestQueryConcurrentWrites",
    "TestQueryStateful",
    "TestRuns",
    "TestSequencing",
    "TestSessions",
    "TestSharedBackend",
    "TestThreadHistories",
    "test_store_follows_the_contract_model",
]
