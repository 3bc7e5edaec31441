"""A zoo of deliberately broken stores: each must make the kit fail on the rule it breaks.

Every module here defines store classes with a ``BREAKS`` tuple (the rule ids the kit must report
as failed), optionally an ``ALSO`` tuple (collateral rules the mistake drags along, which may
fail too) and a docstring naming the mistake. ``tests/plugin/test_zoo.py`` finds them all. A store
on a server names it with a ``service_problem()`` class method (None when the server answers,
else why not), so that its check is skipped, saying why, when the server is down.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

#: The rules of the history checks (tests/plugin, the suite's TestThreadHistories and the
#: ambiguous-failure histories, which judge FLUSH-4 too). A race surfaces in whichever of them
#: the interleaving of a run shows first, so a broken store whose bug is a race lists them all as
#: collateral.
HISTORY_RULES: tuple[str, ...] = (
    "BATCH-5",
    "CONC-1",
    "CONC-2",
    "FLUSH-4",
    "FLUSH-5",
    "IDEM-1",
    "IDEM-4",
    "SEQ-5",
)

#: Every broken store of the zoo, so that one that stops being found (a renamed module, a lost
#: ``BREAKS``) fails ``tests/plugin/test_zoo.py`` instead of silently leaving its rule unchecked.
EXPECTED: frozenset[str] = frozenset(
    {
        "tests.zoo.artifacts:CaseInsensitiveKeys",
        "tests.zoo.artifacts:DeleteMissingRaises",
        "tests.zoo.artifacts:FirstPutWins",
        "tests.zoo.artifacts:NormalisedKeys",
        "tests.zoo.artifacts:SharedNamespace",
        "tests.zoo.async_broken:BatchAwaitsPerEvent",
        "tests.zoo.async_broken:FlushInTwoTransactions",
        "tests.zoo.async_broken:SyncSqliteInAsync",
        "tests.zoo.async_poll:CancelledWaiterSwallowsWakeup",
        "tests.zoo.async_stores:AwaitBetweenCountAndWrite",
        "tests.zoo.batch:BatchAppendedOneByOne",
        "tests.zoo.batch:BatchNotAtomic",
        "tests.zoo.batch:BatchNumbersConsumedOnFailure",
        "tests.zoo.batch:BatchRawExceptionOnBadInput",
        "tests.zoo.batch:BatchSortedById",
        "tests.zoo.batch:EmptyBatchRaises",
        "tests.zoo.batch:MixedBatchOneCounter",
        "tests.zoo.concurrency:AppendWithoutLock",
        "tests.zoo.concurrency:CounterAheadOfEvents",
        "tests.zoo.data:CaseInsensitiveIds",
        "tests.zoo.data:EventNumbersThroughFloat",
        "tests.zoo.data:LikeAgentFilter",
        "tests.zoo.data:TagsStoredSorted",
        "tests.zoo.data:TimestampsAsFloatSeconds",
        "tests.zoo.data:TimestampsInMilliseconds",
        "tests.zoo.data:UnicodeNormalisedIds",
        "tests.zoo.events:AfterInclusive",
        "tests.zoo.events:AppendEventSkipsIdempotency",
        "tests.zoo.events:BeforeInclusive",
        "tests.zoo.events:EventIntegrityNotKept",
        "tests.zoo.events:LimitBeforeFilters",
        "tests.zoo.events:LimitZeroMeansAll",
        "tests.zoo.events:NaiveSinceAccepted",
        "tests.zoo.events:OrderedByTimestamp",
        "tests.zoo.events:SinceStrict",
        "tests.zoo.events:StoredEventsHandedOut",
        "tests.zoo.flush:BackendErrorEscapes",
        "tests.zoo.flush:FlushAppliesAsItGoes",
        "tests.zoo.flush:FlushHookOnTheWrongObject",
        "tests.zoo.flush:FlushNotAtomic",
        "tests.zoo.flush:FlushOnlyEvents",
        "tests.zoo.flush:FlushRawKeyError",
        "tests.zoo.flush:FlushStoresEventsTwice",
        "tests.zoo.flush:FlushVisibleInSteps",
        "tests.zoo.flush:FlushWithoutMembershipChecks",
        "tests.zoo.histories:BatchNumberedFromStaleCount",
        "tests.zoo.histories:DedupeAgainstRecentTail",
        "tests.zoo.histories:FlushEventsInTwoSteps",
        "tests.zoo.histories:PublishedOutOfOrder",
        "tests.zoo.histories:QuietAppendHandedOff",
        "tests.zoo.idempotency:CheckThenInsert",
        "tests.zoo.idempotency:DuplicatePerSession",
        "tests.zoo.idempotency:DuplicateRenumbered",
        "tests.zoo.idempotency:FlushStoresDuplicates",
        "tests.zoo.idempotency:LastWriteWins",
        "tests.zoo.idempotency:NoInBatchDedupe",
        "tests.zoo.maintenance:ExecuteStopsAtFirstFailure",
        "tests.zoo.maintenance:HardDeleteKeepsArtifactMetadata",
        "tests.zoo.maintenance:HealthFlagsHoles",
        "tests.zoo.maintenance:PruneLowersCounter",
        "tests.zoo.maintenance:PruneRemovesRunStarted",
        "tests.zoo.maintenance:PruneRenumbers",
        "tests.zoo.maintenance:SoftDeleteTouchesUpdatedAt",
        "tests.zoo.maintenance:SoftDeletesExemptTagged",
        "tests.zoo.maintenance_races:PruneOneByOne",
        "tests.zoo.poll:BlocksWithoutLongPoll",
        "tests.zoo.poll:LongPollNeverBlocks",
        "tests.zoo.dict_store:LocklessDictStore",
        "tests.zoo.poll:PollIgnoresFilters",
        "tests.zoo.poll:PollReturnsEarly",
        "tests.zoo.poll:RejectsWaitTimeout",
        "tests.zoo.queries:CostIgnoresCostUsd",
        "tests.zoo.queries:CountEventsIgnoresSessions",
        "tests.zoo.queries:CreatedAfterInclusive",
        "tests.zoo.queries:CursorIgnoresFilters",
        "tests.zoo.queries:CursorIgnoresOrder",
        "tests.zoo.queries:DeletedSessionsIncluded",
        "tests.zoo.queries:LimitAboveMaximumCapped",
        "tests.zoo.queries:OffsetCursor",
        "tests.zoo.queries:PrefixPicksShortestKey",
        "tests.zoo.queries:ProvidersUsedInRunOrder",
        "tests.zoo.queries:StaleCopy",
        "tests.zoo.queries:SumsWrapAt64Bits",
        "tests.zoo.queries:ProviderMatchedLoosely",
        "tests.zoo.queries:ExportWithoutArtifacts",
        "tests.zoo.registries:CreatedAtToTheMillisecond",
        "tests.zoo.registries:ListedInInsertionOrder",
        "tests.zoo.registries:RecordsOfItsOwn",
        "tests.zoo.registries:RegisterAddsASecondRecord",
        "tests.zoo.queries:TagsAnyOf",
        "tests.zoo.queries:TiesBrokenAscendingInDescendingOrders",
        "tests.zoo.queries:TotalCountAfterLimit",
        "tests.zoo.queries:UsageTotalIsInputPlusOutput",
        "tests.zoo.redis_store:BatchScriptPerSession",
        "tests.zoo.redis_store:BatchScriptPerSessionGateEach",
        "tests.zoo.redis_store:BatchScriptPerSessionGateOnce",
        "tests.zoo.runs:FirstRunningRunIsActive",
        "tests.zoo.runs:MissingRunIsNone",
        "tests.zoo.runs:PendingRunIsActive",
        "tests.zoo.runs:RunIntegrityNotKept",
        "tests.zoo.runs:RunListIgnoresOffset",
        "tests.zoo.runs:RunSaveAppends",
        "tests.zoo.runs:RunStatusFilterUnchecked",
        "tests.zoo.runs:RunsInInsertionOrder",
        "tests.zoo.runs:StaleActiveRunCache",
        "tests.zoo.sequences:ActiveRunStuckAfterCompletion",
        "tests.zoo.sequences:BatchRepeatOnlyAdjacent",
        "tests.zoo.sequences:CounterNotResetOnDelete",
        "tests.zoo.sequences:CounterSlotsShiftOnDelete",
        "tests.zoo.sequences:FailedBatchShiftsFlushNumbers",
        "tests.zoo.sequences:FlushRenumbersKnownIds",
        "tests.zoo.sequences:FlushedRunsSurviveDelete",
        "tests.zoo.sequences:IdUniquePerSessionOnly",
        "tests.zoo.sequences:LastWriteWinsOnSingleAppend",
        "tests.zoo.sequences:LatestSequenceIgnoresFlush",
        "tests.zoo.sequences:LimitBeforeAfter",
        "tests.zoo.sequences:ListRunsOffsetIgnoredWithStatus",
        "tests.zoo.sequences:OffsetTwiceWithStatusFilter",
        "tests.zoo.sequences:ReadsReturnStoredObjects",
        "tests.zoo.sequences:StaleIdIndexAfterDelete",
        "tests.zoo.sequencing:CallerSequenceKept",
        "tests.zoo.sequencing:CommittedOutOfOrder",
        "tests.zoo.sequencing:GapAfterFailedWrite",
        "tests.zoo.sequencing:LatestSequenceIsNext",
        "tests.zoo.sequencing:OneCounterForAllSessions",
        "tests.zoo.sequencing:SequenceStartsAtZero",
        "tests.zoo.sequencing:UnlockedCounter",
        "tests.zoo.sessions:DeleteKeepsCounter",
        "tests.zoo.sessions:DeleteWithoutCascade",
        "tests.zoo.sessions:HidesSoftDeleted",
        "tests.zoo.sessions:LimitZeroMeansAll",
        "tests.zoo.sessions:ListedById",
        "tests.zoo.sessions:MergingSave",
        "tests.zoo.sessions:NoOffset",
        "tests.zoo.sessions:RawKeyError",
        "tests.zoo.sessions:UnknownStatusIgnored",
        "tests.zoo.sessions:V07Store",
        "tests.zoo.sql_torn:TornFlushMariadbStore",
        "tests.zoo.sql_torn:TornFlushPostgresStore",
        "tests.zoo.sqlite_toy:TornFlushSqliteStore",
        "tests.zoo.sqlite_toy:UnguardedSqliteStore",
    }
)


def mutants() -> Iterator[tuple[str, type]]:
    """``(module:Class, class)`` for every broken store in the zoo, in a stable order."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, obj in sorted(vars(module).items()):
            if (
                isinstance(obj, type)
                and obj.__module__ == module.__name__
                and "BREAKS" in vars(obj)
            ):
                yield f"{module.__name__}:{name}", obj


#: The store a broken query object runs over: the correct in-memory one.
QUERY_STORE = "reference_stores.memory:InMemorySessionStore"
QUERY_REGISTRY = "reference_stores.memory:InMemoryArtifactRegistry"


def kit_arguments(target: str, kind: str) -> list[str]:
    """How the kit is pointed at a store of the zoo of each kind (``KIND``: session, artifact,
    query, registry, maintenance); a query object, registry or Maintenance object runs over the
    correct in-memory store, with its own rules only."""
    if kind == "artifact":
        return [f"--asm-artifact-store={target}"]
    if kind == "query":
        return [
            f"--asm-store={QUERY_STORE}",
            f"--asm-query={target}",
            # the export check with artifacts needs a registry beside the QueryAPI
            f"--asm-artifact-registry={QUERY_REGISTRY}",
            "--asm-rules=QRY",
        ]
    if kind == "registry":
        return [
            f"--asm-store={QUERY_STORE}",
            f"--asm-artifact-registry={target}",
            "--asm-rules=REG",
        ]
    if kind == "maintenance":
        return [
            f"--asm-store={QUERY_STORE}",
            f"--asm-maintenance={target}",
            # the checks of artifact metadata (MNT-2, MNT-4, MNT-5) need a registry beside it
            f"--asm-artifact-registry={QUERY_REGISTRY}",
            "--asm-rules=MNT",
        ]
    return [f"--asm-store={target}"]
