"""The contract as a Hypothesis state machine, checked against an independent model.

:class:`ContractMachine` drives a store with every operation of the port (sessions, runs, the
three append paths, batches with repeated and foreign ids and mixed sessions, valid and invalid
flushes, reads with random filter combinations, caller mutations of returned objects) and with the
shape of real ASM traffic (a run saved as running, its events appended by the pipeline in batches,
then one final flush). After every call it compares the store with
:class:`~pytest_asm_contract.oracle.ContractModel`; after every write it compares the whole state.
Every check names the rule it enforces, and a failure raises a :class:`ContractViolation` of that
rule carrying the store calls made so far as runnable Python.

Each rule has its own violation class, so Hypothesis shrinks each violated rule separately and
reports all of them. :class:`Coverage` records what the machine exercised, so a run that never
reached a key rule (for example because the store rejected every batch) can fail instead of passing
vacuously.

Use :func:`run_contract_machine` to run it; the bundled suite module ``test_stateful.py`` does so
for ``--asm-store``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine as hypothesis_engine
from hypothesis.reporting import current_reporter, with_reporter
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pydantic import BaseModel

from pytest_asm_contract import repro
from pytest_asm_contract.errors import ErrorCode, StoreError
from pytest_asm_contract.loader import close_store
from pytest_asm_contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from pytest_asm_contract.oracle import (
    FOREIGN,
    KNOWN,
    NEW,
    REPEAT,
    ContractModel,
    Outcome,
    confusable,
    contains_nul,
    exact_difference,
)
from pytest_asm_contract.port import declared_capabilities
from pytest_asm_contract.repro import Lazy
from pytest_asm_contract.rules import get_rule
from pytest_asm_contract.strategies import (
    OFFSETS,
    ids,
    invalid_events,
    invalid_sessions,
    json_objects,
    near_misses,
    non_models,
    texts,
    timestamps,
)

#: The rules this machine checks (the ones a sequential, single-threaded workload can break).
STATEFUL_RULES: tuple[str, ...] = (
    "PORT-3",
    "SES-1",
    "SES-2",
    "SES-3",
    "SES-4",
    "SES-5",
    "RUN-1",
    "RUN-2",
    "RUN-3",
    "EVT-1",
    "EVT-2",
    "EVT-3",
    "EVT-4",
    "SEQ-1",
    "SEQ-2",
    "SEQ-3",
    "SEQ-4",
    "IDEM-1",
    "IDEM-2",
    "IDEM-3",
    "BATCH-1",
    "BATCH-2",
    "BATCH-3",
    "BATCH-4",
    "FLUSH-1",
    "FLUSH-2",
    "FLUSH-4",
    "DATA-1",
    "DATA-2",
    "DATA-3",
)

#: One recorded store operation: a ContractMachine method name, its args and kwargs.
Action = tuple[str, tuple[Any, ...], dict[str, Any]]

#: Key set in a returned object's JSON to play a caller that mutates what it got back (EVT-4).
MUTATION_KEY = "mutated by caller"

#: Which parts of the state each write may change (the rest is checked at the end of an example).
SESSION_WRITES = frozenset({"save_session", "delete_session", "flush", "mutate_returned"})
RUN_WRITES = frozenset({"save_run", "delete_session", "flush"})
EVENT_WRITES = frozenset(
    {
        "append_event",
        "append_event_with_sequence",
        "append_events",
        "flush",
        "delete_session",
        "mutate_returned",
    }
)

#: Seconds spent shrinking after the first violation, per profile, before reporting the shortest
#: failing example found so far.
SHRINK_SECONDS: dict[str, float] = {"quick": 3.0, "ci": 5.0, "deep": 60.0}

#: Steps per example; short examples keep slow stores fast and shrink well.
DEFAULT_STEP_COUNT = 40
#: Further rounds a run may take to reach probes that its first round missed by chance.
EXTRA_ROUNDS = 3


# -- violations -----------------------------------------------------------------------------------
class ContractViolation(AssertionError):
    """A store broke ``rule_id``. ``steps`` are the store calls that show it, as Python source.

    ``steps`` holds the calls of the rules the example ran, ending with the failing check;
    ``full_steps`` also holds the reads the machine made to compare the whole state, for stores
    whose behaviour depends on reads. ``also`` names further rules the example breaks (a repeated
    flush that stores an event twice breaks IDEM-1 and, more specifically, FLUSH-4).
    """

    rule_id: ClassVar[str] = ""

    def __init__(
        self,
        what: str,
        *,
        steps: list[str | Lazy],
        full_steps: list[str | Lazy],
        also: tuple[str, ...] = (),
        actions: list[Action] | None = None,
        pools: Pools | None = None,
    ) -> None:
        super().__init__(f"{self.rule_id} violated: {what}")
        self.what = what
        self.steps = steps
        self.full_steps = full_steps
        self.also = also
        self.actions = actions or []
        self.pools = pools

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """The violated rule, then any more specific rules the same example also breaks."""
        return (self.rule_id, *self.also)

    @property
    def code(self) -> str:
        """The reproduction: the example's store calls, ending with the failing check."""
        return repro.snippet(self.steps)

    @property
    def full_code(self) -> str:
        """The reproduction including the reads the machine made to compare the state."""
        return repro.snippet(self.full_steps)


VIOLATION_TYPES: dict[str, type[ContractViolation]] = {
    rule_id: type(
        f"Violation_{rule_id.replace('-', '_')}",
        (ContractViolation,),
        {"rule_id": rule_id, "__module__": __name__},
    )
    for rule_id in STATEFUL_RULES
}


def violations_in(error: BaseException) -> list[ContractViolation]:
    """Every ContractViolation in ``error`` (looking into exception groups), one per rule."""
    found: dict[str, ContractViolation] = {}

    def walk(exc: BaseException) -> None:
        if isinstance(exc, ContractViolation):
            found.setdefault(exc.rule_id, exc)
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)

    walk(error)
    return sorted(found.values(), key=lambda v: STATEFUL_RULES.index(v.rule_id))


# -- coverage -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Probe:
    """Something the machine should exercise; ``required`` ones must happen for a run to count."""

    name: str
    rules: tuple[str, ...]
    required: bool = True


PROBES: tuple[Probe, ...] = (
    Probe("session saved", ("SES-1",)),
    Probe("session replaced by a new save", ("SES-1", "IDEM-2")),
    Probe("unknown session read", ("SES-2",), required=False),
    Probe("sessions listed with filters or paging", ("SES-3",)),
    Probe("invalid list argument rejected", ("SES-3", "RUN-2")),
    Probe("soft-deleted session listed", ("SES-5",), required=False),
    Probe("session with runs or events deleted", ("SES-4",)),
    Probe("append after delete restarted at 1", ("SES-4",)),
    Probe("run saved", ("RUN-1",)),
    Probe("runs listed with filters or paging", ("RUN-2",)),
    Probe("active run found", ("RUN-3",)),
    Probe("append_event stored an event", ("EVT-1",)),
    Probe("append_event_with_sequence stored an event", ("SEQ-1",)),
    Probe("invalid single event rejected", ("EVT-1", "SEQ-1")),
    Probe("events read with filters", ("EVT-3",)),
    Probe("invalid event filter rejected", ("EVT-3",)),
    Probe("caller mutated a returned object", ("EVT-4",)),
    Probe("caller-supplied sequence_number ignored", ("SEQ-3",)),
    Probe("latest sequence of a session with events read", ("SEQ-2",)),
    Probe("appends to two sessions", ("SEQ-4",)),
    Probe("stored id appended again (same session)", ("IDEM-1",)),
    Probe("id of another session appended", ("IDEM-1",), required=False),
    Probe("repeated id inside a batch", ("IDEM-3",)),
    Probe("batch stored new events", ("BATCH-1",)),
    Probe("empty batch", ("BATCH-2",)),
    Probe("invalid batch rejected", ("BATCH-3",)),
    Probe("batch mixing sessions", ("BATCH-4",)),
    Probe("flush stored", ("FLUSH-1",)),
    Probe("invalid flush rejected", ("FLUSH-2",)),
    Probe("identical flush repeated", ("FLUSH-4",)),
    Probe("pipeline run finished (running, batches, flush)", ("BATCH-1", "FLUSH-1", "IDEM-1")),
    Probe("value with a NUL character written", ("DATA-2",), required=False),
    Probe("confusable ids in one example", ("DATA-3",), required=False),
)


class Coverage:
    """Counts of what the machine exercised over all examples of a run (checks that passed)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        #: (operation, "ok" | "rejected") -> calls the machine judged, outside the comparisons.
        self.operations: collections.Counter[tuple[str, str]] = collections.Counter()
        self.examples = 0
        self.rounds = 0
        self.steps = 0
        self.calls = 0
        self.examples_before_violation: int | None = None
        self.first_violation_at: float | None = None
        self.seconds_to_violation: float | None = None
        self.cpu_seconds_to_violation: float | None = None
        self.started_at = time.monotonic()
        self.cpu_started_at = time.process_time()
        self.shrink_log: list[tuple[float, int]] = []

    def hit(self, name: str, count: int = 1) -> None:
        self.counts[name] += count

    def unexercised(self) -> list[Probe]:
        """Required probes that never happened."""
        return [p for p in PROBES if p.required and not self.counts[p.name]]

    def rule_counts(self) -> dict[str, int]:
        totals: dict[str, int] = dict.fromkeys(STATEFUL_RULES, 0)
        for probe in PROBES:
            for rule_id in probe.rules:
                totals[rule_id] += self.counts[probe.name]
        return totals

    def table(self) -> str:
        """A plain-text table of every probe with its count and rules."""
        width = max(len(p.name) for p in PROBES)
        lines = [
            f"{self.examples} examples in {self.rounds} round(s), {self.steps} steps, "
            f"{self.calls} store calls",
            f"{'exercised':<{width}}  {'count':>7}  rules",
        ]
        for probe in PROBES:
            count = self.counts[probe.name]
            flag = "" if count or not probe.required else "  <-- never"
            lines.append(f"{probe.name:<{width}}  {count:>7}  {', '.join(probe.rules)}{flag}")
        names = sorted({op for op, _ in self.operations})
        if names:
            op_width = max(len(n) for n in names)
            lines += ["", f"{'operation':<{op_width}}  {'ok':>7}  {'rejected':>8}"]
            for name in names:
                ok, rejected = self.operations[name, "ok"], self.operations[name, "rejected"]
                lines.append(f"{name:<{op_width}}  {ok:>7}  {rejected:>8}")
        return "\n".join(lines)


# -- the machine ----------------------------------------------------------------------------------
FEW_TYPES: tuple[EventType, ...] = (
    EventType.MESSAGE_SENT,
    EventType.TOOL_CALL_STARTED,
    EventType.RUN_STARTED,
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Draw from one of the strategies with the given weights; shrinks towards the first.

    (``st.one_of`` cannot weight: it drops repeated branches.)
    """
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(table.__getitem__)


NOTHING = st.none()
#: A caller-supplied sequence_number (SEQ-3): from a range no counter reaches in one example, so a
#: store that kept it is told apart from one that merely numbered wrong.
SUPPLIED_SEQUENCE = weighted((3, NOTHING), (1, st.integers(100, 199)))
ONE_IN_SIX = st.integers(0, 5)
INITIAL_SESSIONS = st.integers(0, 3)
FINAL_RUN_STATUSES = st.sampled_from(
    [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT]
)
STATUS_FILTER_KIND = st.integers(0, 99)
ONE_IN_FOUR = st.integers(0, 3)
ID_STYLE = st.integers(0, 9)
#: Session statuses, weighted towards active and completed for the same reason.
SESSION_STATUSES = st.sampled_from(
    [
        SessionStatus.ACTIVE,
        SessionStatus.ACTIVE,
        SessionStatus.COMPLETED,
        SessionStatus.ACTIVE,
        SessionStatus.COMPLETED,
        SessionStatus.PENDING,
        SessionStatus.PAUSED,
        SessionStatus.FAILED,
        SessionStatus.CANCELLED,
    ]
)
HOSTILE_TAGS = st.lists(texts(max_size=6), max_size=3)
HOSTILE_OBJECT = json_objects(max_size=2)
OPTIONAL_OBJECT = st.one_of(st.none(), HOSTILE_OBJECT)
OPTIONAL_ID = st.one_of(st.none(), ids())
OPTIONAL_TEXT = st.one_of(st.none(), texts(max_size=8))
COSTS = st.one_of(st.none(), st.floats(0, 10))
TURNS = st.integers(0, 3)
EVENT_TYPES = st.sampled_from(FEW_TYPES)
_PLAIN_SESSION_EXTRAS: st.SearchStrategy[tuple[Any, Any, Any]] = st.just(([], {}, None))
#: Tags, context and parent of a session: plain five times in six, hostile otherwise.
SESSION_EXTRAS = weighted(
    (5, _PLAIN_SESSION_EXTRAS), (1, st.tuples(HOSTILE_TAGS, HOSTILE_OBJECT, OPTIONAL_ID))
)
_PLAIN_RUN_EXTRAS: st.SearchStrategy[tuple[Any, Any, Any]] = st.just((None, None, None))
#: Cost, input and provider of a run: plain five times in six, hostile otherwise.
RUN_EXTRAS = weighted((5, _PLAIN_RUN_EXTRAS), (1, st.tuples(COSTS, OPTIONAL_OBJECT, OPTIONAL_TEXT)))
#: Run statuses, weighted the way traffic is (mostly running and completed), so that a status
#: filter often matches several runs.
RUN_STATUSES = st.sampled_from(
    [
        RunStatus.RUNNING,
        RunStatus.COMPLETED,
        RunStatus.RUNNING,
        RunStatus.COMPLETED,
        RunStatus.RUNNING,
        RunStatus.PENDING,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.TIMEOUT,
    ]
)
_TINY_JSON = st.dictionaries(st.sampled_from(["k", "n"]), st.integers(0, 3), max_size=1)
_EMPTY_JSON: st.SearchStrategy[dict[str, Any]] = st.just({})
#: Mostly tiny JSON (cheap, and it shrinks to ``{}``), one time in six a hostile tree.
SMALL_JSON = weighted((3, _EMPTY_JSON), (2, _TINY_JSON), (1, json_objects()))
HOSTILE_ID = ids()
NON_MODELS = non_models()
INVALID_SESSIONS = invalid_sessions()
INVALID_EVENTS = invalid_events()
BAD_ELEMENTS = st.one_of(INVALID_EVENTS, NON_MODELS)


@dataclasses.dataclass
class Pools:
    """Small pools of ids and instants an example draws from, so operations collide often."""

    sessions: list[str]
    runs: list[str]
    agents: list[str]
    moments: list[datetime]


_SESSION_IDS = st.lists(
    st.one_of(st.sampled_from(["s1", "s2", "s3"]), ids()), min_size=3, max_size=3, unique=True
)
_RUN_IDS = st.lists(
    st.one_of(st.sampled_from(["r1", "r2", "r3"]), ids()), min_size=3, max_size=3, unique=True
)
_AGENT_IDS = st.one_of(
    st.lists(
        st.one_of(st.sampled_from(["agent-1", "agent-2"]), ids()),
        min_size=2,
        max_size=2,
        unique=True,
    ),
    # SQL LIKE wildcards: a store that filters agent_id with LIKE matches both of a pair (DATA-3).
    st.sampled_from([["agent_1", "agent-1"], ["agent%", "agent-1"], ["a%1", "agent-1"]]),
)
_MOMENTS = st.lists(timestamps(), min_size=3, max_size=3)


@st.composite
def pools(draw: st.DrawFn) -> Pools:
    """Pools for one example: mostly readable ids, sometimes hostile ones or a confusable pair."""
    session_ids = draw(_SESSION_IDS)
    if draw(st.integers(0, 3)) == 0:
        twin = draw(st.sampled_from(near_misses(session_ids[0])))
        if twin not in session_ids:
            session_ids[1] = twin
    return Pools(session_ids, draw(_RUN_IDS), draw(_AGENT_IDS), draw(_MOMENTS))


@dataclasses.dataclass
class LastWrite:
    """What the last write did, to name the rule a later mismatch breaks."""

    op: str = ""
    rule: str = "SES-1"
    sessions: frozenset[str] = frozenset()
    rejected_rule: str | None = None
    kinds: dict[str, str] = dataclasses.field(default_factory=dict)
    inputs: dict[str, Event] = dataclasses.field(default_factory=dict)
    mixed: bool = False
    restarted: dict[str, int] = dataclasses.field(default_factory=dict)
    removed: dict[str, Event] = dataclasses.field(default_factory=dict)
    deleted: str | None = None
    runs: frozenset[str] = frozenset()


@dataclasses.dataclass
class Pipeline:
    """A run in progress: saved as running, its events appended in batches, flushed at the end."""

    session: Session
    run: Run
    events: list[Event]


class ContractMachine(RuleBasedStateMachine):
    """Drives one fresh store per example and compares it with the contract model.

    Use :func:`contract_machine` to bind it to a store factory and a :class:`Coverage`.
    """

    store_factory: ClassVar[Callable[[], Any]]
    coverage: ClassVar[Coverage]

    def __init__(self) -> None:
        super().__init__()
        self.coverage.examples += 1
        self.store = type(self).store_factory()
        capabilities = declared_capabilities(self.store)
        self.model = ContractModel(referential_integrity="referential_integrity" in capabilities)
        self.pools = Pools(["s1", "s2", "s3"], ["r1", "r2", "r3"], ["agent-1"], [])
        self._cache_strategies()
        self.steps: list[str | Lazy] = []
        self.full_steps: list[str | Lazy] = []
        self.fresh = 0
        self.used_event_ids: list[str] = []
        # Sessions deleted with events and not appended to since, with the number a counter
        # that was never reset would hand out next, minus one (SES-4).
        self.restarted: dict[str, int] = {}
        self.ever_numbered: collections.Counter[str] = collections.Counter()
        self.removed: dict[str, Event] = {}  # events removed by a delete, by id (SES-4)
        self.last = LastWrite()
        self.dirty = False
        self.comparing = False
        self.failed = False
        self.pipeline: Pipeline | None = None
        self.last_flush: Any = None
        # Every store operation, as (method, args, kwargs): the example, replayable (see minimize).
        self.actions: list[Action] = []

    def _cache_strategies(self) -> None:
        pools = self.pools
        self.any_session = st.sampled_from(pools.sessions)
        self.any_run = st.sampled_from(pools.runs)
        self.maybe_run = st.one_of(st.none(), self.any_run)
        self.any_agent = st.sampled_from(pools.agents)
        self.any_moment = st.sampled_from(pools.moments or [datetime(2026, 1, 1, tzinfo=UTC)])
        self.maybe_moment = weighted((4, NOTHING), (1, self.any_moment))
        self.filters = self._event_filters()
        self.event_fields = st.tuples(
            self.maybe_run, EVENT_TYPES, self.any_moment, SMALL_JSON, SUPPLIED_SEQUENCE
        )
        self.event_fields_for_run = st.tuples(
            EVENT_TYPES, self.any_moment, SMALL_JSON, SUPPLIED_SEQUENCE
        )
        self.session_fields = st.tuples(
            self.any_agent,
            SESSION_STATUSES,
            self.any_moment,
            self.any_moment,
            self.maybe_moment,
            SMALL_JSON,
            SESSION_EXTRAS,
        )
        self.run_fields = st.tuples(
            self.any_run, RUN_STATUSES, self.any_moment, TURNS, SMALL_JSON, RUN_EXTRAS
        )

    def teardown(self) -> None:
        try:
            if not self.failed:
                self._final_check()
        finally:
            close_store(self.store)

    def _final_check(self) -> None:
        """Compare everything once more at the end of the example."""
        self.last = LastWrite(op="end of example")
        self._check_state(full=True)

    # -- plumbing -------------------------------------------------------------------------------
    def _act(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run one recorded store operation (a method of this class with concrete inputs)."""
        self.actions.append((name, args, kwargs))
        return getattr(self, name)(*args, **kwargs)

    def _violation(
        self, rule_id: str, what: str, failing: Lazy, also: tuple[str, ...] = ()
    ) -> NoReturn:
        self.failed = True
        coverage = self.coverage
        now = time.monotonic()
        if coverage.first_violation_at is None:
            coverage.examples_before_violation = coverage.examples
            coverage.first_violation_at = now
            coverage.seconds_to_violation = now - coverage.started_at
            coverage.cpu_seconds_to_violation = time.process_time() - coverage.cpu_started_at
        coverage.shrink_log.append((now - coverage.first_violation_at, len(self.steps) + 1))
        raise VIOLATION_TYPES[rule_id](
            what,
            steps=[*self.steps, failing],
            full_steps=[*self.full_steps, failing],
            also=also,
            actions=list(self.actions),
            pools=self.pools,
        )

    def _record(self, code: str | Lazy, *, read: bool = False) -> None:
        self.full_steps.append(code)
        if not read:
            self.steps.append(code)

    def _call(self, fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
        self.coverage.calls += 1
        try:
            return fn(), None
        except Exception as error:  # judged by _settle: only StoreError may escape (PORT-3)
            return None, error

    def _settle(
        self,
        outcome: Outcome,
        code: Lazy,
        value: Any,
        error: BaseException | None,
        *,
        op: str,
        ok_rule: str,
        fail_rule: str,
        check: Callable[[Any], None] | None = None,
        read: bool = False,
    ) -> bool:
        """Judge one call against ``outcome``; True when it succeeded (and the model moved on)."""
        codes = sorted(c.value for c in outcome.errors)
        if not self.comparing:
            self.coverage.operations[op, "ok" if error is None else "rejected"] += 1
        if error is not None:
            if not isinstance(error, StoreError):
                self._violation(
                    "PORT-3",
                    f"{op} let a raw {type(error).__module__}.{type(error).__name__} escape "
                    f"({error}); every failure must be a StoreError",
                    Lazy(lambda: f"{code}  # raises {type(error).__name__} here"),
                )
            if error.code in outcome.errors:
                self._record(Lazy(lambda: repro.expect_error(str(code), codes)), read=read)
                if not read:
                    self._rejected(outcome, error.code, fail_rule)
                return False
            if outcome.must_fail:
                self._violation(
                    fail_rule,
                    f"{op} raised {error.code.value} ({error.message}); the contract requires "
                    f"one of: {', '.join(codes)} ({'; '.join(outcome.reasons)})",
                    Lazy(lambda: repro.expect_error(str(code), codes)),
                )
            self._violation(
                ok_rule,
                f"{op} raised StoreError({error.code.value}: {error.message}) for a valid call; "
                "the contract requires it to succeed",
                Lazy(lambda: f"{code}  # raises StoreError({error.code.value}) here"),
            )
        if outcome.must_fail:
            self._violation(
                fail_rule,
                f"{op} returned {value!r:.100} instead of raising StoreError with one of: "
                f"{', '.join(codes)} ({'; '.join(outcome.reasons)})",
                Lazy(lambda: repro.expect_error(str(code), codes)),
            )
        if check is not None:
            check(value)
        self._record(code, read=read)
        if outcome.after is not None:
            self.model = outcome.after
        return True

    def _rejected(self, outcome: Outcome, code: ErrorCode, fail_rule: str) -> None:
        """The store took an allowed error branch of a write: nothing may have changed."""
        if outcome.must_fail:
            rule_id = fail_rule
        elif code is ErrorCode.ALREADY_EXISTS:
            rule_id = "IDEM-1"
        elif code is ErrorCode.VALIDATION_ERROR:
            rule_id = "DATA-2"
        else:
            rule_id = fail_rule
        self.last.rejected_rule = rule_id
        self.dirty = True

    def _begin_write(
        self, op: str, rule_id: str, sessions: Sequence[str], runs: Sequence[str] = ()
    ) -> None:
        moved_from = [self.model.runs[r].session_id for r in runs if r in self.model.runs]
        self.last = LastWrite(
            op=op,
            rule=rule_id,
            sessions=frozenset([*sessions, *moved_from]),
            runs=frozenset(runs),
            restarted=dict(self.restarted),
            removed=dict(self.removed),
        )
        self.dirty = True

    def _mismatch(
        self,
        rule_id: str,
        what: str,
        code: Lazy,
        projection: str,
        expected: Any,
        also: tuple[str, ...] = (),
    ) -> NoReturn:
        self._violation(
            rule_id,
            what,
            Lazy(lambda: f"result = {code}\nassert {projection} == {repro.render(expected)}"),
            also,
        )

    def _exact_mismatch(
        self, rule_id: str, what: str, code: Lazy, projection: str, expected: Any
    ) -> NoReturn:
        self._violation(
            rule_id,
            what,
            Lazy(
                lambda: (
                    f"result = {code}\n"
                    f"assert exact_difference({repro.render(expected)}, {projection}) is None"
                )
            ),
        )

    # -- drawing --------------------------------------------------------------------------------
    def _session_id(self, data: st.DataObject) -> str:
        return data.draw(self.any_session)

    def _pick(self, data: st.DataObject, items: Sequence[Any]) -> Any:
        """One of ``items`` (an index draw: cheap, and it shrinks towards the first)."""
        return items[data.draw(st.integers(0, len(items) - 1))]

    def _new_event_id(self, data: st.DataObject) -> str:
        style = data.draw(ID_STYLE)
        if style == 0:
            return data.draw(HOSTILE_ID)
        if style == 1 and self.used_event_ids:
            known: str = self._pick(data, self.used_event_ids)
            twin: str = self._pick(data, near_misses(known))
            return twin
        self.fresh += 1
        return f"e{self.fresh}"

    def _event(
        self,
        data: st.DataObject,
        *,
        session_id: str | None = None,
        run_id: Any = ...,
        event_id: str | None = None,
    ) -> Event:
        sid = session_id if session_id is not None else self._session_id(data)
        eid = event_id if event_id is not None else self._new_event_id(data)
        if run_id is ...:
            run_id, type_, timestamp, payload, supplied = data.draw(self.event_fields)
        else:
            type_, timestamp, payload, supplied = data.draw(self.event_fields_for_run)
        event = Event(
            id=eid,
            type=type_,
            timestamp=timestamp,
            session_id=sid,
            run_id=run_id,
            data=payload,
            sequence_number=supplied,
        )
        if eid not in self.used_event_ids:
            self.used_event_ids.append(eid)
        return event

    def _event_or_reappend(self, data: st.DataObject, session_id: str | None = None) -> Event:
        """A new event, or (one time in four) a new copy of an id used before."""
        if self.used_event_ids and data.draw(ONE_IN_FOUR) == 0:
            removed = sorted(self.removed)
            prefer_removed = bool(removed) and data.draw(st.booleans())
            eid = self._pick(data, removed if prefer_removed else self.used_event_ids)
            previous = self.model.by_id.get(eid)
            sid = session_id or (
                previous.session_id
                if previous is not None and data.draw(st.booleans())
                else self._session_id(data)
            )
            return self._event(data, session_id=sid, event_id=eid)
        return self._event(data, session_id=session_id)

    def _session(self, data: st.DataObject, session_id: str | None = None) -> Session:
        agent, status, created, updated, deleted, metadata, extras = data.draw(self.session_fields)
        tags, context, parent = extras
        return Session(
            id=session_id if session_id is not None else self._session_id(data),
            agent_id=agent,
            status=status,
            created_at=created,
            updated_at=updated,
            deleted_at=deleted,
            metadata=metadata,
            tags=tags,
            context=context,
            parent_session_id=parent,
        )

    def _run(
        self,
        data: st.DataObject,
        *,
        session_id: str | None = None,
        status: RunStatus | None = None,
        run_id: str | None = None,
    ) -> Run:
        drawn_id, drawn_status, started, turns, metadata, extras = data.draw(self.run_fields)
        cost, run_input, provider = extras
        return Run(
            id=run_id if run_id is not None else drawn_id,
            session_id=session_id if session_id is not None else self._session_id(data),
            status=status if status is not None else drawn_status,
            started_at=started,
            turn_count=turns,
            metadata=metadata,
            cost_usd=cost,
            input=run_input,
            provider=provider,
        )

    @staticmethod
    def _for_session(bad: Any, session_id: str) -> Any:
        """An invalid event moved to ``session_id`` (unless its session id is what is wrong)."""
        if isinstance(bad, Event) and isinstance(bad.session_id, str) and bad.session_id:
            return Event.model_construct(**{**bad.__dict__, "session_id": session_id})
        return bad

    # -- setup ----------------------------------------------------------------------------------
    @initialize(chosen=pools(), data=st.data())
    def start(self, chosen: Pools, data: st.DataObject) -> None:
        """Choose the example's pools, then save some sessions, as an agent platform would."""
        self.pools = chosen
        self._cache_strategies()
        if any(confusable(a, b) for a in chosen.sessions for b in chosen.sessions):
            self.coverage.hit("confusable ids in one example")
        for sid in chosen.sessions[: data.draw(INITIAL_SESSIONS)]:
            self._act("_save_session", self._session(data, session_id=sid))
            self._check_state()

    # -- sessions -------------------------------------------------------------------------------
    @rule(data=st.data())
    def save_session(self, data: st.DataObject) -> None:
        self._act("_save_session", self._session(data))

    def _save_session(self, session: Session) -> bool:
        replacing = session.id in self.model.sessions
        self._begin_write("save_session", "SES-1", [session.id])
        outcome = self.model.save_session(session)
        code = repro.lazy_call("save_session", session)
        value, error = self._call(lambda: self.store.save_session(session))
        ok = self._settle(
            outcome, code, value, error, op="save_session", ok_rule="SES-1", fail_rule="SES-1"
        )
        if ok:
            self.coverage.hit("session saved")
            if replacing:
                self.coverage.hit("session replaced by a new save")
            self._note_nul(session)
        return ok

    @rule(data=st.data())
    def read_one(self, data: st.DataObject) -> None:
        """get_session, get_run, get_active_run or get_latest_sequence of a pool id."""
        which = data.draw(st.integers(0, 3))
        if which == 0:
            self._act(
                "_check_session", self._session_id(data), read_rule="SES-1", in_invariant=False
            )
        elif which == 1:
            self._act("_check_run", data.draw(self.any_run), in_invariant=False)
        elif which == 2:
            self._act("_check_active_run", self._session_id(data), in_invariant=False)
        else:
            self._act("_check_latest", self._session_id(data), in_invariant=False)

    @rule(data=st.data())
    def list_sessions(self, data: st.DataObject) -> None:
        present = sorted(s.status for s in self.model.sessions.values())
        status = self._status_filter(data, list(SessionStatus), present)
        agent_id = data.draw(st.one_of(st.none(), self.any_agent))
        limit, offset = data.draw(PAGE_ARGUMENTS)
        if data.draw(INSIDE_OFFSET):
            matching = self.model.list_sessions(status=status, agent_id=agent_id)
            offset = self._offset_into(data, matching, offset)
        kwargs = {"status": status, "agent_id": agent_id, "limit": limit, "offset": offset}
        self._act("_list_sessions", kwargs)

    def _list_sessions(self, kwargs: dict[str, Any]) -> None:
        outcome = self.model.list_sessions(**kwargs)
        code = repro.lazy_call("list_sessions", **kwargs)
        value, error = self._call(lambda: self.store.list_sessions(**kwargs))

        def check(found: Any) -> None:
            agent = kwargs["agent_id"]
            listed = [getattr(s, "agent_id", None) for s in found or ()]
            # A session of a look-alike agent listed for this agent: the filter matched loosely.
            loose = agent is not None and any(
                isinstance(a, str) and confusable(agent, a) for a in listed
            )
            self._compare_list(
                "DATA-3" if loose else "SES-3",
                "list_sessions",
                code,
                outcome.result,
                found,
                "[s.id for s in result]",
            )

        if self._settle(
            outcome,
            code,
            value,
            error,
            op="list_sessions",
            ok_rule="SES-3",
            fail_rule="SES-3",
            check=check,
            read=True,
        ):
            if any(v is not None for v in kwargs.values()):
                self.coverage.hit("sessions listed with filters or paging")
            if any(s.deleted_at is not None for s in outcome.result):
                self.coverage.hit("soft-deleted session listed")
        else:
            self.coverage.hit("invalid list argument rejected")

    @rule(data=st.data())
    def delete_session(self, data: st.DataObject) -> None:
        self._act("_delete_session", self._session_id(data))

    def _delete_session(self, sid: str) -> None:
        had_content = bool(self.model.events_of(sid) or self.model.runs_of(sid))
        self._begin_write("delete_session", "SES-4", [sid])
        self.last.deleted = sid
        outcome = self.model.delete_session(sid)
        removed = {e.id: e for e in self.model.events_of(sid)}
        code = repro.lazy_call("delete_session", sid)
        value, error = self._call(lambda: self.store.delete_session(sid))
        if self._settle(
            outcome, code, value, error, op="delete_session", ok_rule="SES-4", fail_rule="SES-4"
        ):
            if had_content:
                self.coverage.hit("session with runs or events deleted")
            if removed:
                self.restarted[sid] = self.ever_numbered[sid]
                self.removed.update(removed)

    # -- runs -----------------------------------------------------------------------------------
    @rule(data=st.data())
    def save_run(self, data: st.DataObject) -> None:
        self._act("_save_run", self._run(data))

    def _save_run(self, run: Run) -> bool:
        self._begin_write("save_run", "RUN-1", [run.session_id], [run.id])
        outcome = self.model.save_run(run)
        code = repro.lazy_call("save_run", run)
        value, error = self._call(lambda: self.store.save_run(run))
        ok = self._settle(
            outcome, code, value, error, op="save_run", ok_rule="RUN-1", fail_rule="RUN-1"
        )
        if ok:
            self.coverage.hit("run saved")
            self._note_nul(run)
        return ok

    @rule(data=st.data())
    def list_runs(self, data: st.DataObject) -> None:
        with_runs = sorted({r.session_id for r in self.model.runs.values()})
        prefer_with_runs = bool(with_runs) and data.draw(ONE_IN_FOUR) > 0
        sid: str = self._pick(data, with_runs) if prefer_with_runs else self._session_id(data)
        present = sorted(r.status for r in self.model.runs_of(sid))
        status = self._status_filter(data, list(RunStatus), present)
        limit, offset = data.draw(PAGE_ARGUMENTS)
        if data.draw(INSIDE_OFFSET):
            offset = self._offset_into(data, self.model.list_runs(sid, status=status), offset)
        kwargs = {"status": status, "limit": limit, "offset": offset}
        self._act("_list_runs", sid, kwargs)

    def _list_runs(self, sid: str, kwargs: dict[str, Any]) -> None:
        outcome = self.model.list_runs(sid, **kwargs)
        code = repro.lazy_call("list_runs", sid, **kwargs)
        value, error = self._call(lambda: self.store.list_runs(sid, **kwargs))

        def check(found: Any) -> None:
            self._compare_list(
                "RUN-2", "list_runs", code, outcome.result, found, "[r.id for r in result]"
            )

        if self._settle(
            outcome,
            code,
            value,
            error,
            op="list_runs",
            ok_rule="RUN-2",
            fail_rule="RUN-2",
            check=check,
            read=True,
        ):
            if any(v is not None for v in kwargs.values()):
                self.coverage.hit("runs listed with filters or paging")
        else:
            self.coverage.hit("invalid list argument rejected")

    # -- appends --------------------------------------------------------------------------------
    @rule(data=st.data())
    def append_event(self, data: st.DataObject) -> None:
        self._act("_append_single", self._event_or_reappend(data), with_sequence=False)

    @rule(data=st.data())
    def append_event_with_sequence(self, data: st.DataObject) -> None:
        self._act("_append_single", self._event_or_reappend(data), with_sequence=True)

    @rule(data=st.data())
    def append_invalid_event(self, data: st.DataObject) -> None:
        """One invalid event through a single append: rejected, and no number used (SEQ-1)."""
        bad = self._for_session(data.draw(INVALID_EVENTS), self._session_id(data))
        self._act("_append_single", bad, with_sequence=data.draw(st.booleans()))

    def _append_single(self, event: Event, *, with_sequence: bool) -> None:
        op = "append_event_with_sequence" if with_sequence else "append_event"
        op_rule = "SEQ-1" if with_sequence else "EVT-1"
        session_id, event_id = getattr(event, "session_id", None), getattr(event, "id", None)
        self._begin_write(op, op_rule, [session_id] if isinstance(session_id, str) else [])
        self.last.inputs = {event_id: event} if isinstance(event_id, str) else {}
        outcome = self.model.append_one(event)
        if outcome.kinds:
            self.last.kinds = {event.id: outcome.kinds[0]}
        code = repro.lazy_call(op, event)
        method = getattr(self.store, op)
        value, error = self._call(lambda: method(event))

        def check(returned: Any) -> None:
            if not with_sequence:
                if returned is not None:
                    self._mismatch(
                        "EVT-1",
                        f"append_event returned {returned!r:.80}, not None",
                        code,
                        "result",
                        None,
                    )
                return
            self._compare_appended(
                code, [outcome.result], returned, outcome.kinds, [event], op_rule, single=True
            )

        if self._settle(
            outcome, code, value, error, op=op, ok_rule=op_rule, fail_rule=op_rule, check=check
        ):
            self._after_append(outcome, [event])
            self.coverage.hit(
                "append_event_with_sequence stored an event"
                if with_sequence
                else "append_event stored an event"
            )
        elif outcome.must_fail:
            self.coverage.hit("invalid single event rejected")

    def _after_append(self, outcome: Outcome, inputs: Sequence[Event]) -> None:
        kinds = outcome.kinds
        sessions_with_new = set()
        for event, kind in zip(inputs, kinds, strict=True):
            if kind == NEW:
                sessions_with_new.add(event.session_id)
                self.ever_numbered[event.session_id] += 1
                if event.session_id in self.restarted:
                    self.coverage.hit("append after delete restarted at 1")
                    del self.restarted[event.session_id]
                self.removed.pop(event.id, None)
                if event.sequence_number is not None:
                    self.coverage.hit("caller-supplied sequence_number ignored")
            elif kind == KNOWN:
                self.coverage.hit("stored id appended again (same session)")
            elif kind == FOREIGN:
                self.coverage.hit("id of another session appended")
            elif kind == REPEAT:
                self.coverage.hit("repeated id inside a batch")
        others = {sid for sid in self.model.logs if self.model.logs[sid]} - sessions_with_new
        if sessions_with_new and others:
            self.coverage.hit("appends to two sessions")
        self._note_nul(list(inputs))

    @rule(data=st.data())
    def append_events(self, data: st.DataObject) -> None:
        self._act("_append_batch", self._batch(data))

    def _batch(
        self, data: st.DataObject, *, session_id: str | None = None, run_id: Any = ...
    ) -> list[Event]:
        size = data.draw(st.integers(0, 5))
        single = session_id or (self._session_id(data) if data.draw(st.booleans()) else None)
        batch: list[Event] = []
        for _ in range(size):
            choice = data.draw(st.integers(0, 3))
            if choice == 0 and batch:
                # A repeated id, possibly with new contents (IDEM-3: the first occurrence wins).
                first = self._pick(data, batch)
                if data.draw(st.booleans()):
                    batch.append(first)
                else:
                    batch.append(
                        self._event(
                            data,
                            session_id=first.session_id,
                            run_id=first.run_id,
                            event_id=first.id,
                        )
                    )
            elif choice == 1 and self.used_event_ids and run_id is ...:
                batch.append(self._event_or_reappend(data, session_id=single))
            else:
                batch.append(self._event(data, session_id=single, run_id=run_id))
        return batch

    def _append_batch(self, batch: Any, *, op_label: str = "append_events") -> bool:
        items: list[Any] = batch if isinstance(batch, list) else []
        sessions = sorted(
            {e.session_id for e in items if isinstance(e, Event) and isinstance(e.session_id, str)}
        )
        self._begin_write("append_events", "BATCH-1", sessions)
        valid = [e for e in items if isinstance(e, Event)]
        self.last.inputs = {e.id: e for e in reversed(valid)}
        self.last.mixed = len(sessions) > 1
        outcome = self.model.append_batch(batch)
        if outcome.succeeds:
            self.last.kinds = {}
            for event, kind in zip(valid, outcome.kinds, strict=True):
                self.last.kinds.setdefault(event.id, kind)
        code = repro.lazy_call("append_events", list(items) if items else batch)
        value, error = self._call(lambda: self.store.append_events(batch))

        def check(returned: Any) -> None:
            self._compare_appended(
                code, outcome.result, returned, outcome.kinds, items, "BATCH-1", single=False
            )

        ok = self._settle(
            outcome,
            code,
            value,
            error,
            op=op_label,
            ok_rule="BATCH-1",
            fail_rule="BATCH-3",
            check=check,
        )
        if ok:
            self._after_append(outcome, valid)
            if not items:
                self.coverage.hit("empty batch")
            if NEW in outcome.kinds:
                self.coverage.hit("batch stored new events")
            if len(sessions) > 1:
                self.coverage.hit("batch mixing sessions")
        elif outcome.must_fail:
            self.coverage.hit("invalid batch rejected")
        return ok

    @rule(data=st.data())
    def append_invalid_batch(self, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 4)) == 0:
            self._act("_append_batch", self._pick(data, [None, "abc", {"id": "e1"}, 42]))
            return
        elements: list[Any] = list(self._batch(data))
        bad = self._for_session(data.draw(BAD_ELEMENTS), self._session_id(data))
        elements.insert(data.draw(st.integers(0, len(elements))), bad)
        self._act("_append_batch", elements)

    # -- flush ----------------------------------------------------------------------------------
    @rule(data=st.data())
    def flush(self, data: st.DataObject) -> None:
        session = self._session(data)
        run = self._run(data, session_id=session.id)
        count = data.draw(st.integers(0, 4))
        events = []
        for _ in range(count):
            if self.used_event_ids and data.draw(st.integers(0, 3)) == 0:
                eid = self._pick(data, self.used_event_ids)
                events.append(
                    self._event(
                        data,
                        session_id=session.id,
                        run_id=self._pick(data, [None, run.id]),
                        event_id=eid,
                    )
                )
            else:
                events.append(
                    self._event(
                        data,
                        session_id=session.id,
                        run_id=self._pick(data, [None, run.id]),
                    )
                )
        result = ExecutionResult(session=session, run=run, events=events)
        payload: Any = result
        if data.draw(st.integers(0, 3)) == 0:
            payload = {"session": session, "run": run, "events": events}
        self._act("_flush", payload, result)

    @rule(data=st.data())
    def flush_invalid(self, data: st.DataObject) -> None:
        session = self._session(data)
        run = self._run(data, session_id=session.id)
        events = [
            self._event(data, session_id=session.id, run_id=run.id)
            for _ in range(data.draw(st.integers(0, 2)))
        ]
        kind = data.draw(
            st.sampled_from(
                [
                    "not-a-result",
                    "missing-events",
                    "run-of-other-session",
                    "event-of-other-session",
                    "event-of-other-run",
                    "invalid-event",
                    "invalid-session",
                ]
            )
        )
        others = [s for s in self.pools.sessions if s != session.id]
        payload: Any
        if kind == "not-a-result":
            payload = data.draw(NON_MODELS)
        elif kind == "missing-events":
            payload = {"session": session, "run": run}
        elif kind == "run-of-other-session":
            payload = ExecutionResult(
                session=session,
                run=run.model_copy(update={"session_id": self._pick(data, others)}),
                events=events,
            )
        elif kind == "event-of-other-session":
            stray = self._event(data, session_id=self._pick(data, others), run_id=None)
            payload = ExecutionResult(session=session, run=run, events=[*events, stray])
        elif kind == "event-of-other-run":
            other_runs = [r for r in self.pools.runs if r != run.id]
            stray = self._event(data, session_id=session.id, run_id=self._pick(data, other_runs))
            payload = ExecutionResult(session=session, run=run, events=[stray, *events])
        elif kind == "invalid-event":
            bad = self._for_session(data.draw(INVALID_EVENTS), session.id)
            position = data.draw(st.integers(0, len(events)))
            payload = ExecutionResult.model_construct(
                session=session,
                run=run,
                events=[*events[:position], bad, *events[position:]],
                provider_metadata={},
            )
        else:
            bad_session = data.draw(INVALID_SESSIONS)
            if bad_session.id:
                bad_session = Session.model_construct(**{**bad_session.__dict__, "id": session.id})
            payload = ExecutionResult.model_construct(
                session=bad_session,
                run=run,
                events=events,
                provider_metadata={},
            )
        self._act("_flush", payload, None)

    @precondition(lambda self: self.last_flush is not None)
    @rule()
    def flush_again(self) -> None:
        """Flush exactly the last flushed result again (FLUSH-4)."""
        self._act("_flush", self.last_flush, None, again=True)

    def _flush(self, payload: Any, result: ExecutionResult | None, *, again: bool = False) -> bool:
        parts = payload.__dict__ if isinstance(payload, ExecutionResult) else payload
        session_ids: list[str] = []
        run_ids: list[str] = []
        if isinstance(parts, dict):
            for key, target in (("session", session_ids), ("run", run_ids)):
                part = parts.get(key)
                if isinstance(part, Session | Run) and isinstance(part.id, str):
                    target.append(part.id)
            if isinstance(parts.get("run"), Run) and isinstance(parts["run"].session_id, str):
                session_ids.append(parts["run"].session_id)
            for event in parts.get("events") or ():
                if isinstance(event, Event) and isinstance(event.session_id, str):
                    session_ids.append(event.session_id)
        self._begin_write("flush", "FLUSH-4" if again else "FLUSH-1", session_ids, run_ids)
        events = list(result.events) if result is not None else []
        if again and isinstance(parts, dict):
            events = list(parts["events"])
        self.last.inputs = {e.id: e for e in reversed(events) if isinstance(e, Event)}
        outcome = self.model.flush(payload)
        flushed = parts["events"] if outcome.succeeds and isinstance(parts, dict) else []
        if outcome.succeeds:
            for event, kind in zip(flushed, outcome.kinds, strict=True):
                self.last.kinds.setdefault(event.id, kind)
        code = repro.lazy_call("flush", payload)
        value, error = self._call(lambda: self.store.flush(payload))
        ok = self._settle(
            outcome,
            code,
            value,
            error,
            op="flush",
            ok_rule="FLUSH-4" if again else "FLUSH-1",
            fail_rule="FLUSH-2",
        )
        if ok:
            self._after_append(outcome, list(flushed))
            self.coverage.hit("identical flush repeated" if again else "flush stored")
            self.last_flush = payload
        elif outcome.must_fail:
            self.coverage.hit("invalid flush rejected")
        return ok

    # -- the ASM pipeline: running run, batches, final flush ------------------------------------
    @precondition(lambda self: self.pipeline is None)
    @rule(data=st.data())
    def start_run(self, data: st.DataObject) -> None:
        """Save a run as running (and its session first, if the store has none)."""
        self.pipeline = self._start_pipeline(data)

    @precondition(lambda self: self.pipeline is not None)
    @rule(data=st.data())
    def pipeline_batch(self, data: st.DataObject) -> None:
        """The event pipeline appends a batch of the running run's events."""
        assert self.pipeline is not None
        self._pipeline_batch(data, self.pipeline)

    @precondition(lambda self: self.pipeline is not None)
    @rule(data=st.data())
    def finish_run(self, data: st.DataObject) -> None:
        """The run ends: flush its session, run and buffered events."""
        assert self.pipeline is not None
        pipeline, self.pipeline = self.pipeline, None
        self._finish_pipeline(data, pipeline)

    @rule(data=st.data())
    def run_pipeline(self, data: st.DataObject) -> None:
        """A whole run in one step: running, one to three pipeline batches, the final flush."""
        pipeline = self._start_pipeline(data)
        if pipeline is None:
            return
        for _ in range(data.draw(st.integers(1, 3))):
            self._check_state()
            self._pipeline_batch(data, pipeline)
        self._check_state()
        self._finish_pipeline(data, pipeline)

    def _start_pipeline(self, data: st.DataObject) -> Pipeline | None:
        sid = self._session_id(data)
        session = self.model.sessions.get(sid)
        if session is None:
            session = self._session(data, session_id=sid)
            if not self._act("_save_session", session):
                return None
            self._check_state()
        run = self._run(data, session_id=sid, status=RunStatus.RUNNING)
        return Pipeline(session, run, []) if self._act("_save_run", run) else None

    def _pipeline_batch(self, data: st.DataObject, pipeline: Pipeline) -> None:
        batch: list[Any] = [
            self._event(data, session_id=pipeline.session.id, run_id=pipeline.run.id)
            for _ in range(data.draw(st.integers(1, 4)))
        ]
        if data.draw(ONE_IN_FOUR) == 0:
            # A corrupt event in the pipeline: the whole batch must be rejected (BATCH-3).
            bad = self._for_session(data.draw(BAD_ELEMENTS), pipeline.session.id)
            batch.insert(data.draw(st.integers(0, len(batch))), bad)
        if self._act("_append_batch", batch, op_label="append_events (pipeline batch)"):
            pipeline.events.extend(batch)

    def _finish_pipeline(self, data: st.DataObject, pipeline: Pipeline) -> None:
        final = [
            self._event(data, session_id=pipeline.session.id, run_id=pipeline.run.id)
            for _ in range(data.draw(st.integers(0, 2)))
        ]
        run = pipeline.run.model_copy(
            update={
                "status": data.draw(FINAL_RUN_STATUSES),
                "ended_at": data.draw(self.any_moment),
                "turn_count": pipeline.run.turn_count + 1,
                "output": {"text": "done"},
            }
        )
        session = pipeline.session.model_copy(update={"status": SessionStatus.COMPLETED})
        result = ExecutionResult(session=session, run=run, events=[*pipeline.events, *final])
        if self._act("_flush", result, result):
            self.coverage.hit("pipeline run finished (running, batches, flush)")

    # -- reads ----------------------------------------------------------------------------------
    @rule(data=st.data())
    def get_events(self, data: st.DataObject) -> None:
        self._act("_read_events", self._session_id(data), data.draw(self.filters))

    def _read_events(self, sid: str, kwargs: dict[str, Any]) -> None:
        outcome = self.model.get_events(sid, **kwargs)
        code = repro.lazy_call("get_events", sid, **kwargs)
        value, error = self._call(lambda: self.store.get_events(sid, **kwargs))
        filtered = any(v is not None for v in kwargs.values())
        read_rule = "EVT-3" if filtered else "EVT-2"

        def check(found: Any) -> None:
            self._compare_list(
                read_rule,
                "get_events",
                code,
                outcome.result,
                found,
                "[(e.id, e.sequence_number) for e in result]",
            )

        if self._settle(
            outcome,
            code,
            value,
            error,
            op="get_events",
            ok_rule=read_rule,
            fail_rule="EVT-3",
            check=check,
            read=True,
        ):
            if filtered:
                self.coverage.hit("events read with filters")
        else:
            self.coverage.hit("invalid event filter rejected")

    def _offset_into(self, data: st.DataObject, matching: Outcome, offset: Any) -> Any:
        """An offset that lands inside what the filters match (where paging mistakes show)."""
        if not matching.succeeds or len(matching.result) < 2:
            return offset
        return data.draw(st.integers(1, len(matching.result) - 1))

    def _status_filter(self, data: st.DataObject, every: list[Any], present: list[Any]) -> Any:
        """A status filter: none, one that matches something (as enum or string), any, or junk.

        ``present`` lists the statuses in the store, one entry per session or run, so the
        commonest status is the likeliest filter.
        """
        choice = data.draw(STATUS_FILTER_KIND)
        if choice < 25:
            return None
        if choice >= 94:
            return "sleeping"
        status = self._pick(data, present if present and choice < 80 else every)
        return status.value if choice % 2 else status

    def _event_filters(self) -> st.SearchStrategy[dict[str, Any]]:
        moments = self.pools.moments or [datetime(2026, 1, 1, tzinfo=OFFSETS[0])]
        since = st.tuples(
            st.sampled_from(moments), st.sampled_from([-1, 0, 0, 1]), st.sampled_from(OFFSETS)
        ).map(lambda t: (t[0] + timedelta(microseconds=t[1])).astimezone(t[2]))
        count = weighted((2, NOTHING), (1, st.integers(0, 5)))
        valid = st.fixed_dictionaries(
            {
                "run_id": weighted((2, NOTHING), (1, st.sampled_from(self.pools.runs))),
                "type": weighted(
                    (3, NOTHING),
                    (1, st.sampled_from(FEW_TYPES)),
                    (1, st.sampled_from([t.value for t in FEW_TYPES])),
                ),
                "since": weighted((3, NOTHING), (1, since)),
                "after": count,
                "before": weighted((2, NOTHING), (1, st.integers(0, 7))),
                "limit": count,
            }
        )
        invalid = st.sampled_from(
            [
                {"limit": -1},
                {"after": -1},
                {"before": -2},
                {"type": "bogus_type"},
                {"since": datetime(2026, 1, 1, 12, 0)},
                {"limit": True},
                {"after": 1.5},
            ]
        )
        return weighted((4, valid), (1, invalid))

    @precondition(lambda self: any(self.model.logs.values()))
    @rule(data=st.data())
    def tail_events(self, data: st.DataObject) -> None:
        """A consumer polling with a cursor: get_events(after=cursor, limit=n) (EVT-3)."""
        sid = self._pick(data, sorted(sid for sid, log in self.model.logs.items() if log))
        cursor = data.draw(st.integers(0, self.model.latest_sequence(sid)))
        self._act("_read_events", sid, {"after": cursor, "limit": data.draw(st.integers(1, 3))})

    @precondition(lambda self: any(self.model.logs.values()) or bool(self.model.sessions))
    @rule(data=st.data())
    def mutate_returned(self, data: st.DataObject) -> None:
        """Play a caller that changes an object the store handed out (EVT-4, SES-1)."""
        with_events = sorted(sid for sid, log in self.model.logs.items() if log)
        if with_events and (not self.model.sessions or data.draw(st.booleans())):
            self._act("_mutate", "events", self._pick(data, with_events))
        else:
            self._act("_mutate", "session", self._pick(data, sorted(self.model.sessions)))

    def _mutate(self, what: str, sid: str) -> None:
        target: Any = None
        if what == "events":
            code = f"store.get_events({repro.render(sid)})[0].data[{MUTATION_KEY!r}] = True"
            value, error = self._call(lambda: self.store.get_events(sid))
            if error is None and isinstance(value, list) and value and isinstance(value[0], Event):
                target = value[0].data
        else:
            code = f"store.get_session({repro.render(sid)}).metadata[{MUTATION_KEY!r}] = True"
            value, error = self._call(lambda: self.store.get_session(sid))
            if error is None and isinstance(value, Session):
                target = value.metadata
        if not isinstance(target, dict):
            return  # the comparisons report a store that cannot read this back
        target[MUTATION_KEY] = True
        self._begin_write("mutate_returned", "EVT-4", [sid])
        self._record(code)
        self.coverage.hit("caller mutated a returned object")

    # -- comparing the whole state --------------------------------------------------------------
    @invariant()
    def store_matches_model(self) -> None:
        self.coverage.steps += 1
        if self.dirty:
            self._check_state()

    def _check_state(self, *, full: bool = False) -> None:
        """Compare the store with the model where the last write may have changed it (the
        sessions it touched, and ids confusable with theirs); ``full``: everything, as at the end
        of every example, which catches damage a write did elsewhere."""
        self.dirty = False
        self.comparing = True
        try:
            self._compare_state(full)
        finally:
            self.comparing = False

    def _compare_state(self, full: bool) -> None:
        last = self.last
        op = last.op
        touched = set(self.pools.sessions) if full else set(last.sessions)
        touched |= {s for s in self.pools.sessions for t in last.sessions if confusable(s, t)}
        sessions_changed = full or op in SESSION_WRITES
        runs_changed = full or op in RUN_WRITES
        events_changed = full or op in EVENT_WRITES
        for sid in self.pools.sessions:
            if sid in touched and events_changed:
                self._check_events(sid)
                self._check_latest(sid, in_invariant=True)
            if sid in touched and sessions_changed:
                self._check_session(sid, read_rule="SES-1", in_invariant=True)
            if sid in touched and runs_changed:
                self._check_runs(sid)
                self._check_active_run(sid, in_invariant=True)
        if sessions_changed:
            self._check_all_sessions()
        if runs_changed:
            wide = full or op == "delete_session"
            for rid in self.pools.runs if wide else sorted(last.runs):
                self._check_run(rid, in_invariant=True)

    def _context_rule(self, default: str, subject: str | None) -> str:
        """The rule a state mismatch after the last write breaks, given what that write was."""
        last = self.last
        if (
            subject is not None
            and subject not in last.sessions
            and any(confusable(subject, other) for other in last.sessions)
        ):
            return "DATA-3"
        if last.rejected_rule is not None:
            return last.rejected_rule
        if last.op == "delete_session":
            return "SES-4"
        if last.op == "flush":
            return last.rule
        if last.op == "mutate_returned":
            return "EVT-4" if default in ("EVT-2", "SEQ-1", "EVT-4") else "SES-1"
        return default

    def _check_events(self, sid: str) -> None:
        expected = self.model.events_of(sid)
        code = repro.lazy_call("get_events", sid)
        value, error = self._call(lambda: self.store.get_events(sid))
        outcome = self.model.get_events(sid)

        def check(found: Any) -> None:
            self._compare_log(sid, code, expected, found)

        self._settle(
            outcome,
            code,
            value,
            error,
            op="get_events",
            ok_rule=self._context_rule("EVT-2", sid),
            fail_rule="EVT-2",
            check=check,
            read=True,
        )

    def _compare_log(self, sid: str, code: Lazy, expected: list[Event], found: Any) -> None:
        if not isinstance(found, list) or not all(isinstance(e, Event) for e in found):
            self._mismatch(
                self._context_rule("EVT-2", sid),
                f"get_events({sid!r}) returned {found!r:.100}, not a list of Event",
                code,
                "result",
                expected,
            )
        want_ids = [e.id for e in expected]
        got_ids = [e.id for e in found]
        last = self.last
        also: tuple[str, ...] = ()
        if want_ids != got_ids:
            extra = [i for i in got_ids if i not in want_ids]
            missing = [i for i in want_ids if i not in got_ids]
            duplicated = [i for i in got_ids if got_ids.count(i) > 1]
            if not extra and not missing and not duplicated:
                rule_id, why = "EVT-2", "the right events in the wrong order"
            elif duplicated or any(i in self.model.by_id for i in extra):
                dup = (duplicated or [i for i in extra if i in self.model.by_id])[0]
                kind = last.kinds.get(dup)
                filed_under = [e.session_id for e in found if e.id == dup]
                if any(f != sid and confusable(f, sid) for f in filed_under):
                    rule_id = "DATA-3"  # another session's event shows up here
                elif kind == REPEAT:
                    rule_id = "IDEM-3"
                else:
                    rule_id = "IDEM-1"
                    if last.rule == "FLUSH-4":
                        also = ("FLUSH-4",)
                why = f"event id {dup!r} stored twice (or under two sessions)"
            elif extra:
                rule_id = self._context_rule(last.rule, sid)
                if last.op == "delete_session" and sid == last.deleted:
                    rule_id = "SES-4"
                why = f"unexpected events {extra!r:.100}"
            else:
                stored_now = [i for i in missing if i in last.kinds]
                if any(i in last.removed for i in missing):
                    rule_id = "SES-4"
                elif last.op == "delete_session" and last.deleted != sid:
                    rule_id = "DATA-3" if confusable(sid, last.deleted or "") else "SES-4"
                elif stored_now:
                    rule_id = self._context_rule(last.rule, sid)
                else:
                    rule_id = self._context_rule("EVT-4", sid)
                why = f"events {missing!r:.100} are missing"
            self._mismatch(
                rule_id,
                f"get_events({sid!r}) after {last.op}: {why}; "
                f"expected ids {want_ids!r:.150}, got {got_ids!r:.150}",
                code,
                "[e.id for e in result]",
                want_ids,
                also,
            )
        want_seqs = [e.sequence_number for e in expected]
        got_seqs = [e.sequence_number for e in found]
        if want_seqs != got_seqs:
            index = next(
                i for i, (a, b) in enumerate(zip(want_seqs, got_seqs, strict=True)) if a != b
            )
            event_id = expected[index].id
            supplied = last.inputs.get(event_id)
            if self._is_deleted_event(found[index]) or self._continues_old_counter(
                sid, got_seqs[index], want_seqs[index]
            ):
                rule_id = "SES-4"
            elif supplied is not None and supplied.sequence_number == got_seqs[index]:
                rule_id = "SEQ-3"
            elif last.mixed:
                rule_id = "BATCH-4"
            elif last.rejected_rule is not None:
                rule_id = last.rejected_rule
            else:
                rule_id = "SEQ-1"
            self._mismatch(
                rule_id,
                f"session {sid!r} has sequence numbers {got_seqs!r:.120}; "
                f"they must be {want_seqs!r:.120} (1..n, no gaps or repeats)",
                code,
                "[e.sequence_number for e in result]",
                want_seqs,
            )
        self._compare_contents(sid, code, expected, found)

    def _compare_contents(
        self,
        sid: str,
        code: Lazy,
        expected: list[Event],
        found: list[Event],
        *,
        kinds: Sequence[str] = (),
        default: str | None = None,
        offset: int = 0,
    ) -> None:
        for position, (want, got) in enumerate(zip(expected, found, strict=True)):
            index = position + offset
            difference = exact_difference(want, got)
            if difference is None:
                continue
            kind = kinds[position] if kinds else self.last.kinds.get(want.id)
            if isinstance(got.data, dict) and MUTATION_KEY in got.data:
                rule_id = "EVT-4"
            elif kind == NEW and self._is_deleted_event(got):
                rule_id = "SES-4"
            elif kind == REPEAT:
                rule_id = "IDEM-3"
            elif kind in (KNOWN, FOREIGN):
                rule_id = "IDEM-1"
            elif default is None and self.last.rejected_rule is not None:
                rule_id = self.last.rejected_rule
            elif contains_nul(want):
                rule_id = "DATA-2"
            else:
                rule_id = default or "DATA-1"
            what = f"event {want.id!r} of session {sid!r} differs: {difference}"
            if want == got:
                self._exact_mismatch(rule_id, what, code, f"result[{index}]", want)
            self._mismatch(rule_id, what, code, f"result[{index}]", want)

    def _compare_appended(
        self,
        code: Lazy,
        expected: list[Event],
        found: Any,
        kinds: Sequence[str],
        inputs: list[Any],
        op_rule: str,
        *,
        single: bool,
    ) -> None:
        """Check what an append returned against the model (BATCH-1, SEQ-*, IDEM-*)."""
        if single:
            if not isinstance(found, Event):
                self._mismatch(
                    op_rule,
                    f"append_event_with_sequence returned {found!r:.100}, not the stored Event",
                    code,
                    "result",
                    expected[0],
                )
            found_list = [found]
        else:
            if not isinstance(found, list) or len(found) != len(expected):
                self._mismatch(
                    "BATCH-1",
                    f"append_events returned {found!r:.100}; it must "
                    f"return one event per input element ({len(expected)})",
                    code,
                    "len(result)",
                    len(expected),
                )
            if not all(isinstance(e, Event) for e in found):
                self._mismatch(
                    "BATCH-1",
                    f"append_events returned {found!r:.100}, not events",
                    code,
                    "result",
                    expected,
                )
            found_list = found
        events = [e for e in inputs if isinstance(e, Event)]
        for index, (want, got) in enumerate(zip(expected, found_list, strict=True)):
            kind = kinds[index]
            subject = "the returned event" if single else f"element {index}"
            if got.id != want.id:
                rule_id = (
                    "IDEM-3"
                    if kind == REPEAT
                    else "IDEM-1"
                    if kind in (KNOWN, FOREIGN)
                    else "DATA-3"
                    if confusable(got.id, want.id)
                    else op_rule
                )
                self._mismatch(
                    rule_id,
                    f"{subject} has id {got.id!r}, expected {want.id!r}",
                    code,
                    "result.id" if single else "[e.id for e in result]",
                    want.id if single else [e.id for e in expected],
                )
            if kind != NEW:
                # A stored id must come back as the original, field for field (IDEM-1, IDEM-3).
                difference = exact_difference(want, got)
                if difference is not None:
                    rule_id = "IDEM-3" if kind == REPEAT else "IDEM-1"
                    what = (
                        f"{subject} repeats id {want.id!r} ({kind}); the store must return the "
                        f"event stored first, but {difference}"
                    )
                    self._mismatch(
                        rule_id, what, code, "result" if single else f"result[{index}]", want
                    )
            if got.sequence_number != want.sequence_number:
                rule_id = self._sequence_rule(index, kinds, events, expected, found_list, op_rule)
                what = (
                    f"{subject} (id {want.id!r}, {kind}) got sequence number "
                    f"{got.sequence_number!r}; the contract model assigns "
                    f"{want.sequence_number!r}"
                )
                if single:
                    self._mismatch(
                        rule_id, what, code, "result.sequence_number", want.sequence_number
                    )
                self._mismatch(
                    rule_id,
                    what,
                    code,
                    "[e.sequence_number for e in result]",
                    [e.sequence_number for e in expected],
                )
            if single:
                self._compare_single(code, want, got, kind)
            else:
                self._compare_contents(
                    want.session_id,
                    code,
                    [want],
                    [got],
                    kinds=[kind],
                    default="DATA-1",
                    offset=index,
                )

    def _compare_single(self, code: Lazy, want: Event, got: Event, kind: str) -> None:
        difference = exact_difference(want, got)
        if difference is None:
            return
        rule_id = (
            "IDEM-1"
            if kind in (KNOWN, FOREIGN)
            else "SES-4"
            if self._is_deleted_event(got)
            else "DATA-2"
            if contains_nul(want)
            else "DATA-1"
        )
        what = f"the returned event differs from what the contract model stores: {difference}"
        if want == got:
            self._exact_mismatch(rule_id, what, code, "result", want)
        self._mismatch(rule_id, what, code, "result", want)

    def _sequence_rule(
        self,
        index: int,
        kinds: Sequence[str],
        inputs: list[Event],
        expected: list[Event],
        found: list[Event],
        op_rule: str,
    ) -> str:
        kind = kinds[index]
        want = expected[index]
        sid = want.session_id
        if kind == REPEAT:
            return "IDEM-3"
        if kind in (KNOWN, FOREIGN):
            return "IDEM-1"
        if self._is_deleted_event(found[index]) or self._continues_old_counter(
            sid, found[index].sequence_number, want.sequence_number
        ):
            return "SES-4"
        supplied = inputs[index].sequence_number if index < len(inputs) else None
        if supplied is not None and found[index].sequence_number == supplied:
            return "SEQ-3"
        new_numbers = [
            got.sequence_number
            for got, exp, k in zip(found, expected, kinds, strict=True)
            if k == NEW and exp.session_id == sid
        ]
        consecutive = all(
            isinstance(a, int) and isinstance(b, int) and b == a + 1
            for a, b in itertools.pairwise(new_numbers)
        )
        if not consecutive:
            return "BATCH-4" if self.last.mixed else "BATCH-1" if op_rule == "BATCH-1" else "SEQ-1"
        return "SEQ-1"

    def _compare_list(
        self, rule_id: str, op: str, code: Lazy, expected: list[Any], found: Any, projection: str
    ) -> None:
        def key(item: Any) -> Any:
            return item.id if hasattr(item, "id") else item

        if not isinstance(found, list):
            self._mismatch(
                rule_id, f"{op} returned {found!r:.100}, not a list", code, "result", expected
            )
        want_ids = [key(i) for i in expected]
        got_ids = [key(i) for i in found]
        if op == "get_events":
            want_key = [(e.id, e.sequence_number) for e in expected]
            got_key = [(getattr(e, "id", None), getattr(e, "sequence_number", None)) for e in found]
            if want_key != got_key:
                self._mismatch(
                    rule_id,
                    f"{op} returned {got_key!r:.150}, expected {want_key!r:.150}",
                    code,
                    projection,
                    want_key,
                )
        elif want_ids != got_ids:
            self._mismatch(
                rule_id,
                f"{op} returned ids {got_ids!r:.150}, expected {want_ids!r:.150}",
                code,
                projection,
                want_ids,
            )
        for index, (want, got) in enumerate(zip(expected, found, strict=True)):
            difference = exact_difference(want, got)
            if difference is not None:
                what = f"{op} item {index} differs: {difference}"
                if want == got:
                    self._exact_mismatch(rule_id, what, code, f"result[{index}]", want)
                self._mismatch(rule_id, what, code, f"result[{index}]", want)

    def _is_deleted_event(self, got: Any) -> bool:
        """Whether the store handed back an event that a delete_session removed."""
        old = self.last.removed.get(getattr(got, "id", None))  # type: ignore[arg-type]
        return old is not None and exact_difference(old, got) is None

    def _continues_old_counter(self, sid: str, got: object, want: object) -> bool:
        """Whether ``got`` is the number a counter not reset by the last delete would give."""
        old = self.last.restarted.get(sid)
        return (
            old is not None
            and isinstance(got, int)
            and isinstance(want, int)
            and (got == old + want)
        )

    def _check_latest(self, sid: str, *, in_invariant: bool) -> None:
        outcome = self.model.get_latest_sequence(sid)
        code = repro.lazy_call("get_latest_sequence", sid)
        value, error = self._call(lambda: self.store.get_latest_sequence(sid))
        deleted_now = self.last.op == "delete_session" and self.last.deleted == sid

        def check(found: Any) -> None:
            if type(found) is not int or found != outcome.result:
                stale = sid in self.restarted and found == self.restarted[sid] + outcome.result
                rule_id = "SES-4" if in_invariant and (deleted_now or stale) else "SEQ-2"
                self._mismatch(
                    rule_id,
                    f"get_latest_sequence({sid!r}) returned {found!r}; the "
                    f"session has {outcome.result} stored events",
                    code,
                    "result",
                    outcome.result,
                )

        if self._settle(
            outcome,
            code,
            value,
            error,
            op="get_latest_sequence",
            ok_rule="SEQ-2",
            fail_rule="SEQ-2",
            check=check,
            read=True,
        ) and self.model.latest_sequence(sid):
            self.coverage.hit("latest sequence of a session with events read")

    def _check_session(self, sid: str, *, read_rule: str, in_invariant: bool) -> None:
        outcome = self.model.get_session(sid)
        code = repro.lazy_call("get_session", sid)
        value, error = self._call(lambda: self.store.get_session(sid))
        last = self.last
        if in_invariant:
            if outcome.must_fail:
                fail_rule = (
                    "SES-4"
                    if last.op == "delete_session" and last.deleted == sid
                    else self._context_rule("SES-2", sid)
                )
                ok_rule = fail_rule
            else:
                ok_rule = self._context_rule(
                    "DATA-3"
                    if last.op == "delete_session" and confusable(sid, last.deleted or "")
                    else "SES-1",
                    sid,
                )
                fail_rule = ok_rule
        else:
            ok_rule, fail_rule = read_rule, "SES-2"

        def check(found: Any) -> None:
            difference = exact_difference(outcome.result, found)
            if difference is None:
                return
            rule_id = ok_rule
            if isinstance(found, Session) and MUTATION_KEY in found.metadata:
                rule_id = "SES-1"
            elif rule_id == "SES-1" and contains_nul(outcome.result):
                rule_id = "DATA-2"
            elif rule_id == "SES-1" and outcome.result == found:
                rule_id = "DATA-1"
            what = f"get_session({sid!r}) differs from the last saved session: {difference}"
            if outcome.result == found:
                self._exact_mismatch(rule_id, what, code, "result", outcome.result)
            self._mismatch(rule_id, what, code, "result", outcome.result)

        ok = self._settle(
            outcome,
            code,
            value,
            error,
            op="get_session",
            ok_rule=ok_rule,
            fail_rule=fail_rule,
            check=check,
            read=True,
        )
        if not ok and outcome.must_fail:
            self.coverage.hit("unknown session read")

    def _check_runs(self, sid: str) -> None:
        outcome = self.model.list_runs(sid)
        code = repro.lazy_call("list_runs", sid)
        value, error = self._call(lambda: self.store.list_runs(sid))
        rule_id = self._context_rule("RUN-2", sid)
        if rule_id == "RUN-2" and self.last.op == "save_run":
            rule_id = "RUN-1"

        def check(found: Any) -> None:
            if isinstance(found, list):
                got = [getattr(r, "id", None) for r in found]
                if len(set(got)) != len(got):
                    self._mismatch(
                        "IDEM-2",
                        f"list_runs({sid!r}) holds one run twice: {got!r}",
                        code,
                        "[r.id for r in result]",
                        [r.id for r in outcome.result],
                    )
            self._compare_list(
                rule_id, "list_runs", code, outcome.result, found, "[r.id for r in result]"
            )

        self._settle(
            outcome,
            code,
            value,
            error,
            op="list_runs",
            ok_rule=rule_id,
            fail_rule=rule_id,
            check=check,
            read=True,
        )

    def _check_active_run(self, sid: str, *, in_invariant: bool) -> None:
        outcome = self.model.get_active_run(sid)
        code = repro.lazy_call("get_active_run", sid)
        value, error = self._call(lambda: self.store.get_active_run(sid))
        rule_id = "RUN-3"
        if in_invariant and self.last.op == "delete_session":
            rule_id = "SES-4"
        elif in_invariant and self.last.rejected_rule is not None:
            rule_id = self.last.rejected_rule

        def check(found: Any) -> None:
            expected = outcome.result
            if exact_difference(expected, found) is None:
                return
            what = (
                f"get_active_run({sid!r}) returned "
                f"{getattr(found, 'id', found)!r} (status "
                f"{getattr(getattr(found, 'status', None), 'value', None)!r}); expected "
                f"{getattr(expected, 'id', None)!r}, the running run with the latest "
                "started_at"
            )
            if expected is None or found is None or found.id != expected.id:
                self._mismatch(
                    rule_id,
                    what,
                    code,
                    "getattr(result, 'id', None)",
                    getattr(expected, "id", None),
                )
            self._mismatch(rule_id, what, code, "result", expected)

        ok = self._settle(
            outcome,
            code,
            value,
            error,
            op="get_active_run",
            ok_rule=rule_id,
            fail_rule=rule_id,
            check=check,
            read=True,
        )
        if ok and outcome.result is not None:
            self.coverage.hit("active run found")

    def _check_all_sessions(self) -> None:
        outcome = self.model.list_sessions()
        code = repro.lazy_call("list_sessions")
        value, error = self._call(lambda: self.store.list_sessions())
        last = self.last
        rule_id = self._context_rule("SES-3", None)
        if rule_id == "SES-3" and last.op == "save_session":
            rule_id = "SES-1"

        def check(found: Any) -> None:
            if isinstance(found, list):
                got = [getattr(s, "id", None) for s in found]
                want = [s.id for s in outcome.result]
                if len(set(got)) != len(got):
                    self._mismatch(
                        "IDEM-2",
                        f"list_sessions holds one session twice: {got!r}",
                        code,
                        "[s.id for s in result]",
                        want,
                    )
                hidden = [s.id for s in outcome.result if s.deleted_at and s.id not in got]
                if hidden:
                    self._mismatch(
                        "SES-5",
                        f"list_sessions hides the soft-deleted sessions "
                        f"{hidden!r}; deleted_at is plain data",
                        code,
                        "[s.id for s in result]",
                        want,
                    )
            self._compare_list(
                rule_id, "list_sessions", code, outcome.result, found, "[s.id for s in result]"
            )

        self._settle(
            outcome,
            code,
            value,
            error,
            op="list_sessions",
            ok_rule=rule_id,
            fail_rule=rule_id,
            check=check,
            read=True,
        )

    def _check_run(self, rid: str, *, in_invariant: bool) -> None:
        outcome = self.model.get_run(rid)
        code = repro.lazy_call("get_run", rid)
        value, error = self._call(lambda: self.store.get_run(rid))
        rule_id = self._context_rule("RUN-1", None) if in_invariant else "RUN-1"

        def check(found: Any) -> None:
            difference = exact_difference(outcome.result, found)
            if difference is not None:
                what = f"get_run({rid!r}) differs from the last saved run: {difference}"
                if outcome.result == found:
                    self._exact_mismatch(rule_id, what, code, "result", outcome.result)
                self._mismatch(rule_id, what, code, "result", outcome.result)

        self._settle(
            outcome,
            code,
            value,
            error,
            op="get_run",
            ok_rule=rule_id,
            fail_rule=rule_id,
            check=check,
            read=True,
        )

    def _note_nul(self, value: Any) -> None:
        if contains_nul(value):
            self.coverage.hit("value with a NUL character written")


def _page_arguments() -> st.SearchStrategy[tuple[Any, Any]]:
    count = weighted((1, NOTHING), (2, st.integers(0, 3)))
    valid = st.tuples(count, count)
    invalid = st.sampled_from([-1, True, 1.5, "2"])
    return weighted((10, valid), (1, st.tuples(invalid, count)), (1, st.tuples(count, invalid)))


PAGE_ARGUMENTS = _page_arguments()
#: Whether a listing's offset lands inside what its filters match (three times in four).
INSIDE_OFFSET = st.integers(0, 3).map(bool)


# -- running it -----------------------------------------------------------------------------------
def contract_machine(
    factory: Callable[[], Any], coverage: Coverage | None = None
) -> type[ContractMachine]:
    """A ContractMachine class bound to ``factory`` (a fresh, empty store per call)."""
    bound_coverage = coverage if coverage is not None else Coverage()

    class BoundContractMachine(ContractMachine):
        store_factory = staticmethod(factory)
        coverage = bound_coverage

    return BoundContractMachine


def replay(
    machine_class: type[ContractMachine], pools: Pools, actions: Sequence[Action]
) -> ContractViolation | None:
    """Run recorded store operations against a fresh store, comparing as the machine does.

    Returns the violation they show, or None if they pass (or fail some other way).
    """
    machine = machine_class()
    machine.pools = pools
    machine._cache_strategies()
    try:
        for name, args, kwargs in actions:
            machine._act(name, *args, **kwargs)
            if machine.dirty:
                machine._check_state()
        machine._final_check()
    except ContractViolation as violation:
        return violation
    except Exception:  # a different failure is not the one being minimised
        return None
    finally:
        close_store(machine.store)
    return None


def minimize(
    violation: ContractViolation,
    factory: Callable[[], Any],
    *,
    seconds: float = 10.0,
    max_replays: int = 400,
) -> ContractViolation:
    """The shortest sequence of the example's store operations that still breaks the same rule.

    Delta debugging over the recorded operations, each candidate replayed against a fresh store
    and a fresh model: it drops whole operations until removing any single one of those left
    makes the violation disappear (or the budget runs out). Hypothesis has already shrunk the
    example; this pass makes the result independent of how much time shrinking got.
    """
    if violation.pools is None or not violation.actions:
        return violation
    machine_class = contract_machine(factory, Coverage())
    pools = violation.pools
    deadline = time.monotonic() + seconds
    replays = 0

    def attempt(candidate: list[Action]) -> ContractViolation | None:
        nonlocal replays
        replays += 1
        found = replay(machine_class, pools, candidate)
        return found if found is not None and found.rule_id == violation.rule_id else None

    def out_of_budget() -> bool:
        return replays >= max_replays or time.monotonic() > deadline

    first = attempt(list(violation.actions))
    if first is None:
        return violation  # the store does not fail the same way twice: keep Hypothesis's result
    best = first
    current = list(first.actions)
    granularity = 2
    while len(current) >= 2 and not out_of_budget():
        size = max(1, -(-len(current) // granularity))
        progressed = False
        for start in range(0, len(current), size):
            found = attempt(current[:start] + current[start + size :])
            if found is not None:
                best, current = found, list(found.actions)
                granularity = max(granularity - 1, 2)
                progressed = True
                break
            if out_of_budget():
                break
        if not progressed:
            if size == 1:
                break
            granularity = min(granularity * 2, len(current))
    return best


#: Model fields holding JSON payloads, and the plain value they are cleared to.
_PAYLOAD_FIELDS: dict[str, Any] = {
    "data": {},
    "metadata": {},
    "context": {},
    "tags": [],
    "token_usage": {},
    "provider_metadata": {},
    "input": None,
    "output": None,
    "error": None,
    "provider": None,
    "correlation_id": None,
    "parent_session_id": None,
    "cost_usd": None,
}
_ID_FIELDS = ("id", "session_id", "run_id", "agent_id")


def _rewrite(value: Any, change: Callable[[Any], Any]) -> Any:
    """``value`` with ``change`` applied to every leaf and every model, models rebuilt."""
    value = change(value)
    if isinstance(value, BaseModel):
        fields = {name: _rewrite(item, change) for name, item in value.__dict__.items()}
        return type(value).model_construct(**fields)
    if isinstance(value, list):
        return [_rewrite(item, change) for item in value]
    if isinstance(value, tuple):
        return tuple(_rewrite(item, change) for item in value)
    if isinstance(value, dict):
        return {key: _rewrite(item, change) for key, item in value.items()}
    return value


def _rewrite_all(
    actions: Sequence[Action], pools: Pools, change: Callable[[Any], Any]
) -> tuple[list[Action], Pools]:
    rewritten = [
        (name, _rewrite(args, change), _rewrite(kwargs, change)) for name, args, kwargs in actions
    ]
    new_pools = Pools(
        sessions=_rewrite(pools.sessions, change),
        runs=_rewrite(pools.runs, change),
        agents=_rewrite(pools.agents, change),
        moments=_rewrite(pools.moments, change),
    )
    return rewritten, new_pools


def _ids_in(actions: Sequence[Action], pools: Pools) -> list[str]:
    found: list[str] = [*pools.sessions, *pools.runs, *pools.agents]

    def collect(value: Any) -> Any:
        if isinstance(value, BaseModel):
            for name in _ID_FIELDS:
                item = value.__dict__.get(name)
                if isinstance(item, str):
                    found.append(item)
        return value

    for _, args, kwargs in actions:
        _rewrite((args, kwargs), collect)
    return list(dict.fromkeys(found))


def simplify(
    violation: ContractViolation,
    factory: Callable[[], Any],
    *,
    seconds: float = 10.0,
) -> ContractViolation:
    """Make a minimal reproduction readable without losing it.

    Tries, keeping each change only if the same rule is still broken: clearing every JSON
    payload, giving every instant a plain value in the same order, and renaming each id to a
    short one (``s1``, ``r1``, ``e1``...). Ids whose exact form matters (a DATA-3 near miss)
    stay as they are.
    """
    if violation.pools is None or not violation.actions:
        return violation
    machine_class = contract_machine(factory, Coverage())
    deadline = time.monotonic() + seconds
    best, actions, pools = violation, list(violation.actions), violation.pools

    def attempt(change: Callable[[Any], Any]) -> bool:
        nonlocal best, actions, pools
        if time.monotonic() > deadline:
            return False
        candidate, candidate_pools = _rewrite_all(actions, pools, change)
        found = replay(machine_class, candidate_pools, candidate)
        if found is None or found.rule_id != violation.rule_id:
            return False
        best, actions, pools = found, list(found.actions), candidate_pools
        return True

    def clear_payloads(value: Any) -> Any:
        if isinstance(value, BaseModel):
            update = {
                name: plain
                for name, plain in _PAYLOAD_FIELDS.items()
                if name in type(value).model_fields and name in value.__dict__
            }
            return type(value).model_construct(**{**value.__dict__, **update})
        return value

    # Fewer events in each batch and flush.
    index = 0
    while index < len(actions) and time.monotonic() < deadline:
        position = 0
        while time.monotonic() < deadline:
            smaller = _without_element(actions[index], position)
            if smaller is None:
                break
            candidate = [*actions[:index], smaller, *actions[index + 1 :]]
            found = replay(machine_class, pools, candidate)
            if (
                found is not None
                and found.rule_id == violation.rule_id
                and len(found.actions) == len(candidate)
            ):
                best, actions = found, candidate
            else:
                position += 1
        index += 1

    attempt(clear_payloads)

    instants: list[datetime] = []

    def collect_instants(value: Any) -> Any:
        if isinstance(value, datetime) and value.utcoffset() is not None:
            instants.append(value)
        return value

    _rewrite_all(actions, pools, collect_instants)
    order = sorted(set(instants))
    plain_instants = {
        instant: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rank)
        for rank, instant in enumerate(order)
    }
    attempt(lambda v: plain_instants.get(v, v) if isinstance(v, datetime) else v)

    taken: set[str] = set()
    for old in sorted(_ids_in(actions, pools), key=lambda i: (-len(i), i)):
        if len(old) <= 3 and old.isascii() and old.isalnum():
            taken.add(old)
            continue
        prefix = "s" if old in pools.sessions else "r" if old in pools.runs else "x"
        number = 1
        while f"{prefix}{number}" in taken or f"{prefix}{number}" in _ids_in(actions, pools):
            number += 1
        short = f"{prefix}{number}"
        if attempt(_renamer(old, short)):
            taken.add(short)
        else:
            taken.add(old)
    return best


def _renamer(old: str, new: str) -> Callable[[Any], Any]:
    def rename(value: Any) -> Any:
        return new if isinstance(value, str) and value == old else value

    return rename


def _without_element(action: Action, position: int) -> Action | None:
    """``action`` with one event fewer in its batch or flushed result, or None if it has none."""
    name, args, kwargs = action
    if not args:
        return None
    first = args[0]
    if name == "_append_batch" and isinstance(first, list) and position < len(first):
        return name, (first[:position] + first[position + 1 :], *args[1:]), kwargs
    if name == "_flush":
        parts = first.__dict__ if isinstance(first, ExecutionResult) else first
        if not isinstance(parts, dict):
            return None
        events = parts.get("events")
        if not isinstance(events, list) or position >= len(events):
            return None
        fewer = {**parts, "events": events[:position] + events[position + 1 :]}
        payload = type(first).model_construct(**fewer) if isinstance(first, BaseModel) else fewer
        result = args[1] if len(args) > 1 else None
        if isinstance(result, ExecutionResult):
            result = payload if isinstance(payload, ExecutionResult) else None
        return name, (payload, result, *args[2:]), kwargs
    return None


@dataclasses.dataclass
class StatefulResult:
    """What one run of the machine found: violations (shrunk) and what it exercised."""

    coverage: Coverage
    violations: list[ContractViolation]
    error: BaseException | None = None

    @property
    def passed(self) -> bool:
        return not self.violations


def machine_settings(parent: Settings, *, step_count: int = DEFAULT_STEP_COUNT) -> Settings:
    """``parent`` (a profile's settings) adjusted for the machine: replay comes from the seed."""
    return Settings(
        parent,
        stateful_step_count=step_count,
        database=None,
        report_multiple_bugs=True,
        print_blob=False,
    )


@contextlib.contextmanager
def _shrinking_limited_to(seconds: float | None) -> Iterator[None]:
    """Cap Hypothesis's shrinking time (its engine documents the limit as monkeypatchable).

    When the cap is hit Hypothesis reports the shortest failing example found so far; its
    "very slow shrinking" warning is dropped, as the cap is deliberate here.
    """
    if seconds is None or not hasattr(hypothesis_engine, "MAX_SHRINKING_SECONDS"):
        yield
        return
    previous = hypothesis_engine.MAX_SHRINKING_SECONDS
    forward = current_reporter()

    def reporter(value: object) -> None:
        if "to shrink a failing test case" not in str(value):
            forward(value)

    hypothesis_engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        with with_reporter(reporter):
            yield
    finally:
        hypothesis_engine.MAX_SHRINKING_SECONDS = previous


def run_contract_machine(
    factory: Callable[[], Any],
    settings: Settings,
    seed: int | None = None,
    *,
    step_count: int = DEFAULT_STEP_COUNT,
    shrink_seconds: float | None = SHRINK_SECONDS["ci"],
    minimize_seconds: float = 10.0,
    extra_rounds: int = EXTRA_ROUNDS,
) -> StatefulResult:
    """Run the machine against stores from ``factory``; violations are returned, not raised.

    Hypothesis shrinks each violation for up to ``shrink_seconds``; :func:`minimize` then cuts
    the remaining operations for up to ``minimize_seconds`` (0 to skip). Anything that is not a
    contract violation (a broken factory, a bug in the kit) propagates.

    A round that passes without reaching every required probe is followed by up to
    ``extra_rounds`` more rounds of the same budget (seeds ``seed + 1``, ``seed + 2``, ...), so a
    small budget that missed a rare step by chance does not read as a vacuous pass, while a store
    that really rejects too much still ends with probes never reached.
    """
    coverage = Coverage()
    for round_number in range(1 + extra_rounds):
        if round_number and not coverage.unexercised():
            break
        coverage.rounds = round_number + 1
        machine = contract_machine(factory, coverage)
        if seed is not None:
            machine = hypothesis_seed(seed + round_number)(machine)
        try:
            with _shrinking_limited_to(shrink_seconds):
                run_state_machine_as_test(
                    machine, settings=machine_settings(settings, step_count=step_count)
                )
        except BaseException as error:
            found = violations_in(error)
            if not found:
                raise
            if minimize_seconds:
                found = [minimize(v, factory, seconds=minimize_seconds) for v in found]
                found = [simplify(v, factory, seconds=minimize_seconds) for v in found]
            return StatefulResult(coverage, found, error)
    return StatefulResult(coverage, [])


__all__ = [
    "PROBES",
    "STATEFUL_RULES",
    "ContractMachine",
    "ContractViolation",
    "Coverage",
    "Probe",
    "StatefulResult",
    "confirm",
    "contract_machine",
    "explain",
    "minimize",
    "replay",
    "run_contract_machine",
    "simplify",
    "violations_in",
]


# -- reporting ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Explanation:
    """One violation, ready to show: the reproduction and whether it was confirmed."""

    violation: ContractViolation
    code: str
    verified: bool
    reproducer: Path | None = None


def confirm(violation: ContractViolation, factory: Callable[[], Any]) -> tuple[str, bool]:
    """The shortest reproduction that fails against a fresh store, and whether one does.

    Tries the calls of the example's steps first; when those pass (a store whose behaviour depends
    on the reads the machine made in between), tries again with those reads included.
    """
    for code in (violation.code, violation.full_code):
        store = factory()
        try:
            failure = repro.run_snippet(code, store)
        finally:
            close_store(store)
        if failure is not None:
            return code, True
    return violation.code, False


def explain(
    violations: Sequence[ContractViolation],
    factory: Callable[[], Any],
    *,
    repro_dir: Path | None = None,
    store_target: str | None = None,
    store_options: Sequence[tuple[str, str]] = (),
    seed: int | None = None,
    replay: str | None = None,
) -> tuple[list[Explanation], str]:
    """Confirm each violation against a fresh store, write reproducer files, and say it all.

    Returns the explanations and the failure message: per violated rule its ID and statement,
    what happened, and the shortest sequence of store calls that shows it, as Python to paste.
    """
    explanations: list[Explanation] = []
    for violation in violations:
        code, verified = confirm(violation, factory)
        explanation = Explanation(violation, code, verified)
        if repro_dir is not None:
            rule_statement = get_rule(violation.rule_id).statement
            repro_dir.mkdir(parents=True, exist_ok=True)
            path = repro_dir / f"test_asm_repro_{violation.rule_id.lower().replace('-', '_')}.py"
            path.write_text(
                repro.reproducer_module(
                    rule_id=violation.rule_id,
                    statement=rule_statement,
                    what=violation.what,
                    code=code,
                    store_target=store_target,
                    store_options=store_options,
                    seed=seed,
                    replay=replay,
                ),
                encoding="utf-8",
            )
            explanation.reproducer = path
        explanations.append(explanation)
    return explanations, _message(explanations, replay)


def _message(explanations: Sequence[Explanation], replay: str | None) -> str:
    parts = []
    for explanation in explanations:
        violation = explanation.violation
        rule = get_rule(violation.rule_id)
        calls = sum(1 for line in explanation.code.splitlines() if "store." in line)
        status = (
            "it fails against a fresh store"
            if explanation.verified
            else "NOT confirmed against a fresh store: the store may behave differently over "
            "time; rerun with the seed below"
        )
        lines = [
            f"{rule.id} violated ({rule.level.value}): {rule.statement}",
            *(f"  also breaks {other}: {get_rule(other).statement}" for other in violation.also),
            f"What happened: {violation.what}",
            f"Shortest sequence found ({calls} store calls; {status}):",
            "",
            textwrap.indent(explanation.code, "    "),
            "",
        ]
        if explanation.reproducer is not None:
            lines.append(f"Reproducer test written to {explanation.reproducer}")
        parts.append("\n".join(lines))
    if replay:
        parts.append(f"Replay this search: {replay}")
    return "\n\n".join(parts)
