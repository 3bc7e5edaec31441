"""The state every part of the machine shares, and how the machine judges one store call.

:class:`MachineBase` declares the attributes ``ContractMachine.__init__`` sets, so each
mixin of the machine (one per area: sessions and runs, appends, flush, the pipeline, reads,
caller mutations, state checks) can use them. Its methods run a store call, judge it
against the model's :class:`~pytest_asm_contract._machine.oracle.Outcome`, record it as Python and
raise the violation of the rule it breaks.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NoReturn

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, Run, Session
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.constants import Action
from pytest_asm_contract._machine.coverage import Coverage
from pytest_asm_contract._machine.inputs import Pools
from pytest_asm_contract._machine.oracle import (
    FOREIGN,
    KNOWN,
    NEW,
    REPEAT,
    ContractModel,
    Outcome,
    contains_nul,
)
from pytest_asm_contract._machine.repro import Lazy
from pytest_asm_contract._machine.violations import VIOLATION_TYPES


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


class MachineBase:
    """The machine's state (set by ``ContractMachine.__init__``) and the plumbing of its calls."""

    store_factory: ClassVar[Callable[[], Any]]
    coverage: ClassVar[Coverage]

    store: Any
    model: ContractModel
    pools: Pools
    steps: list[str | Lazy]
    full_steps: list[str | Lazy]
    fresh: int
    used_event_ids: list[str]
    restarted: dict[str, int]
    ever_numbered: collections.Counter[str]
    removed: dict[str, Event]
    last: LastWrite
    dirty: bool
    comparing: bool
    failed: bool
    pipeline: Pipeline | None
    last_flush: Any
    actions: list[Action]

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

    # -- bookkeeping after writes ---------------------------------------------------------------
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

    def _note_nul(self, value: Any) -> None:
        if contains_nul(value):
            self.coverage.hit("value with a NUL character written")
