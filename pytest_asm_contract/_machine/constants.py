"""The rules the state machine checks, and the constants its parts share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

#: One recorded store operation: a judged operation (a function taking the referee first), and
#: the args and kwargs the rule handed it.
Action = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

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

#: Steps per example; short examples keep slow stores fast and shrink well.
DEFAULT_STEP_COUNT = 40
#: Further rounds a run may take to reach probes that its first round missed by chance.
EXTRA_ROUNDS = 3
