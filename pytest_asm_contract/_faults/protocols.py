"""What the fault layer's two halves agree on: a target asks a policy about each write."""

from __future__ import annotations

from typing import Protocol


class Policy(Protocol):
    """Decides which writes fail. Each answer is a message to fail with, or None to let it be.

    ``before_write`` is asked before a write reaches the backend: failing there is a write that
    never happened (FLUSH-3). ``after_write`` is asked once a write (a commit, a request the
    service answered) took effect: failing there is a reply that was lost, so the caller cannot
    tell whether the write happened (ambiguous failures).
    """

    def before_write(self, what: str) -> str | None: ...

    def after_write(self, what: str) -> str | None: ...


class Target(Protocol):
    """One place a store's writes pass (a SQLAlchemy engine, a botocore client, a FaultGate)."""

    def arm(self, policy: Policy) -> None: ...

    def disarm(self) -> None: ...


__all__ = ["Policy", "Target"]
