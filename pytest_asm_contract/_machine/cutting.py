"""What the side ports' state machines share: stopping at the first failure, and cutting the
calls that lead to it down while the same rule still fails.

Hypothesis's own shrinking has no time limit (measured up to two minutes on one broken
QueryAPI), so the machines run without it and cut their reproduction down here, within a time
budget, by replaying on fresh stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from hypothesis import Phase
from hypothesis import settings as Settings

T = TypeVar("T")
F = TypeVar("F")


def first_failure(settings: Settings, step_count: int) -> Settings:
    """``settings`` for a machine that stops at its first failure, shrinking left to the kit."""
    return Settings(
        settings,
        stateful_step_count=step_count,
        database=None,
        print_blob=False,
        report_multiple_bugs=False,
        phases=[p for p in settings.phases if p not in (Phase.shrink, Phase.explain)],
    )


def cut_down(
    failure: F,
    calls: Callable[[F], list[T]],
    replay: Callable[[list[T]], F | None],
    seconds: float,
    keep: int = 0,
) -> F:
    """Drop ``calls(failure)``, in halving chunks, while ``replay`` of the rest still gives a
    failure (``replay`` returns None unless it is the same rule); at least ``keep`` calls stay."""
    deadline = time.monotonic() + seconds
    best = failure
    chunk = max(1, len(calls(best)) // 2)
    while time.monotonic() < deadline:
        start = 0
        while start < len(calls(best)) - keep and time.monotonic() < deadline:
            left = calls(best)
            found = replay(left[:start] + left[start + chunk :])
            if found is not None:
                best = found
            else:
                start += chunk
        if chunk == 1:
            break
        chunk //= 2
    return best


__all__ = ["cut_down", "first_failure"]
