"""The judged reads a rule asks for: listings with filters and paging, and filtered event reads.

Functions of the :class:`~.referee.Referee`, handed to :meth:`~.referee.Referee.act` with the
arguments a rule drew (the plain read-backs after writes are in ``checks``).
"""

from __future__ import annotations

from typing import Any

from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.comparisons import compare_list
from pytest_asm_contract._machine.referee import Referee
from pytest_asm_contract._machine.values import confusable


def list_sessions(referee: Referee, kwargs: dict[str, Any]) -> None:
    """list_sessions with ``status``, ``agent_id``, ``limit`` and ``offset``."""
    outcome = referee.model.list_sessions(**kwargs)
    code = repro.lazy_call("list_sessions", **kwargs)
    value, error = referee.call(lambda: referee.store.list_sessions(**kwargs))

    def check(found: Any) -> None:
        agent = kwargs["agent_id"]
        listed = [getattr(s, "agent_id", None) for s in found or ()]
        # A session of a look-alike agent listed for this agent: the filter matched loosely.
        loose = agent is not None and any(
            isinstance(a, str) and confusable(agent, a) for a in listed
        )
        compare_list(
            referee,
            "DATA-3" if loose else "SES-3",
            "list_sessions",
            code,
            outcome.result,
            found,
            "[s.id for s in result]",
        )

    if referee.settle(
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
            referee.coverage.hit("sessions listed with filters or paging")
        if any(s.deleted_at is not None for s in outcome.result):
            referee.coverage.hit("soft-deleted session listed")
    else:
        referee.coverage.hit("invalid list argument rejected")


def list_runs(referee: Referee, sid: str, kwargs: dict[str, Any]) -> None:
    """list_runs of a session with ``status``, ``limit`` and ``offset``."""
    outcome = referee.model.list_runs(sid, **kwargs)
    code = repro.lazy_call("list_runs", sid, **kwargs)
    value, error = referee.call(lambda: referee.store.list_runs(sid, **kwargs))

    def check(found: Any) -> None:
        compare_list(
            referee, "RUN-2", "list_runs", code, outcome.result, found, "[r.id for r in result]"
        )

    if referee.settle(
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
            referee.coverage.hit("runs listed with filters or paging")
    else:
        referee.coverage.hit("invalid list argument rejected")


def read_events(referee: Referee, sid: str, kwargs: dict[str, Any]) -> None:
    """get_events of a session with filters (EVT-3), or none (EVT-2)."""
    outcome = referee.model.get_events(sid, **kwargs)
    code = repro.lazy_call("get_events", sid, **kwargs)
    value, error = referee.call(lambda: referee.store.get_events(sid, **kwargs))
    filtered = any(v is not None for v in kwargs.values())
    read_rule = "EVT-3" if filtered else "EVT-2"

    def check(found: Any) -> None:
        compare_list(
            referee,
            read_rule,
            "get_events",
            code,
            outcome.result,
            found,
            "[(e.id, e.sequence_number) for e in result]",
        )

    if referee.settle(
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
            referee.coverage.hit("events read with filters")
    else:
        referee.coverage.hit("invalid event filter rejected")
