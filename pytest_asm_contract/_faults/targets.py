"""A store's fault targets, told apart by shape, armed with one policy at a time.

The store's fault hook (``asm_fault_target()``, see ``pytest_asm_contract.FaultInjectable``)
returns a SQLAlchemy Engine, a botocore client, a ``FaultGate`` or a list of them. Each kind has
one target class (``sqlalchemy.py``, ``botocore.py``, ``gate.py``); :class:`Injector` arms all of
a store's targets with a policy (``policies.py``) for the length of a block. Nothing here imports
SQLAlchemy or botocore: targets are recognised by their shape (contract DEP-1).

Below any hook, :data:`DRIVERS` arms the driver targets (``drivers.py``: sqlite3, psycopg,
PyMySQL, redis-py), which need nothing from the store; :class:`DriverFaults` is a store built
while they watched, as the suite's driver-level checks use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from pytest_asm_contract._contract.port import FAULT_HOOK, HookError, fault_targets
from pytest_asm_contract._faults.botocore import BotocoreTarget, is_client
from pytest_asm_contract._faults.drivers import DriverTarget
from pytest_asm_contract._faults.gate import FaultGate, GateTarget
from pytest_asm_contract._faults.policies import Relay
from pytest_asm_contract._faults.protocols import Policy, Target
from pytest_asm_contract._faults.psycopg import PsycopgTarget
from pytest_asm_contract._faults.pymysql import PymysqlTarget
from pytest_asm_contract._faults.redis import RedisTarget
from pytest_asm_contract._faults.sqlalchemy import SqlAlchemyTarget, is_engine
from pytest_asm_contract._faults.sqlite3 import Sqlite3Target

P = TypeVar("P", bound=Policy)


def adapt(target: object) -> Target:
    """The fault target for one thing a hook returned; ``HookError`` if the kit has none."""
    if isinstance(target, FaultGate):
        return GateTarget(target)
    if is_engine(target):
        return SqlAlchemyTarget(target)
    if is_client(target):
        return BotocoreTarget(target)
    kind = f"{type(target).__module__}.{type(target).__name__}"
    raise HookError(
        f"{FAULT_HOOK}() returned an object of type {kind}; the kit injects faults into a "
        "SQLAlchemy Engine, a "
        "botocore client or a pytest_asm_contract.FaultGate (or a list of them), see "
        "docs/fault-injection.md"
    )


class Injector:
    """Arms every fault target of one store with a policy, one block at a time."""

    def __init__(self, targets: Sequence[object]) -> None:
        self._targets: list[Target] = [adapt(target) for target in targets]
        self._lock = threading.Lock()

    @property
    def kinds(self) -> list[str]:
        """What the targets are, as messages name them ("FaultGate", "SQLAlchemy Engine")."""
        return sorted({str(getattr(t, "kind", type(t).__name__)) for t in self._targets})

    @contextlib.contextmanager
    def armed(self, policy: P) -> Iterator[P]:
        """Within the block, every target asks ``policy`` about each write."""
        with self._lock:
            armed: list[Target] = []
            try:
                for target in self._targets:
                    target.arm(policy)
                    armed.append(target)
                yield policy
            finally:
                for target in armed:
                    target.disarm()


def injector_for(store: object) -> Injector | None:
    """The injector for a store's fault hook; None when it has none (``HookError`` when the
    hook returns something the kit cannot use)."""
    targets = fault_targets(store)
    return None if targets is None else Injector(targets)


class DriverInjector(Injector):
    """Arms the target of every installed driver (none of them needs the store's help)."""

    def __init__(self, drivers: Sequence[DriverTarget]) -> None:
        super().__init__(())
        self.drivers = list(drivers)
        self._targets = list(drivers)

    @property
    def installed(self) -> list[str]:
        """The modules of the drivers installed here, which arming patches."""
        return [d.module for d in self.drivers if d.installed]

    def reset(self) -> None:
        """Start counting writes afresh."""
        for driver in self.drivers:
            driver.tally.reset()

    def completed(self) -> dict[str, int]:
        """The writes that returned normally since arming (or ``reset``), by backend."""
        return {d.label: d.tally.completed for d in self.drivers if d.tally.completed}


#: Patching is process-wide, so there is one target per driver and one injector for them all.
DRIVERS = DriverInjector((Sqlite3Target(), PsycopgTarget(), PymysqlTarget(), RedisTarget()))


@dataclasses.dataclass(frozen=True)
class DriverFaults:
    """A store built while :data:`DRIVERS` watched, armed with ``relay`` all along: each step of
    a check hands the relay the policy it needs (none: the drivers only count)."""

    store: Any
    relay: Relay
    drivers: DriverInjector = DRIVERS


__all__ = ["DRIVERS", "DriverFaults", "DriverInjector", "Injector", "adapt", "injector_for"]
