"""pytest-asm-contract: the conformance kit for Agent Session Manager session stores.

Everything a store author uses is importable from here; ``pytest_asm_contract.strategies``
(Hypothesis strategies) and ``pytest_asm_contract.suite`` (the bundled suite, for
``from pytest_asm_contract.suite import *``) are the other public modules. Modules whose names
start with an underscore are the kit's own and may change in any release. docs/api.md lists
every public name.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-asm-contract")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from pytest_asm_contract._contract.async_port import AsyncSessionStore
from pytest_asm_contract._contract.errors import (
    RETRYABLE_CODES,
    STORAGE_CODES,
    ErrorCode,
    StoreError,
    dependency_not_available,
    validation_error,
)
from pytest_asm_contract._contract.maintenance import (
    MAINTENANCE_OPERATIONS,
    Maintenance,
    MaintenanceReport,
    RetentionPolicy,
    as_retention_policy,
)
from pytest_asm_contract._contract.model import (
    ID_MAX_LENGTH,
    INT64_MAX,
    INT64_MIN,
    Event,
    EventType,
    ExecutionResult,
    JsonObject,
    JsonValue,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    utc_now,
)
from pytest_asm_contract._contract.port import (
    SESSION_STORE_OPERATIONS,
    ArtifactStore,
    Capability,
    Closable,
    FaultInjectable,
    Reopenable,
    ReopenSpec,
    SessionStore,
)
from pytest_asm_contract._contract.query import (
    LIMIT_MAX,
    QUERY_OPERATIONS,
    ArtifactMeta,
    CostSummary,
    EventPage,
    QueryAPI,
    RunPage,
    SessionExport,
    SessionPage,
    SessionStats,
    UsageFigures,
    UsageSummary,
)
from pytest_asm_contract._contract.registry import (
    REGISTRY_OPERATIONS,
    ArtifactRegistry,
    as_artifact_meta,
)
from pytest_asm_contract._contract.rules import RULES, Level, Rule, Scope, get_rule
from pytest_asm_contract._contract.usage import (
    PricingTable,
    ProviderPricing,
    Rates,
    RunUsage,
    TokenTotals,
    run_usage,
    token_totals,
)
from pytest_asm_contract._contract.validation import (
    EventQuery,
    Page,
    as_event,
    as_events,
    as_execution_result,
    as_run,
    as_session,
    check_id,
    run_status_filter,
    session_status_filter,
)
from pytest_asm_contract._faults.gate import BackendFault, FaultGate
from pytest_asm_contract._machine import (
    ContractViolation,
    StatefulResult,
    contract_machine,
    explain,
    run_contract_machine,
)
from pytest_asm_contract._machine.oracle import ContractModel, exact_difference
from pytest_asm_contract._plugin.marks import rule
from pytest_asm_contract._plugin.profiles import PROFILES, hypothesis_settings

# Exceptions show where they are imported from, in tracebacks and when pickled.
for _public in (StoreError, BackendFault):
    _public.__module__ = __name__
del _public

__all__ = [
    "ID_MAX_LENGTH",
    "INT64_MAX",
    "INT64_MIN",
    "LIMIT_MAX",
    "MAINTENANCE_OPERATIONS",
    "PROFILES",
    "QUERY_OPERATIONS",
    "REGISTRY_OPERATIONS",
    "RETRYABLE_CODES",
    "RULES",
    "SESSION_STORE_OPERATIONS",
    "STORAGE_CODES",
    "ArtifactMeta",
    "ArtifactRegistry",
    "ArtifactStore",
    "AsyncSessionStore",
    "BackendFault",
    "Capability",
    "Closable",
    "ContractModel",
    "ContractViolation",
    "CostSummary",
    "ErrorCode",
    "Event",
    "EventPage",
    "EventQuery",
    "EventType",
    "ExecutionResult",
    "FaultGate",
    "FaultInjectable",
    "JsonObject",
    "JsonValue",
    "Level",
    "Maintenance",
    "MaintenanceReport",
    "Page",
    "PricingTable",
    "ProviderPricing",
    "QueryAPI",
    "Rates",
    "ReopenSpec",
    "Reopenable",
    "RetentionPolicy",
    "Rule",
    "Run",
    "RunPage",
    "RunStatus",
    "RunUsage",
    "Scope",
    "Session",
    "SessionExport",
    "SessionPage",
    "SessionStats",
    "SessionStatus",
    "SessionStore",
    "StatefulResult",
    "StoreError",
    "TokenTotals",
    "UsageFigures",
    "UsageSummary",
    "__version__",
    "as_artifact_meta",
    "as_event",
    "as_events",
    "as_execution_result",
    "as_retention_policy",
    "as_run",
    "as_session",
    "check_id",
    "contract_machine",
    "dependency_not_available",
    "exact_difference",
    "explain",
    "get_rule",
    "hypothesis_settings",
    "rule",
    "run_contract_machine",
    "run_status_filter",
    "run_usage",
    "session_status_filter",
    "token_totals",
    "utc_now",
    "validation_error",
]
