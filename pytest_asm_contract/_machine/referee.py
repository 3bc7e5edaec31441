"""The referee: runs every store call of an example, judges it against the model, records it.

The machine's rules only draw inputs; they hand each store operation to one :class:`Referee`.
It owns the store under test, the :class:`~.oracle.ContractModel`, the run's :class:`Coverage`,
the calls recorded so far (as Python, and as actions that replay), and the bookkeeping that names
the rule a later mismatch breaks (:class:`LastWrite`, events removed by deletes, counters that
must restart). The judged operations are functions of the referee (``writes``, ``reads``,
``checks``); :meth:`Referee.act` records one and runs it, so the same actions replay on a fresh
referee without a state machine (``minimizing``).
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event
from pytest_asm_contract._contract.port import declared_capabilities
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.constants import Action
from pytest_asm_contract._machine.coverage import Coverage
from pytest_asm_contract._machine.inputs import Pools
from pytest_asm_contract._machine.oracle import FOREIGN, KNOWN, NEW, REPEAT, ContractModel, Outcome
from pytest_asm_contract._machine.repro import Lazy
from pytest_asm_contract._machine.values import contains_nul
from pytest_asm_contract._machine.violations import VIOLATION_TYPES

P = ParamSpec("P")
R = TypeVar("R")


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


class Referee:
    """Calls the store, judges each result against the model and records every call."""

    def __init__(self, store: Any, coverage: Coverage, pools: Pools) -> None:
        self.store = store
        self.coverage = coverage
        #: The ids and instants of the example: the state checks compare every one of them.
        self.pools = pools
        capabilities = declared_capabilities(store)
        self.model = ContractModel(referential_integrity="referential_integrity" in capabilities)
        #: The calls of the example as Python: ``steps`` without the machine's own read-backs.
        self.steps: list[str | Lazy] = []
        self.full_steps: list[str | Lazy] = []
        #: Every judged operation with its inputs: the example, replayable (see ``minimizing``).
        self.actions: list[Action] = []
        # Sessions deleted with events and not appended to since, with the number a counter
        # that was never reset would hand out next, minus one (SES-4).
        self.restarted: dict[str, int] = {}
        self.ever_numbered: collections.Counter[str] = collections.Counter()
        self.removed: dict[str, Event] = {}  # events removed by a delete, by id (SES-4)
        self.last = LastWrite()
        #: A write happened since the state was last compared.
        self.dirty = False
        #: Comparing the whole state: those reads are not counted as the workload's operations.
        self.comparing = False
        self.failed = False

    def act(
        self,
        operation: Callable[Concatenate[Referee, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Record one judged operation with its concrete inputs, then run it."""
        self.actions.append((operation, args, kwargs))
        return operation(self, *args, **kwargs)

    # -- one store call -------------------------------------------------------------------------
    def call(self, fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
        """Run a store call; its value, or the exception it raised (judged by :meth:`settle`)."""
        self.coverage.calls += 1
        try:
            return fn(), None
        except Exception as error:  # judged by settle: only StoreError may escape (PORT-3)
            return None, error

    def settle(
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
                self.violation(
                    "PORT-3",
                    f"{op} let a raw {type(error).__module__}.{type(error).__name__} escape "
                    f"({error}); every failure must be a StoreError",
                    Lazy(lambda: f"{code}  # raises {type(error).__name__} here"),
                )
            if error.code in outcome.errors:
                self.record(Lazy(lambda: repro.expect_error(str(code), codes)), read=read)
                if not read:
                    self._rejected(outcome, error.code, fail_rule)
                return False
            if outcome.must_fail:
                self.violation(
                    fail_rule,
                    f"{op} raised {error.code.value} ({error.message}); the contract requires "
                    f"one of: {', '.join(codes)} ({'; '.join(outcome.reasons)})",
                    Lazy(lambda: repro.expect_error(str(code), codes)),
                )
            self.violation(
                ok_rule,
                f"{op} raised StoreError({error.code.value}: {error.message}) for a valid call; "
                "the contract requires it to succeed",
                Lazy(lambda: f"{code}  # raises StoreError({error.code.value}) here"),
            )
        if outcome.must_fail:
            self.violation(
                fail_rule,
                f"{op} returned {value!r:.100} instead of raising StoreError with one of: "
                f"{', '.join(codes)} ({'; '.join(outcome.reasons)})",
                Lazy(lambda: repro.expect_error(str(code), codes)),
            )
        if check is not None:
            check(value)
        self.record(code, read=read)
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

    def record(self, code: str | Lazy, *, read: bool = False) -> None:
        """Add a call to the reproduction (reads only to the full one)."""
        self.full_steps.append(code)
        if not read:
            self.steps.append(code)

    # -- violations -----------------------------------------------------------------------------
    def violation(
        self, rule_id: str, what: str, failing: Lazy, also: tuple[str, ...] = ()
    ) -> NoReturn:
        """Raise the violation of ``rule_id``, ``failing`` being the check that shows it."""
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

    def mismatch(
        self,
        rule_id: str,
        what: str,
        code: Lazy,
        projection: str,
        expected: Any,
        also: tuple[str, ...] = (),
    ) -> NoReturn:
        """A returned value differs from the model: the reproduction asserts ``projection``."""
        self.violation(
            rule_id,
            what,
            Lazy(lambda: f"result = {code}\nassert {projection} == {repro.render(expected)}"),
            also,
        )

    def exact_mismatch(
        self, rule_id: str, what: str, code: Lazy, projection: str, expected: Any
    ) -> NoReturn:
        """Like :meth:`mismatch`, for values equal under ``==`` that differ in type or offset."""
        self.violation(
            rule_id,
            what,
            Lazy(
                lambda: (
                    f"result = {code}\n"
                    f"assert exact_difference({repro.render(expected)}, {projection}) is None"
                )
            ),
        )

    # -- bookkeeping of writes ------------------------------------------------------------------
    def begin_write(
        self, op: str, rule_id: str, sessions: Sequence[str], runs: Sequence[str] = ()
    ) -> None:
        """Note what a write is about to touch, so later mismatches name its rule."""
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

    def after_append(self, outcome: Outcome, inputs: Sequence[Event]) -> None:
        """Update the delete bookkeeping and the coverage after events were appended."""
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
        self.note_nul(list(inputs))

    def note_nul(self, value: Any) -> None:
        if contains_nul(value):
            self.coverage.hit("value with a NUL character written")
