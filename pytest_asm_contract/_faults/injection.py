"""Fault injection for contract rule FLUSH-3: make the k-th write of a store operation fail.

A store opts in through one documented hook (see docs/fault-injection.md)::

    def asm_fault_target(self) -> object: ...

returning what the store's writes go through: a SQLAlchemy ``Engine`` (or a view of one from
``engine.execution_options()``), a botocore client (boto3's ``client("s3")``), the kit's own
``FaultGate`` (``pytest_asm_contract._faults.gate``, for any other backend), or a list of those. The
kit then counts the write requests that pass through the target while one operation runs and
makes the k-th fail the way the backend itself would:

* SQLAlchemy: a ``before_cursor_execute`` listener raises the driver's own ``OperationalError``
  before the k-th INSERT/UPDATE/DELETE/REPLACE/MERGE/UPSERT reaches the database, so the store sees
  exactly what a lost server produces (SQLAlchemy wraps it in ``sqlalchemy.exc.OperationalError``).
* botocore: a ``before-call`` handler raises ``botocore.exceptions.ClientError`` (HTTP 500,
  ``InternalError``) for the k-th call that is not a Get/Head/List/Select operation.
* ``FaultGate``: its ``before_write`` raises ``BackendFault`` (a ``ConnectionError``) at the
  k-th write the store announces.

Nothing here imports SQLAlchemy or botocore: a target is recognised by its shape, and the error
types come from the target's own modules (contract DEP-1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from pytest_asm_contract._faults.gate import BackendFault, FaultGate

#: The name of the store method that returns the fault target.
HOOK = "asm_fault_target"
#: SQL statements that write: the first keyword (after comments and WITH ... AS (...)).
SQL_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "UPSERT"})
#: botocore operations that only read.
READ_OPERATION_PREFIXES = ("Get", "Head", "List", "Select", "Describe")
MARKER = "fault injected by pytest-asm-contract"

_COMMENT = re.compile(r"(--[^\n]*\n|/\*.*?\*/|\s+)", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]+")


class FaultHookError(TypeError):
    """The store's fault hook returned something the kit cannot inject faults into."""


def sql_is_write(statement: str) -> bool:
    """Whether a SQL statement writes (a data-modifying ``WITH`` counts as a write)."""
    text = statement.lstrip()
    while True:
        stripped = _COMMENT.match(text)
        if not stripped:
            break
        text = text[stripped.end() :]
    match = _WORD.match(text)
    if match is None:
        return False
    verb = match.group(0).upper()
    if verb == "WITH":
        words = {w.upper() for w in _WORD.findall(text)}
        return bool(words & SQL_WRITE_VERBS)
    return verb in SQL_WRITE_VERBS


@dataclasses.dataclass
class FaultPlan:
    """One armed fault: fail the ``fail_at``-th write (1-based) seen from now on."""

    fail_at: int
    writes_seen: int = 0
    fired: bool = False
    fired_on: str | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def next_write_fails(self, what: str) -> bool:
        """Count one write; True when it is the one that must fail."""
        with self._lock:
            self.writes_seen += 1
            if self.writes_seen == self.fail_at and not self.fired:
                self.fired, self.fired_on = True, what
                return True
            return False

    def message(self) -> str:
        return f"{MARKER}: write #{self.fail_at} failed ({(self.fired_on or '')[:80]})"


class _Target:
    """One place writes go through, able to fail the armed plan's k-th write."""

    def arm(self, plan: FaultPlan) -> None:
        raise NotImplementedError

    def disarm(self) -> None:
        raise NotImplementedError


class _SqlAlchemyTarget(_Target):
    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._event = importlib.import_module("sqlalchemy.event")
        self._plan: FaultPlan | None = None
        self._listener: Callable[..., None] | None = None

    def arm(self, plan: FaultPlan) -> None:
        self._plan = plan
        dbapi = self._engine.dialect.loaded_dbapi
        operational_error: type[Exception] = dbapi.OperationalError

        def before_cursor_execute(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            if sql_is_write(statement) and plan.next_write_fails(statement):
                raise operational_error(plan.message())

        self._listener = before_cursor_execute
        self._event.listen(self._engine, "before_cursor_execute", before_cursor_execute)

    def disarm(self) -> None:
        if self._listener is not None:
            self._event.remove(self._engine, "before_cursor_execute", self._listener)
            self._listener = None


class _BotocoreTarget(_Target):
    EVENT = "before-call"

    def __init__(self, client: Any) -> None:
        self._client = client
        self._exceptions = importlib.import_module("botocore.exceptions")
        self._handler: Callable[..., None] | None = None
        self._unique_id = f"asm-fault-{id(self):x}"

    def arm(self, plan: FaultPlan) -> None:
        client_error: type[Exception] = self._exceptions.ClientError

        def before_call(model: Any = None, **kwargs: Any) -> None:
            name = getattr(model, "name", "") or ""
            if name.startswith(READ_OPERATION_PREFIXES):
                return
            if plan.next_write_fails(name):
                raise client_error(
                    {
                        "Error": {"Code": "InternalError", "Message": plan.message()},
                        "ResponseMetadata": {"HTTPStatusCode": 500},
                    },
                    name,
                )

        self._handler = before_call
        self._client.meta.events.register(self.EVENT, before_call, unique_id=self._unique_id)

    def disarm(self) -> None:
        if self._handler is not None:
            self._client.meta.events.unregister(
                self.EVENT, self._handler, unique_id=self._unique_id
            )
            self._handler = None


class _GateTarget(_Target):
    def __init__(self, gate: FaultGate) -> None:
        self._gate = gate

    def arm(self, plan: FaultPlan) -> None:
        def before_write(what: str) -> None:
            if plan.next_write_fails(what):
                raise BackendFault(plan.message())

        self._gate.set_before_write(before_write)

    def disarm(self) -> None:
        self._gate.set_before_write(None)


# -- what the hook returns (shared with ambiguous.py) -------------------------------------------
def hook_targets(store: object) -> list[object] | None:
    """What ``store``'s fault hook returns, as a list; None when the store has no hook."""
    hook = getattr(store, HOOK, None)
    if not callable(hook):
        return None
    target = hook()
    return list(target) if isinstance(target, list | tuple) else [target]


def target_kind(target: object, injects: str) -> Literal["sqlalchemy", "botocore"]:
    """Which kind of driver target the hook returned, told by its shape (nothing is imported;
    the kit's own ``FaultGate`` is recognised by its class before this is asked)."""
    module = type(target).__module__
    if module.startswith("sqlalchemy") and hasattr(target, "dialect"):
        return "sqlalchemy"
    meta = getattr(target, "meta", None)
    if meta is not None and hasattr(meta, "events") and hasattr(meta, "service_model"):
        return "botocore"
    raise FaultHookError(
        f"{HOOK}() returned a {module}.{type(target).__name__}; the kit injects {injects} into "
        "a SQLAlchemy Engine, a botocore client or a pytest_asm_contract.FaultGate (or a "
        "list of them), see docs/fault-injection.md"
    )


def chain_mentions(error: BaseException | None, marker: str) -> bool:
    """Whether ``error``, or an exception it chains, says ``marker``."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if marker in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _adapt(target: object) -> _Target:
    if isinstance(target, FaultGate):
        return _GateTarget(target)
    if target_kind(target, "faults") == "sqlalchemy":
        return _SqlAlchemyTarget(target)
    try:  # the full botocore injector (lost replies, throttling, connection errors)
        botocore_faults = importlib.import_module("pytest_asm_contract._faults.botocore")
    except ModuleNotFoundError:
        return _BotocoreTarget(target)
    adapted: _Target = botocore_faults.BotocoreTarget(target)
    return adapted


class FaultInjector:
    """Fails the k-th write that goes through a store's fault targets."""

    def __init__(self, targets: Sequence[object]) -> None:
        if not targets:
            raise FaultHookError(f"{HOOK}() returned no target")
        self._targets = [_adapt(target) for target in targets]
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def failing_write(self, fail_at: int) -> Iterator[FaultPlan]:
        """Within the block, the ``fail_at``-th write through any target fails (once)."""
        if fail_at < 1:
            raise ValueError("fail_at counts from 1")
        plan = FaultPlan(fail_at)
        with self._lock:
            armed: list[_Target] = []
            try:
                for target in self._targets:
                    target.arm(plan)
                    armed.append(target)
                yield plan
            finally:
                for target in armed:
                    target.disarm()

    @contextlib.contextmanager
    def counting(self) -> Iterator[FaultPlan]:
        """Count writes without failing any (a plan that never fires)."""
        with self.failing_write(2**62) as plan:
            yield plan


def fault_injector(store: object) -> FaultInjector | None:
    """The injector for a store that offers the hook, or None when it does not.

    Raises ``FaultHookError`` when the hook returns something the kit cannot use.
    """
    targets = hook_targets(store)
    return None if targets is None else FaultInjector(targets)


def is_injected(error: BaseException | None) -> bool:
    """Whether ``error`` (or an exception it chains) is a fault this module injected."""
    return chain_mentions(error, MARKER)


__all__ = [
    "HOOK",
    "FaultHookError",
    "FaultInjector",
    "FaultPlan",
    "fault_injector",
    "is_injected",
    "sql_is_write",
]
