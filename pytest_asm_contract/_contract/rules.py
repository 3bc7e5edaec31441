"""The rule catalogue: every rule of the contract, with its level, capability and likely mistakes.

This is the single source of truth. Tests name the rules they check (``@rule("SEQ-1")``), the
report lists every rule from here, and docs/rules.md is generated from it. It is one long module
on purpose: every rule's text sits in one place, in the contract's order, next to the order
checks run in and what each builds on.
"""

from __future__ import annotations

import dataclasses
import enum

from pytest_asm_contract._contract.port import Capability


class Level(enum.StrEnum):
    MUST = "MUST"
    CAPABILITY = "CAPABILITY"


class Scope(enum.StrEnum):
    """What a rule is checked against."""

    SESSION_STORE = "session store"  # the bundled suite, via --asm-store
    ARTIFACT_STORE = "artifact store"  # via --asm-artifact-store
    QUERY_API = "query api"  # the QueryAPI built from the session store, via --asm-query
    ARTIFACT_REGISTRY = "artifact registry"  # built from the store, via --asm-artifact-registry
    MAINTENANCE = "maintenance"  # built from the store, via --asm-maintenance
    ASYNC_STORE = "async store"  # the bundled suite, when the store's operations are async def
    PACKAGE = "package"  # the kit's and reference stores' own modules (the project's tests)


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    statement: str
    hints: tuple[str, ...] = ()
    capability: str | None = None
    scope: Scope = Scope.SESSION_STORE
    #: A rule this kit adds to the contract's (docs/rules.md says so).
    extension: bool = False

    @property
    def group(self) -> str:
        return self.id.split("-", 1)[0]

    @property
    def level(self) -> Level:
        return Level.CAPABILITY if self.capability else Level.MUST


#: Capabilities a store may declare in its ``capabilities`` attribute, and what each promises.
CAPABILITIES: dict[str, str] = {c.value: c.promise for c in Capability}

GROUPS: dict[str, str] = {
    "PORT": "The store object",
    "SES": "Sessions",
    "RUN": "Runs",
    "EVT": "Appending and reading events",
    "SEQ": "Sequence numbers",
    "IDEM": "Idempotency",
    "BATCH": "Batch append (append_events)",
    "FLUSH": "Atomic flush",
    "POLL": "Long polling",
    "DATA": "Data fidelity",
    "CONC": "Concurrency",
    "DEP": "Optional dependencies",
    "MIG": "Schema migrations",
    "ART": "Artifact stores",
    "QRY": "QueryAPI (search across sessions)",
    "REG": "Artifact registry (artifact metadata)",
    "MNT": "Maintenance (retention, pruning, integrity)",
    "ASYNC": "Async stores (async def operations)",
}

RULES: tuple[Rule, ...] = (
    Rule(
        "PORT-1",
        "All 14 operations exist with these signatures. A store without append_events or flush "
        "(a v0.7-era store) gets one clear failure naming what is missing and pointing to the "
        "migration guide, not a cascade of attribute errors.",
        (
            "a v0.7 store: append_events and flush were added in v0.8 (see docs/migrating-v07.md)",
            "filters declared positional instead of keyword-only",
        ),
    ),
    Rule(
        "PORT-2",
        "One instance may be used from many threads at once.",
        ("shared mutable state without a lock", "one DB connection shared by all threads"),
    ),
    Rule(
        "PORT-3",
        "Failures surface only as StoreError with a code from the closed set.",
        (
            "a driver exception (sqlite3.IntegrityError, botocore ClientError) not wrapped",
            "KeyError/TypeError/AttributeError from unvalidated input",
            "pydantic.ValidationError escaping instead of validation_error",
        ),
    ),
    Rule(
        "SES-1",
        "save_session inserts or replaces the whole record by id; get_session returns a Session "
        "equal to the last one saved.",
        ("merging fields instead of replacing the record", "dropping fields on update"),
    ),
    Rule(
        "SES-2",
        "get_session of an unknown id raises session_not_found.",
        ("returning None", "raising KeyError or a generic not_found"),
    ),
    Rule(
        "SES-3",
        "list_sessions filters by status and agent_id (AND), orders by (created_at, id) ascending, "
        "then applies offset and limit; limit 0 gives []; a negative or non-integer limit/offset, "
        "or an unknown status, raises validation_error. Status filters accept the enum or its "
        "string value.",
        (
            "offset ignored",
            "limit 0 treated as 'no limit'",
            "insertion or id order instead of (created_at, id)",
            "limit applied before the filters",
            "status enum compared to str",
        ),
    ),
    Rule(
        "SES-4",
        "delete_session removes the session with all its runs, events, its sequence counter and "
        "its artifact metadata (REG-3, where the store has a registry), in one atomic step; it "
        "is idempotent; afterwards get_latest_sequence is 0, get_events is [], and the next "
        "append to that session id starts again at 1.",
        (
            "only the session record deleted (no cascade)",
            "sequence counter left behind",
            "deleting an unknown session raises",
            "event ids of the deleted session still indexed",
        ),
    ),
    Rule(
        "SES-5",
        "deleted_at is plain data: it round-trips, and get/list still return "
        "soft-deleted sessions.",
        ("list_sessions hiding sessions with deleted_at set",),
    ),
    Rule(
        "RUN-1",
        "save_run inserts or replaces by id; get_run returns an equal Run; unknown id raises "
        "run_not_found.",
        ("get_run of an unknown id returns None", "replacing merges fields"),
    ),
    Rule(
        "RUN-2",
        "list_runs returns the session's runs, filtered by status, ordered by (started_at, id), "
        "then offset and limit, with SES-3's validation rules; unknown session gives [].",
        ("offset ignored", "order by insertion", "unknown session raises"),
    ),
    Rule(
        "RUN-3",
        "get_active_run returns a run of that session with status running, or None, and reflects "
        "a save_run immediately (read-after-write). With several running runs it returns the one "
        "with the latest started_at (ties: the greatest id).",
        (
            "a cached active run not updated by save_run",
            "the first running run instead of the latest",
            "a pending run treated as active",
        ),
    ),
    Rule(
        "EVT-1",
        "append_event stores the event exactly as append_event_with_sequence would and "
        "returns None.",
        ("append_event skipping numbering or idempotency",),
    ),
    Rule(
        "EVT-2",
        "get_events returns the session's events in ascending sequence order; an unknown "
        "session gives [].",
        ("ordering by timestamp or id", "unknown session raises"),
    ),
    Rule(
        "EVT-3",
        "Filters combine with AND: run_id (equality), type (equality; enum or string), since "
        "(timestamp >= since; must be timezone-aware), after (sequence > n), "
        "before (sequence < n), "
        "limit (the first n after all other filters). limit 0 gives []; a negative "
        "limit/after/before, a naive since, or an unknown type raises validation_error.",
        (
            "since strict (>) instead of inclusive (>=)",
            "after inclusive (>=) instead of strict",
            "limit applied before the other filters",
            "limit 0 treated as 'no limit'",
            "naive since compared as local time",
        ),
    ),
    Rule(
        "EVT-4",
        "Stored events never change; only delete_session, a hard delete (MNT-2) and pruning "
        "(MNT-3) remove them.",
        (
            "returning the stored object itself, so a caller's mutation changes it",
            "a re-append with the same id overwriting the stored event",
        ),
    ),
    Rule(
        "SEQ-1",
        "A session's first stored event gets 1 and each newly stored event gets the previous "
        "highest + 1: no gaps, no repeats, and a failed write consumes no number.",
        (
            "numbering from 0",
            "counter incremented before validation, so a rejected write leaves a gap",
            "read-modify-write of the counter without a lock or transaction",
        ),
    ),
    Rule(
        "SEQ-2",
        "get_latest_sequence returns the highest number ever assigned in the session (the count "
        "of its stored events, unless pruning removed some: MNT-3); 0 when none was assigned "
        "since the session was created or deleted.",
        ("raising for an unknown session", "returning the next number instead of the last"),
    ),
    Rule(
        "SEQ-3",
        "A sequence_number supplied by the caller is ignored.",
        ("storing the caller's sequence_number",),
    ),
    Rule(
        "SEQ-4",
        "Numbering is per session; appends to one session never affect another.",
        ("one global counter for all sessions",),
    ),
    Rule(
        "SEQ-5",
        "No holes for tailing readers: once a reader sees sequence n, every lower number "
        "of that session is already visible (so after=cursor polling never skips an event).",
        ("numbers reserved outside the write transaction, committed out of order",),
    ),
    Rule(
        "IDEM-1",
        "Event ids are global. Appending an id already stored for the same session (through any "
        "append path or flush) stores nothing and returns the originally stored event, equal field "
        "for field to what the first append returned, whatever the new copy contains (first write "
        "wins). An id already stored under another session is never stored a second time: the "
        "store returns the original event or raises already_exists.",
        (
            "a duplicate id re-numbered and stored again",
            "last write wins",
            "id uniqueness checked per session only",
        ),
    ),
    Rule(
        "IDEM-2",
        "Saving the same session or run any number of times leaves one record.",
        ("save_session appending instead of upserting",),
    ),
    Rule(
        "IDEM-3",
        "A repeated id inside one batch maps to the stored event of its first occurrence.",
        ("duplicates inside a batch checked only against previously stored ids",),
    ),
    Rule(
        "IDEM-4",
        "When several threads (or processes) append the same new id at once, exactly one "
        "event is stored and every caller gets it back with the same sequence number.",
        (
            "check-then-insert without a lock or unique constraint",
            "the losing writer raising a raw constraint error",
        ),
    ),
    Rule(
        "BATCH-1",
        "Returns one event per input element, in input order, each with its sequence "
        "number; a session's new events get consecutive numbers in input order.",
        ("returning events sorted by id or timestamp", "returning only the new events"),
    ),
    Rule("BATCH-2", "An empty list returns [] and changes nothing.", ("raising on []",)),
    Rule(
        "BATCH-3",
        "All or nothing: if any element is invalid (not an Event, or failing Event "
        "validation), it raises validation_error and nothing of the batch is stored or numbered.",
        ("validating element by element while storing", "numbers consumed by the failed batch"),
    ),
    Rule(
        "BATCH-4",
        "A batch may mix sessions; each session's new events form one consecutive block.",
        ("numbering a mixed batch with one counter",),
    ),
    Rule(
        "BATCH-5",
        "Concurrent batches to one session never interleave: each batch's new events "
        "form one consecutive block.",
        ("appending a batch one event at a time, each under its own lock",),
    ),
    Rule(
        "BATCH-6",
        "A backend failure or a crashed writer in the middle of append_events leaves all of "
        "the batch's new events stored or none of them, in every session the batch touches "
        "(an extension of this kit: the contract states it for flush, FLUSH-3).",
        (
            "one transaction (or script) per session of a mixed batch",
            "storing the events one by one",
        ),
        extension=True,
    ),
    Rule(
        "FLUSH-1",
        "Persists session, run and events as one atomic step; afterwards all three read "
        "back, the events in order with sequence numbers.",
        ("flush saving only the events", "events numbered out of order"),
    ),
    Rule(
        "FLUSH-2",
        "Invalid payloads raise and persist nothing (the session and run keep their previous "
        "state, "
        "or stay absent): not an ExecutionResult or a mapping with session/run/events → "
        "validation_error; an element that is not a valid Event → validation_error; an event of "
        "another session, or a run of another session → session_mismatch; an event whose run_id is "
        "neither None nor run.id → run_mismatch.",
        (
            "saving session and run before validating the events",
            "no check that events belong to the flushed session and run",
        ),
    ),
    Rule(
        "FLUSH-3",
        "A backend failure at any step surfaces as StoreError with a storage code and "
        "leaves no partial state. The kit injects such failures into the reference stores, and "
        "into any store that exposes the documented fault hook.",
        ("several transactions where one is needed", "a raw driver error escaping"),
    ),
    Rule(
        "FLUSH-4",
        "Flushing the same result twice leaves one copy of every event and the given "
        "session and run.",
        ("events stored twice on a retried flush",),
    ),
    Rule(
        "FLUSH-5",
        "A concurrent reader never observes part of a flush.",
        ("session, run and events written under separate locks or transactions",),
    ),
    Rule(
        "POLL-0",
        "Every store accepts wait_timeout_ms; without the capability long_poll it returns at once.",
        (
            "rejecting the wait_timeout_ms keyword",
            "sleeping for the timeout without the capability",
        ),
    ),
    Rule(
        "POLL-1",
        "If matching events exist, return at once; otherwise block until an event matching the "
        "session and the run_id/type filters is appended, or the timeout passes (then []).",
        (
            "waking on any append and returning [] early",
            "waiting the full timeout even when events exist",
            "the notification lost between the check and the wait",
        ),
        capability="long_poll",
    ),
    Rule(
        "DATA-1",
        "Every field of Session, Run and Event round-trips exactly, nested JSON, tag "
        "order and microsecond timestamps included.",
        (
            "timestamps truncated to milliseconds",
            "tags stored as a set",
            "large ints through float",
            "timezone lost",
        ),
    ),
    Rule(
        "DATA-2",
        "A value the backend cannot hold (for example a NUL character in a PostgreSQL "
        "jsonb column) raises validation_error and stores nothing; a store never keeps an altered "
        "value.",
        ("silently stripping NUL characters", "a raw DataError escaping"),
    ),
    Rule(
        "DATA-3",
        "Ids are compared exactly: case, Unicode form, '/', quotes, '%' and '_' are "
        "significant, and two different ids never reach the same record.",
        ("case-insensitive collation", "LIKE used for id lookup", "ids used raw in keys or paths"),
    ),
    Rule(
        "CONC-1",
        "N threads appending to one session all succeed and leave sequences exactly "
        "1..total, each caller's result matching the final state.",
        ("unlocked read-modify-write of the counter", "SQLite 'database is locked' escaping"),
    ),
    Rule(
        "CONC-2",
        "Concurrent readers never fail and never see a state that no serial order explains.",
        ("reading while a writer mutates a shared list",),
    ),
    Rule(
        "CONC-3",
        "Two store instances on the same backend, in different processes, see each "
        "other's writes and keep CONC-1, IDEM-4 and BATCH-5 across processes.",
        ("an in-process lock standing in for a database lock",),
        capability="shared_backend",
    ),
    Rule(
        "DEP-1",
        "Importing any kit or reference-store module never fails for a missing optional "
        "dependency; constructing a store that needs one raises dependency_not_available with "
        "details dependency, module and operation, and a message naming the pip extra.",
        scope=Scope.PACKAGE,
    ),
    Rule(
        "MIG-1",
        "A SQL store on a database without its schema raises migration_required naming "
        "the missing table or column. The schema (one consolidated migration) holds sessions, "
        "runs, events, per-session sequence counters, and artifact metadata; its downgrade "
        "removes them.",
        scope=Scope.PACKAGE,
    ),
    Rule(
        "ART-1",
        "put overwrites; get returns the exact bytes; a missing key raises not_found; "
        "delete is idempotent.",
        scope=Scope.ARTIFACT_STORE,
    ),
    Rule(
        "ART-2",
        "Keys are any non-empty string; distinct keys never collide and no key reaches "
        "outside the store's own namespace (no path traversal, no prefix escape).",
        scope=Scope.ARTIFACT_STORE,
    ),
    # -- the QueryAPI (query-maintenance.md section 2) -----------------------------------------
    Rule(
        "QRY-1",
        "Filters combine with AND. status and types take one value or a non-empty list (any "
        "of); session_ids, run_ids and providers take non-empty lists (any of); tags: the "
        "session has every listed tag; provider on sessions: the session has a run with that "
        "provider; min_tokens: the run's total tokens >= n. *_after is >, *_before is <, since "
        "is >=, until is < (sessions by created_at, runs by started_at, events by timestamp).",
        (
            "created_after inclusive (>= instead of >)",
            "tags matched as any of instead of all of",
        ),
        scope=Scope.QUERY_API,
    ),
    Rule(
        "QRY-2",
        "Orders are total: sessions updated_at_desc, created_at_asc, created_at_desc; runs "
        "started_at_desc, started_at_asc, token_usage_desc (total tokens); events sequence_asc "
        "(sequence_number, then id), timestamp_asc, timestamp_desc. Ties are broken by id in "
        "the direction of the order.",
        ("ties left to the backend's whim instead of broken by id",),
        scope=Scope.QUERY_API,
    ),
    Rule(
        "QRY-3",
        "Cursor pagination for every order: following cursor from the first page returns every "
        "match exactly once, in order, and cursor is None exactly on the page holding the last "
        "match. Keyset semantics: records added or removed before the cursor position between "
        "two pages never make a pre-existing match skipped or returned twice. A malformed or "
        "tampered cursor, or one issued for other filters or another order, raises "
        "invalid_cursor.",
        (
            "an OFFSET in the cursor (shifts when records are added or removed)",
            "a cursor that ignores the order it was issued for",
            "a cursor accepted after the filters changed",
        ),
        scope=Scope.QUERY_API,
    ),
    Rule(
        "QRY-4",
        "total_count counts every match, ignoring limit and cursor; count_events equals the "
        "number of records that paging search_events with the same filters yields.",
        ("total_count taken after the limit", "count_events counting other sessions' events"),
        scope=Scope.QUERY_API,
    ),
    Rule(
        "QRY-5",
        "limit is an int in 1..1000 (defaults 50, 50, 100); out of range or not an int, an "
        "unknown status, type or order_by, a naive datetime, an empty list or a non-string id "
        "raises validation_error.",
        ("a limit above 1000 silently capped",),
        scope=Scope.QUERY_API,
    ),
    Rule(
        "QRY-6",
        "Soft-deleted sessions are left out of search_sessions unless include_deleted=True; "
        "every other query ignores deleted_at.",
        ("soft-deleted sessions included by default",),
        scope=Scope.QUERY_API,
    ),
    Rule(
        "QRY-7",
        "Records come back equal field for field to what the store's own reads return; results "
        "reflect every write that completed before the call; queries never change the store.",
        ("a query reading a cache or replica that lags the store",),
        scope=Scope.QUERY_API,
    ),
    Rule(
        "QRY-8",
        "get_session_stats and export_session of an unknown session raise session_not_found "
        "(soft-deleted ones are found). Stats: event_count, run_count, token_totals over the "
        "session's runs, providers_used (sorted, distinct), first_event_at and last_event_at, "
        "status_counts (statuses present only). Export: the session, its runs in RUN-2 order, "
        "its events in EVT-2 order, and with include_artifacts its artifact metadata in REG-2 "
        "order (else []).",
        ("providers_used listing None or duplicates",),
        scope=Scope.QUERY_API,
    ),
    Rule(
        "QRY-9",
        "The usage summary over the matching runs (session_id, provider; since and until on "
        "started_at) gives total input, output and total tokens and run_count, and the same "
        'figures by provider (runs without one under "unknown"), each equal to the sum from '
        "the stored runs.",
        ("total_tokens summed as input + output when the run reports its own total",),
        scope=Scope.QUERY_API,
    ),
    Rule(
        "QRY-10",
        "The cost summary over the matching runs prices each run at its cost_usd when set, else "
        "at the pricing table's rates for its provider and model (exact key, else the longest "
        "key that prefixes the model, else the provider's default), else counts it unmapped; "
        "total_cost_usd, run_count, by_provider and by_model sum the priced runs (relative "
        "tolerance 1e-9).",
        (
            "a run's cost_usd ignored in favour of the table",
            "prefix resolution picking the shortest matching key",
        ),
        scope=Scope.QUERY_API,
    ),
    # -- the artifact registry (query-maintenance.md section 5) --------------------------------
    Rule(
        "REG-1",
        "register inserts or replaces the metadata by id and returns it as stored; get returns "
        "it equal field for field (DATA-1 rules); an unknown id raises not_found; delete is "
        "idempotent.",
        ("register appending a second record for a known id", "timestamps or JSON not exact"),
        scope=Scope.ARTIFACT_REGISTRY,
    ),
    Rule(
        "REG-2",
        "list_by_session returns the session's records ordered by (created_at, id).",
        ("records in insertion order", "ties on created_at left unordered"),
        scope=Scope.ARTIFACT_REGISTRY,
    ),
    Rule(
        "REG-3",
        "delete_session and a hard delete (MNT-2) remove the session's artifact metadata in the "
        "same atomic step as the rest of the session. Registering metadata for a session that "
        "does not exist is allowed (no referential integrity).",
        ("delete_session leaving the session's artifact metadata behind",),
        scope=Scope.ARTIFACT_REGISTRY,
    ),
    # -- maintenance (query-maintenance.md section 3) ------------------------------------------
    Rule(
        "MNT-1",
        "soft_delete_expired_sessions sets deleted_at = now, and changes nothing else, on every "
        "session not yet soft-deleted, whose status is not exempt, that has no exempt tag, and "
        "that is terminal (completed, failed, cancelled) with updated_at older than "
        "max_completed_session_age_days, or of any status created longer ago than "
        "max_session_age_days; it returns how many it marked.",
        (
            "updated_at changed along with deleted_at",
            "exempt tags or statuses ignored",
            "a session exactly at the cutoff treated as older",
        ),
        scope=Scope.MAINTENANCE,
    ),
    Rule(
        "MNT-2",
        "hard_delete_expired_sessions deletes every session whose deleted_at is older than "
        "hard_delete_after_days exactly as delete_session does (runs, events, counter, artifact "
        "metadata), and returns how many.",
        ("the session row deleted but its events, runs or artifact metadata left behind",),
        scope=Scope.MAINTENANCE,
    ),
    Rule(
        "MNT-3",
        "prune_session_events removes, from a session holding more than max_events_per_session "
        "events, exactly (count - max) events when that many are removable: those of the types "
        "in prune_event_types_first first, lowest sequence first, then the lowest-sequence "
        "others, never run_started or run_completed. The events left keep their numbers, "
        "get_latest_sequence does not change, the next append gets latest + 1, and a pruned id "
        "appended again is stored anew. It returns how many it removed.",
        (
            "the events left renumbered from 1",
            "the counter lowered, so numbers are reused",
            "run_started or run_completed pruned",
            "a pruned id still treated as stored (IDEM-1)",
        ),
        scope=Scope.MAINTENANCE,
    ),
    Rule(
        "MNT-4",
        "execute runs soft delete, hard delete, pruning of every session over the limit, "
        "orphaned-artifact and orphaned-counter cleaning, and reports each count exactly; an "
        "invalid policy raises validation_error before anything changes; a failing step is "
        "reported in errors and the other steps still run.",
        ("execute stopping at the first failing step", "a count that differs from the effect"),
        scope=Scope.MAINTENANCE,
    ),
    Rule(
        "MNT-5",
        "clean_orphaned_artifacts removes the artifact metadata of sessions that do not exist "
        "and returns how many records it removed.",
        ("metadata of existing sessions removed too",),
        scope=Scope.MAINTENANCE,
    ),
    Rule(
        "MNT-6",
        "health_check returns [] for a store that only the port's operations have touched "
        "(pruning and deletes included), and one line per problem otherwise.",
        ("the holes pruning leaves reported as gaps",),
        scope=Scope.MAINTENANCE,
    ),
    Rule(
        "MNT-7",
        "Maintenance may run while clients append: it never removes or renumbers an event its "
        "policy does not select, never lets a number be reused, and each session's delete or "
        "prune is atomic (a reader sees it before or after, never in part).",
        ("a prune removing events one by one, seen half done by a tailing reader",),
        scope=Scope.MAINTENANCE,
    ),
    Rule(
        "ASYNC-1",
        "Cancellation is all or nothing: a task cancelled at any await point of a write leaves "
        "that write applied whole or not at all (no partial batch or flush, no consumed sequence "
        "number, no half-deleted session); the store stays usable and the repeated call is "
        "idempotent.",
        (
            "a flush or batch written as several transactions",
            "awaiting per event outside a transaction",
            "a connection returned to the pool mid-transaction by the cancellation",
        ),
        scope=Scope.ASYNC_STORE,
    ),
    Rule(
        "ASYNC-2",
        "No operation holds the event loop for 100 ms or more without yielding.",
        (
            "a sync driver call (sqlite3, psycopg, requests) inside async def",
            "time.sleep instead of asyncio.sleep",
        ),
        scope=Scope.ASYNC_STORE,
    ),
    Rule(
        "ASYNC-3",
        "CONC-1, CONC-2, IDEM-4, BATCH-5 and FLUSH-5 hold for concurrent tasks on one event loop "
        "exactly as for threads.",
        (
            "an await between reading the counter and writing it",
            "a threading lock where tasks need an asyncio lock",
        ),
        scope=Scope.ASYNC_STORE,
    ),
    Rule(
        "ASYNC-4",
        "A long poll waits without blocking the loop, is woken by an append another task makes "
        "on the same loop, and a cancelled long poll leaves no waiter behind (the next poller is "
        "still woken).",
        (
            "a cancelled waiter that swallows the next wake-up",
            "a threading.Event wait inside async def",
        ),
        capability="long_poll",
        scope=Scope.ASYNC_STORE,
    ),
)

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
#: The scopes the bundled suite checks against the store itself (``--asm-store``).
STORE_SCOPES: frozenset[Scope] = frozenset({Scope.SESSION_STORE, Scope.ASYNC_STORE})

#: The rules everything else builds on, checked first, in this order: a store that hides
#: soft-deleted sessions, loses data in the round trip, numbers events wrongly or cannot read back
#: what it stored fails most other checks for the same reason.
FOUNDATIONS: tuple[str, ...] = (
    "SES-5",
    "DATA-1",
    "SES-1",
    "SES-2",
    "RUN-1",
    "SEQ-1",
    "SEQ-2",
    "EVT-1",
    "EVT-2",
)
#: What each foundation builds on: every record carries a soft-delete marker (SES-5), every
#: later check compares what it reads with what it wrote (DATA-1), and appending and reading
#: events build on numbering (SEQ-1).
_FOUNDATION_PREREQUISITES: dict[str, tuple[str, ...]] = {
    "SES-5": (),
    "DATA-1": ("SES-5",),
    "SES-1": ("SES-5", "DATA-1"),
    "SES-2": ("SES-5", "DATA-1"),
    "RUN-1": ("SES-5", "DATA-1"),
    "SEQ-1": ("SES-5", "DATA-1"),
    "SEQ-2": ("SES-5", "DATA-1", "SEQ-1"),
    "EVT-1": ("SES-5", "DATA-1", "SEQ-1"),
    "EVT-2": ("SES-5", "DATA-1", "SEQ-1"),
}
#: What the concurrent checks build on beyond the foundations: a single batch, a single flush
#: and a single repeated id must work before their concurrent variants can say anything.
_SINGLE_CALLS: tuple[str, ...] = ("IDEM-1", "BATCH-1", "BATCH-4", "FLUSH-1")
#: The order the concurrent checks run in: injected failures first, then the plainest races. A
#: write torn under a failure is the root cause; the half-applied state concurrent readers then
#: see (FLUSH-5) is its symptom. The side ports' rules of answers between writes come last: a
#: query or maintenance step judged after writes builds on the rules of its values (a usage sum
#: computed wrongly is QRY-9's failure before it is QRY-7's).
CONCURRENT_ORDER: tuple[str, ...] = (
    "FLUSH-3",
    "BATCH-6",
    "CONC-1",
    "CONC-2",
    "PORT-2",
    "SEQ-5",
    "IDEM-4",
    "BATCH-5",
    "FLUSH-5",
    "CONC-3",
    "ASYNC-3",
    "ASYNC-1",
    "QRY-7",
    "MNT-7",
)
#: Checked on several threads, processes or failures at once.
CONCURRENT: frozenset[str] = frozenset(CONCURRENT_ORDER)
#: The order rule groups run in, so a red run leads with its root cause.
GROUP_ORDER: tuple[str, ...] = (
    "PORT",
    "SES",
    "RUN",
    "EVT",
    "SEQ",
    "IDEM",
    "BATCH",
    "FLUSH",
    "POLL",
    "DATA",
    "CONC",
    "ASYNC",
)


def prerequisites(rule_id: str) -> frozenset[str]:
    """The rules a check of ``rule_id`` builds on: when one of them failed, the check says so
    ("not run: fix SEQ-1 first") instead of failing for the same reason."""
    if rule_id == "PORT-1" or get_rule(rule_id).scope not in STORE_SCOPES:
        return frozenset()
    if rule_id in FOUNDATIONS:
        return frozenset(_FOUNDATION_PREREQUISITES[rule_id])
    if rule_id in CONCURRENT:
        return frozenset(FOUNDATIONS + _SINGLE_CALLS)
    return frozenset(FOUNDATIONS)


def tier(rule_id: str) -> int:
    """When a rule's checks run: the port and what every record is (tier 0), the other
    foundations, single calls, then concurrency and failures (generated workloads come last,
    see the ``rule`` mark)."""
    if rule_id in ("PORT-1", "SES-5", "DATA-1"):
        return 0
    if rule_id in FOUNDATIONS:
        return 1
    return 3 if rule_id in CONCURRENT else 2


def get_rule(rule_id: str) -> Rule:
    try:
        return RULES_BY_ID[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule id {rule_id!r}") from None


def select_rules(selectors: str | None) -> frozenset[str]:
    """Rule ids chosen by a comma-separated list of groups and ids (``"SEQ,FLUSH-2"``)."""
    if not selectors:
        return frozenset(RULES_BY_ID)
    chosen: set[str] = set()
    for raw in selectors.split(","):
        token = raw.strip().upper()
        if not token:
            continue
        if token in RULES_BY_ID:
            chosen.add(token)
        elif token in GROUPS:
            chosen.update(r.id for r in RULES if r.group == token)
        else:
            known = ", ".join(GROUPS)
            raise ValueError(f"unknown rule or group {raw.strip()!r} (groups: {known})")
    return frozenset(chosen)
