"""A fault target for stores whose writes go through neither SQLAlchemy nor botocore.

Such a store puts a ``FaultGate`` on its write path and returns it from its fault hook::

    class MyStore:
        def __init__(self) -> None:
            self._gate = FaultGate()

        def asm_fault_target(self) -> FaultGate:
            return self._gate

        def flush(self, result) -> None:
            ...
            self._gate.before_write("session")  # before each write to the backend
            ...
            self._gate.after_commit("flush")  # once the operation has taken effect

Unarmed, both calls do nothing. The kit arms them to raise ``BackendFault``, a
``ConnectionError``, as a backend that went away would: before the k-th write (FLUSH-3: nothing
of the operation may then be visible) or after the operation took effect (the caller sees a
failure although the write happened; its retry must not store anything twice). The store maps
``BackendFault`` to a ``StoreError`` with a storage code, like any error of its backend.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_asm_contract._faults.protocols import Policy

Hook = Callable[[str], None]


class BackendFault(ConnectionError):
    """The failure an armed gate raises: the backend is gone (a store reports it as a
    ``StoreError`` with a storage code, retryable when the store could not tell the outcome)."""


class FaultGate:
    """Where a store's writes pass, so that the kit can fail one (see the module docstring)."""

    __slots__ = ("_after", "_before")

    def __init__(self) -> None:
        self._before: Hook | None = None
        self._after: Hook | None = None

    def before_write(self, what: str) -> None:
        """Call before each write to the backend; ``what`` names it in failure messages."""
        hook = self._before
        if hook is not None:
            hook(what)

    def after_commit(self, what: str) -> None:
        """Call once an operation has taken effect, before returning to the caller."""
        hook = self._after
        if hook is not None:
            hook(what)

    # -- for the kit's fault targets --------------------------------------------------------------
    def set_before_write(self, hook: Hook | None) -> None:
        self._before = hook

    def set_after_commit(self, hook: Hook | None) -> None:
        self._after = hook


class GateTarget:
    """The kit's side of a ``FaultGate``: raises ``BackendFault`` where the policy says."""

    kind = "FaultGate"

    def __init__(self, gate: FaultGate) -> None:
        self._gate = gate

    def arm(self, policy: Policy) -> None:
        def before_write(what: str) -> None:
            message = policy.before_write(what)
            if message is not None:
                raise BackendFault(message)

        def after_commit(what: str) -> None:
            message = policy.after_write(what)
            if message is not None:
                raise BackendFault(message)

        self._gate.set_before_write(before_write)
        self._gate.set_after_commit(after_commit)

    def disarm(self) -> None:
        self._gate.set_before_write(None)
        self._gate.set_after_commit(None)


__all__ = ["BackendFault", "FaultGate", "GateTarget"]
