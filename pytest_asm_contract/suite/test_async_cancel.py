"""ASYNC-1: a write cancelled at any await point is applied whole or not at all. ASYNC-2: no
operation holds the event loop for 100 ms or more. Both run on the async store's own loop.

ASYNC-1 cancels each write at its 1st, 2nd, ... await point, each time on fresh records, until the
write completes before reaching the point (``_concurrency/cancellation.py`` counts the points and
cancels there, deterministically). After each cancellation, once any work the write handed to a
thread or task has finished, a fresh read must show the write absent or whole; then the same call
repeated must give what a first call gives (IDEM-1, FLUSH-4: the same numbers, nothing twice),
and a new append must get the next number.

ASYNC-2 runs a heartbeat task beside the 14 operations (``_concurrency/heartbeat.py``). A gap in
the heartbeat inside a call names the operation; it fails only when the operation, called alone
again, holds the loop again in most repeats, so a loaded machine does not read as a blocked loop.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeVar, cast

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.async_bridge import AsyncStoreFacade
from pytest_asm_contract._concurrency.cancellation import Attempt, run_counted
from pytest_asm_contract._concurrency.formatting import numbers_text
from pytest_asm_contract._concurrency.heartbeat import BLOCKED_S, TICK_S, held_operations
from pytest_asm_contract._concurrency.tasks import async_store
from pytest_asm_contract._concurrency.threads import HANG_GUARD_S
from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import (
    Event,
    ExecutionResult,
    RunStatus,
    SessionStatus,
)
from pytest_asm_contract._contract.port import declared_capabilities
from pytest_asm_contract._plugin.replay import replay_command
from pytest_asm_contract.suite._builders import (
    a_run,
    a_running_run,
    a_session,
    an_event,
    at,
)

#: Await points tried per write: far more than a write needs; a write past it is checked up to it.
MAX_POINTS = 200
T = TypeVar("T")
ABSENT = "absent"


@dataclasses.dataclass(frozen=True)
class Piece:
    """One thing a reader sees of a write's records, before the write and after it."""

    name: str
    read: Callable[[Any], object]
    before: object
    after: object
    show: Callable[[object], str] = str


@dataclasses.dataclass
class Write:
    """A write on fresh records: what to set up, the call, and what a reader may see after."""

    operation: str
    what: str
    prepare: Callable[[Any], None]
    args: tuple[Any, ...]
    #: What a first call returns, as ``_returned`` shows it.
    returns: object
    pieces: list[Piece]
    #: The number a new event then gets, by session.
    next_numbers: dict[str, int]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _returned(result: object) -> object:
    if isinstance(result, Event):
        return (result.id, result.sequence_number)
    if isinstance(result, list):
        return [_returned(item) for item in result]
    return result


def _record(read: Callable[[], object], missing: ErrorCode) -> object:
    try:
        return read()
    except StoreError as error:
        if error.code is not missing:
            raise
        return ABSENT


def _log(session_id: str, new: Sequence[Event] = ()) -> Piece:
    """The session's events as (id, number) pairs; ``new``: the write's events."""
    new_ids = {e.id for e in new}

    def show(value: object) -> str:
        assert isinstance(value, tuple)
        if not value:
            return "no events"
        text = f"{_count(len(value), 'event')}, numbers {numbers_text([n for _, n in value])}"
        if new_ids:
            stored = [n for i, n in value if i in new_ids]
            text += f"; {len(stored)} of the write's {len(new_ids)} new events"
            text += f" (numbers {numbers_text(stored)})" if stored else ""
        return text

    def read(store: Any) -> object:
        return tuple((e.id, e.sequence_number) for e in store.get_events(session_id))

    return Piece(f"events of {session_id}", read, (), (), show)


def _latest(session_id: str) -> Piece:
    return Piece(
        f"get_latest_sequence({session_id!r})",
        lambda store: store.get_latest_sequence(session_id),
        0,
        0,
    )


def _numbered(events: list[Event], first: int = 1) -> tuple[tuple[str, int], ...]:
    return tuple((e.id, n) for n, e in enumerate(events, first))


def _one_event(operation: str, tag: str) -> Write:
    session = a_session(id=f"ses-cancel-{operation}-{tag}")
    earlier = [an_event(session, id=f"evt-cancel-{operation}-{tag}-{i}") for i in range(2)]
    event = an_event(session, id=f"evt-cancel-{operation}-{tag}-new")
    log, latest = _log(session.id, [event]), _latest(session.id)

    def prepare(store: Any) -> None:
        store.save_session(session)
        store.append_events(earlier)

    return Write(
        operation,
        "one new event in a session holding 2",
        prepare,
        (event,),
        (event.id, 3) if operation == "append_event_with_sequence" else None,
        [
            dataclasses.replace(log, before=_numbered(earlier), after=_numbered([*earlier, event])),
            dataclasses.replace(latest, before=2, after=3),
        ],
        {session.id: 4},
    )


def _batch(tag: str) -> Write:
    first = a_session(id=f"ses-cancel-batch-{tag}-a")
    second = a_session(id=f"ses-cancel-batch-{tag}-b")
    earlier = an_event(first, id=f"evt-cancel-batch-{tag}-a0")
    a1, a2 = (an_event(first, id=f"evt-cancel-batch-{tag}-a{i}") for i in (1, 2))
    b1, b2 = (an_event(second, id=f"evt-cancel-batch-{tag}-b{i}") for i in (1, 2))

    def prepare(store: Any) -> None:
        store.save_session(first)
        store.save_session(second)
        store.append_events([earlier])

    return Write(
        "append_events",
        "a batch of 4 new events over 2 sessions",
        prepare,
        ([a1, b1, a2, b2],),
        [(a1.id, 2), (b1.id, 1), (a2.id, 3), (b2.id, 2)],
        [
            dataclasses.replace(
                _log(first.id, [a1, a2]),
                before=_numbered([earlier]),
                after=_numbered([earlier, a1, a2]),
            ),
            dataclasses.replace(_latest(first.id), before=1, after=3),
            dataclasses.replace(_log(second.id, [b1, b2]), after=_numbered([b1, b2])),
            dataclasses.replace(_latest(second.id), after=2),
        ],
        {first.id: 4, second.id: 3},
    )


def _flush(tag: str) -> Write:
    session = a_session(id=f"ses-cancel-flush-{tag}", status=SessionStatus.ACTIVE)
    run = a_running_run(session, id=f"run-cancel-flush-{tag}")
    earlier = an_event(session, run, id=f"evt-cancel-flush-{tag}-0")
    new = [an_event(session, run, id=f"evt-cancel-flush-{tag}-{i}") for i in (1, 2, 3)]
    done_session = session.model_copy(update={"status": SessionStatus.COMPLETED})
    done_run = run.model_copy(update={"status": RunStatus.COMPLETED, "ended_at": at(60)})
    # the stored event again: a flush stores it once (FLUSH-4)
    result = ExecutionResult(session=done_session, run=done_run, events=[earlier, *new])

    def prepare(store: Any) -> None:
        store.save_session(session)
        store.save_run(run)
        store.append_events([earlier])

    def version(value: object) -> str:
        if value in (done_session, done_run):
            return "the flushed version"
        return "the version from before" if value in (session, run) else str(value)

    return Write(
        "flush",
        "a finished session and run with 3 new events over a running one",
        prepare,
        (result,),
        None,
        [
            Piece(
                f"session {session.id}",
                lambda store: _record(
                    lambda: store.get_session(session.id), ErrorCode.SESSION_NOT_FOUND
                ),
                session,
                done_session,
                version,
            ),
            Piece(
                f"run {run.id}",
                lambda store: _record(lambda: store.get_run(run.id), ErrorCode.RUN_NOT_FOUND),
                run,
                done_run,
                version,
            ),
            dataclasses.replace(
                _log(session.id, new),
                before=_numbered([earlier]),
                after=_numbered([earlier, *new]),
            ),
            dataclasses.replace(_latest(session.id), before=1, after=4),
        ],
        {session.id: 5},
    )


def _save_session(tag: str) -> Write:
    before = a_session(id=f"ses-cancel-save-{tag}", metadata={"v": "before"})
    after = before.model_copy(update={"status": SessionStatus.ACTIVE, "metadata": {"v": "after"}})
    return Write(
        "save_session",
        "a session saved over its earlier version",
        lambda store: store.save_session(before),
        (after,),
        None,
        [
            Piece(
                f"session {before.id}",
                lambda store: store.get_session(before.id),
                before,
                after,
                lambda v: f"metadata {getattr(v, 'metadata', v)}",
            )
        ],
        {before.id: 1},
    )


def _save_run(tag: str) -> Write:
    session = a_session(id=f"ses-cancel-run-{tag}")
    before = a_running_run(session, id=f"run-cancel-run-{tag}")
    after = before.model_copy(update={"status": RunStatus.COMPLETED, "turn_count": 3})

    def prepare(store: Any) -> None:
        store.save_session(session)
        store.save_run(before)

    return Write(
        "save_run",
        "a run saved over its earlier version",
        prepare,
        (after,),
        None,
        [
            Piece(
                f"run {before.id}",
                lambda store: store.get_run(before.id),
                before,
                after,
                lambda v: f"status {getattr(v, 'status', v)}",
            )
        ],
        {session.id: 1},
    )


def _delete_session(tag: str) -> Write:
    doomed = a_session(id=f"ses-cancel-doomed-{tag}")
    kept = a_session(id=f"ses-cancel-kept-{tag}")
    runs = [a_run(doomed, id=f"run-cancel-doomed-{tag}-{i}", started_at=at(i)) for i in (1, 2)]
    events = [an_event(doomed, runs[0], id=f"evt-cancel-doomed-{tag}-{i}") for i in range(3)]
    kept_event = an_event(kept, id=f"evt-cancel-kept-{tag}")

    def prepare(store: Any) -> None:
        store.save_session(doomed)
        store.save_session(kept)
        for run in runs:
            store.save_run(run)
        store.append_events([*events, kept_event])

    kept_log = _numbered([kept_event])
    return Write(
        "delete_session",
        "a session holding 2 runs and 3 events",
        prepare,
        (doomed.id,),
        None,
        [
            Piece(
                f"session {doomed.id}",
                lambda store: _record(
                    lambda: store.get_session(doomed.id), ErrorCode.SESSION_NOT_FOUND
                ),
                doomed,
                ABSENT,
                lambda v: ABSENT if v == ABSENT else "still there",
            ),
            Piece(
                f"runs of {doomed.id}",
                lambda store: tuple(r.id for r in store.list_runs(doomed.id)),
                tuple(r.id for r in runs),
                (),
                lambda v: _count(len(v), "run") if isinstance(v, tuple) else str(v),
            ),
            dataclasses.replace(_log(doomed.id), before=_numbered(events)),
            dataclasses.replace(_latest(doomed.id), before=3),
            dataclasses.replace(_log(kept.id), before=kept_log, after=kept_log),
        ],
        {kept.id: 2},
    )


WRITES: dict[str, Callable[[str], Write]] = {
    "single-append": functools.partial(_one_event, "append_event"),
    "numbered-append": functools.partial(_one_event, "append_event_with_sequence"),
    "batch-append": _batch,
    "flush": _flush,
    "save_session": _save_session,
    "save_run": _save_run,
    "delete_session": _delete_session,
}


def _state(write: Write, store: Any) -> tuple[str, list[str]]:
    """``none``, ``whole``, ``partial`` or ``neither`` (a piece in neither state), and a line
    per piece."""
    lines: list[str] = []
    seen: set[str] = set()
    for piece in write.pieces:
        value = piece.read(store)
        if value == piece.after and value != piece.before:
            where = "applied"
        elif value == piece.before and value != piece.after:
            where = "not applied"
        elif value == piece.before:
            where = "unchanged, as it must be"
        elif _between(piece, value):
            where = "partly applied"
        else:
            where = "neither before nor after the write"
        seen.add(where)
        lines.append(f"  {piece.name}: {piece.show(value)}   [{where}]")
    if "neither before nor after the write" in seen:
        return "neither", lines
    if "partly applied" in seen or {"applied", "not applied"} <= seen:
        return "partial", lines
    return ("whole" if "applied" in seen else "none"), lines


def _between(piece: Piece, value: object) -> bool:
    """A log holding what it held before and some, not all, of what the write adds; a latest
    number strictly between the two."""
    before, after = piece.before, piece.after
    if isinstance(value, int) and isinstance(before, int) and isinstance(after, int):
        return min(before, after) < value < max(before, after)
    if isinstance(value, tuple) and isinstance(before, tuple) and isinstance(after, tuple):
        found, old, new = set(value), set(before), set(after)
        return old < found < new or new < found < old
    return False


def _on_loop(facade: AsyncStoreFacade, main: Callable[[], Awaitable[T]]) -> T:
    """``main()`` awaited on the store's own loop, from this thread."""
    loop: Any = facade.asm_loop_thread  # run()'s `T | Awaitable[T]` defeats mypy's inference
    return cast(T, loop.run(main))


def _check_write(request: pytest.FixtureRequest, facade: AsyncStoreFacade, key: str) -> int:
    """Cancel the write at each await point in turn; the number of points it has."""
    replay = replay_command(request.config, f"{request.node.originalname} and {key}")

    def broken(heading: str, lines: list[str], attempt: Attempt) -> NoReturn:
        if attempt.unsettled:
            lines.append(f"  ({attempt.unsettled} tasks the call started were still running)")
        pytest.fail("\n".join([heading, *lines, f"replay: {replay}"]), pytrace=False)

    store = facade.asm_async_store
    for k in range(1, MAX_POINTS + 2):
        write = WRITES[key](f"k{k}")
        write.prepare(facade)
        operation = getattr(store, write.operation)
        cancel_at = k if k <= MAX_POINTS else None
        attempt = _on_loop(
            facade,
            functools.partial(
                run_counted, functools.partial(operation, *write.args), cancel_at, HANG_GUARD_S
            ),
        )
        if attempt.cancelled_at_k:
            heading = (
                f"{write.operation} cancelled at await point {k} ({write.what}): "
                f"the call {attempt.ending}"
            )
        else:
            heading = (
                f"{write.operation} ({write.what}) completed with {attempt.points} await points"
            )
        if attempt.error is not None and not isinstance(attempt.error, StoreError):
            broken(heading + ", a raw exception (PORT-3: only StoreError escapes)", [], attempt)
        if not attempt.cancelled_at_k and (attempt.cancelled or attempt.error is not None):
            broken(heading + " without being cancelled", [], attempt)
        state, lines = _state(write, facade)
        returned = not attempt.cancelled and attempt.error is None
        if state in ("partial", "neither") or (returned and state != "whole"):
            what = {
                "partial": "part of the write is applied",
                "neither": "the records match neither the state before the write nor after it",
            }.get(state, "it returned, yet the write is not applied")
            broken(f"{heading}; {what}:", lines, attempt)
        if not attempt.cancelled_at_k:
            if _returned(attempt.result) != write.returns:
                broken(f"{heading} and returned {_returned(attempt.result)!r}", [], attempt)
            if cancel_at is None:
                warnings.warn(
                    f"{key}: {write.operation} has {attempt.points} await points; ASYNC-1 "
                    f"cancelled it at the first {MAX_POINTS} only",
                    stacklevel=1,
                )
            return attempt.points
        again = f"repeating {write.operation} after it was cancelled at await point {k}"
        try:
            result = getattr(facade, write.operation)(*write.args)
        except StoreError as error:
            broken(f"{again} raised {error.code.value}: {error.message}", lines, attempt)
        if _returned(result) != write.returns:
            broken(
                f"{again} returned {_returned(result)!r}; a first call returns "
                f"{write.returns!r} (IDEM-1: the same numbers, nothing stored twice)",
                lines,
                attempt,
            )
        state, lines = _state(write, facade)
        if state != "whole":
            broken(f"{again} did not give the state a first call gives:", lines, attempt)
        _check_usable(write, facade, f"after {write.operation} was cancelled at await point {k}")
    raise AssertionError("unreachable: the last round runs the write uncancelled")


def _check_usable(write: Write, store: Any, when: str) -> None:
    """A new event in each session the write touched gets the next number, with no gap."""
    for session_id, number in write.next_numbers.items():
        event = an_event(session_id, id=f"evt-after-{session_id}")
        try:
            stored = store.append_event_with_sequence(event)
        except StoreError as error:
            pytest.fail(f"{when}, a new append to {session_id} raised {error}", pytrace=False)
        numbers = [e.sequence_number for e in store.get_events(session_id)]
        if stored.sequence_number != number or numbers != list(range(1, number + 1)):
            pytest.fail(
                f"{when}, a new append to {session_id} got number {stored.sequence_number} "
                f"(expected {number}); the session's numbers are {numbers_text(numbers)}",
                pytrace=False,
            )


def _check_loop(request: pytest.FixtureRequest, facade: AsyncStoreFacade) -> None:
    long_poll = "long_poll" in declared_capabilities(facade)
    lines = held_operations(functools.partial(_on_loop, facade), facade.asm_async_store, long_poll)
    if lines:
        heading = (
            f"the event loop was held without yielding for {BLOCKED_S * 1000:.0f} ms or more "
            f"(a heartbeat task waking every {TICK_S * 1000:.0f} ms did not run) during these "
            "calls: look for a sync call (a database driver, time.sleep) inside async def"
        )
        replay = replay_command(request.config, request.node.originalname)
        pytest.fail("\n".join([heading, *lines, f"replay: {replay}"]), pytrace=False)


class TestAsyncCancelAndBlocking:
    @rule("ASYNC-1")
    @pytest.mark.parametrize("write", list(WRITES))
    def test_cancelled_write_is_all_or_nothing(
        self, request: pytest.FixtureRequest, asm_store: Any, write: str
    ) -> None:
        _check_write(request, async_store(asm_store), write)

    @rule("ASYNC-2")
    def test_no_operation_blocks_the_event_loop(
        self, request: pytest.FixtureRequest, asm_store: Any
    ) -> None:
        _check_loop(request, async_store(asm_store))


__all__ = ["TestAsyncCancelAndBlocking"]
