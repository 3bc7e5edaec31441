"""A store's fault targets, told apart by shape, armed with one policy at a time.

The store's fault hook (``asm_fault_target()``, see ``pytest_asm_contract.FaultInjectable``)
returns a SQLAlchemy Engine, a botocore client, a ``FaultGate`` or a list of them. Each kind has
one target class (``sqlalchemy.py``, ``botocore.py``, ``gate.py``); :class:`Injector` arms all of
a store's targets with a policy (``policies.py``) for the length of a block. Nothing here imports
SQLAlchemy or botocore: targets are recognised by their shape (contract DEP-1).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import TypeVar

from pytest_asm_contract._contract.port import FAULT_HOOK, HookError, fault_targets
from pytest_asm_contract._faults.botocore import BotocoreTarget, is_client
from pytest_asm_contract._faults.gate import FaultGate, GateTarget
from pytest_asm_contract._faults.protocols import Policy, Target
from pytest_asm_contract._faults.sqlalchemy import SqlAlchemyTarget, is_engine

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
        self._targets = [adapt(target) for target in targets]
        self._lock = threading.Lock()

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


__all__ = ["Injector", "adapt", "injector_for"]
