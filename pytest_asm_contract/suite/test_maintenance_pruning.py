"""MNT-3 and the single-threaded examples of MNT-7: ``prune_session_events`` of the Maintenance
object built from the store under test (``--asm-maintenance``), read back through the session
store. What a prune removes is computed by hand from the events' types and numbers.
(MNT-7 under concurrent appends is checked in ``test_maintenance_load.py``.)"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.model import Event, EventType
from pytest_asm_contract.suite._builders import an_event
from pytest_asm_contract.suite._maintenance_data import (
    PRUNE_TYPES,
    a_policy,
    numbers,
    prune_world,
    typed_events,
)


class TestMaintenancePruning:
    # -- MNT-3: what a prune removes, and what it leaves ----------------------------------------
    @rule("MNT-3")
    @pytest.mark.parametrize(
        ("limit", "left"),
        [
            (7, [1, 3, 4, 5, 6, 7, 8]),
            (6, [1, 3, 5, 6, 7, 8]),
            (4, [1, 3, 5, 7]),
            (3, [1, 5, 7]),
            (2, [1, 7]),
            (1, [1, 7]),  # fewer removable than the excess: all the removable ones go
        ],
    )
    def test_prune_removes_listed_types_first_then_the_lowest_others(
        self, asm_store: Any, asm_maintenance: Any, limit: int, left: list[int]
    ) -> None:
        stored = prune_world(asm_store)
        pruned = asm_maintenance.prune_session_events("p", a_policy(max_events_per_session=limit))
        found = asm_store.get_events("p")
        assert numbers(found) == left, (
            f"MNT-3: pruning 8 events to {limit} removes the listed types (lowest sequence "
            "first), then the lowest others, never run_started/run_completed: expected "
            f"{left} left, found {numbers(found)}"
        )
        assert found == [e for e in stored if e.sequence_number in left], (
            "MNT-3: the events left keep their numbers and every other field"
        )
        assert pruned == 8 - len(left), (
            f"MNT-3: prune returns how many it removed ({8 - len(left)}), returned {pruned}"
        )
        latest = asm_store.get_latest_sequence("p")
        assert latest == 8, f"MNT-3: get_latest_sequence stays 8 after a prune, found {latest}"

    @rule("MNT-3")
    @pytest.mark.parametrize(
        ("listed", "types", "limit", "left"),
        [
            (
                ["run_started", "run_completed", "message_sent"],
                (
                    "run_started",
                    "message_received",
                    "run_completed",
                    "message_sent",
                    "run_started",
                    "message_received",
                ),
                3,
                [1, 3, 5],
            ),
            (
                ["tool_call_completed", "message_sent"],
                ("message_sent", "tool_call_completed", "message_received", "message_sent"),
                3,
                [2, 3, 4],
            ),
            (
                ["tool_call_completed", "message_sent"],
                ("message_sent", "tool_call_completed", "message_received", "message_sent"),
                1,
                [3],
            ),
            ([], PRUNE_TYPES, 5, [1, 5, 6, 7, 8]),
        ],
        ids=["run-events-listed", "listed-by-sequence", "listed-then-others", "nothing-listed"],
    )
    def test_prune_follows_prune_event_types_first(
        self,
        asm_store: Any,
        asm_maintenance: Any,
        listed: list[str],
        types: tuple[str, ...],
        limit: int,
        left: list[int],
    ) -> None:
        prune_world(asm_store, types=types)
        policy = a_policy(max_events_per_session=limit, prune_event_types_first=listed)
        pruned = asm_maintenance.prune_session_events("p", policy)
        found = numbers(asm_store.get_events("p"))
        assert (found, pruned) == (left, len(types) - len(left)), (
            f"MNT-3: with prune_event_types_first={listed} the listed types go first in sequence "
            "order (not list order), then the others; run_started/run_completed never: "
            f"expected {left} left, found {found} (returned {pruned})"
        )

    @rule("MNT-3")
    def test_the_next_append_after_a_prune_gets_latest_plus_one(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        prune_world(asm_store)
        asm_maintenance.prune_session_events("p", a_policy(max_events_per_session=4))
        assert 8 not in numbers(asm_store.get_events("p")), "the setup prunes the highest number"
        latest = asm_store.get_latest_sequence("p")
        assert latest == 8, (
            "MNT-3: get_latest_sequence does not change when the highest-numbered event is "
            f"pruned: expected 8, found {latest}"
        )
        one = asm_store.append_event_with_sequence(an_event("p", id="p-new"))
        batch = asm_store.append_events([an_event("p", id=f"p-new-{n}") for n in (1, 2)])
        found = numbers([one, *batch])
        assert found == [9, 10, 11], (
            f"MNT-3: appends after a prune are numbered from latest + 1 (9, 10, 11), got {found}"
        )

    @rule("MNT-3")
    def test_a_pruned_id_appended_again_is_stored_anew(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        stored = prune_world(asm_store)
        asm_maintenance.prune_session_events("p", a_policy(max_events_per_session=4))
        # p-2 and p-4 were pruned, p-3 was not
        anew = asm_store.append_event_with_sequence(an_event("p", id="p-2", data={"v": 2}))
        assert (anew.sequence_number, anew.data) == (9, {"v": 2}), (
            "MNT-3: a pruned id appended again is stored anew, numbered latest + 1 (9): got "
            f"number {anew.sequence_number} with {anew.data}"
        )
        batch = asm_store.append_events([an_event("p", id="p-4", data={"v": 4})])
        assert (batch[0].sequence_number, batch[0].data) == (10, {"v": 4}), (
            "MNT-3: a pruned id appended again through append_events is stored anew (10): got "
            f"number {batch[0].sequence_number} with {batch[0].data}"
        )
        kept = asm_store.append_event_with_sequence(an_event("p", id="p-3", data={"v": 3}))
        assert kept == stored[2], (
            "MNT-3, IDEM-1: an id the prune left is still stored: appending it again returns the "
            f"original (number 3, first write wins), got number {kept.sequence_number} with "
            f"{kept.data}"
        )
        found = numbers(asm_store.get_events("p"))
        assert found == [1, 3, 5, 7, 9, 10], (
            f"MNT-3: expected the events [1, 3, 5, 7, 9, 10], found {found}"
        )

    @rule("MNT-3")
    @pytest.mark.parametrize("limit", [None, 8, 100])
    def test_prune_within_the_limit_removes_nothing(
        self, asm_store: Any, asm_maintenance: Any, limit: int | None
    ) -> None:
        stored = prune_world(asm_store)
        policy = a_policy(max_events_per_session=limit)
        pruned = asm_maintenance.prune_session_events("p", policy)
        unknown = asm_maintenance.prune_session_events("never-seen", policy)
        assert (pruned, unknown) == (0, 0), (
            f"MNT-3: with max_events_per_session={limit}, pruning a session of 8 events (or of "
            f"none) returns 0; returned {pruned} and {unknown}"
        )
        assert asm_store.get_events("p") == stored, "MNT-3: a prune within the limit changed events"
        assert asm_store.get_latest_sequence("p") == 8

    # -- MNT-7: a prune touches its own session's selected events only --------------------------
    @rule("MNT-3", "MNT-7")
    def test_a_prune_never_touches_other_sessions(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        # the same layout in every session, and ids that share prefixes
        stored = {sid: prune_world(asm_store, sid) for sid in ("a", "a-", "b")}
        stored["never-saved"] = typed_events(asm_store, "never-saved", PRUNE_TYPES)
        asm_maintenance.prune_session_events("a", a_policy(max_events_per_session=2))
        for sid in ("a-", "b", "never-saved"):
            found = asm_store.get_events(sid)
            assert found == stored[sid], (
                f"MNT-7: pruning session 'a' changed the events of {sid!r}: numbers "
                f"{numbers(stored[sid])} -> {numbers(found)}"
            )
            latest = asm_store.get_latest_sequence(sid)
            assert latest == 8, f"MNT-7: pruning 'a' moved the counter of {sid!r} to {latest}"

    @rule("MNT-7")
    def test_numbers_are_never_reused_or_changed_across_prunes(
        self, asm_store: Any, asm_maintenance: Any
    ) -> None:
        """Each round appends two events and prunes back to two: the streamed one (the highest
        number) goes first, so a counter lowered to the highest number left would hand out a
        number again."""
        assigned: dict[str, int] = {}

        def note(events: list[Event]) -> None:
            for event in events:
                number = event.sequence_number or 0
                reused = [i for i, n in assigned.items() if n >= number]
                assert not reused, (
                    f"MNT-7: a number is never reused: {event.id!r} got {number}, already "
                    f"assigned up to {max(assigned.values())} ({reused})"
                )
                assigned[event.id] = number

        note(prune_world(asm_store, types=["run_started"]))
        policy = a_policy(max_events_per_session=2)
        for round_ in range(4):
            new = [
                an_event("p", type=EventType(kind), id=f"r{round_}-{kind}")
                for kind in ("message_sent", "message_streamed")
            ]
            note(asm_store.append_events(new))
            asm_maintenance.prune_session_events("p", policy)
            held = {e.id: e.sequence_number for e in asm_store.get_events("p")}
            moved = {i: (assigned[i], n) for i, n in held.items() if assigned.get(i) != n}
            assert not moved, f"MNT-7: a prune renumbered events (id: (was, now)): {moved}"
            latest = asm_store.get_latest_sequence("p")
            assert latest == max(assigned.values()), (
                f"MNT-7: the counter stays at the highest number assigned "
                f"({max(assigned.values())}), found {latest}"
            )


__all__ = ["TestMaintenancePruning"]
