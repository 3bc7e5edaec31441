"""The claim log: which session may store each event id (IDEM-1 across sessions).

The claim log is a log like a session's (same keys, snapshots and commit protocol) whose state
maps every event id ever claimed to its marker: the session that may store it, the claim id, the
session's generation when it was claimed and the position of the claim record that set it (that
record's age is the claim's age). One record holds every claim of a batch, so claiming costs one
conditional create whatever the batch size. See docs/s3-protocol.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event
from reference_stores.s3._log import SessionState

#: What claim records carry to name their log (session records carry their ``session_id``).
IDENT = ("log", "claims")


@dataclasses.dataclass(frozen=True)
class Claim:
    """This session may store the event id under claim ``claim`` taken in generation ``gen``."""

    claim: str
    gen: int


@dataclasses.dataclass(frozen=True)
class Marker:
    """The current claim on an event id, set by the claim record at position ``pos``."""

    session: str
    claim: str
    gen: int
    pos: int

    def live_in(self, state: SessionState) -> bool:
        """Whether the claim still allows ``state``'s session to store the id."""
        return self.gen == state.gen and self.claim not in state.revoked


@dataclasses.dataclass
class ClaimState:
    """What the claim log adds up to at position ``pos``: the marker of every claimed id."""

    pos: int = 0
    markers: dict[str, Marker] = dataclasses.field(default_factory=dict)
    #: Claim records never belong to a batch transaction; present for the shared log code.
    pending: str | None = None

    def evolve(self) -> ClaimState:
        return dataclasses.replace(self, markers=dict(self.markers))

    def apply(self, record: Mapping[str, Any], skip: bool = False) -> None:
        pos = int(record["pos"])
        if not skip:
            for op in record["ops"]:
                if op.get("t") != "claim":
                    raise _corrupt(f"unknown operation {op.get('t')!r}")
                marker = Marker(str(op["s"]), str(op["c"]), int(op["g"]), pos)
                for event_id in op["ids"]:
                    self.markers[event_id] = marker
        self.pos = pos

    def to_snapshot(self) -> dict[str, Any]:
        # Markers set by one record share session, claim, generation and position: group them.
        groups: dict[Marker, list[str]] = {}
        for event_id, marker in self.markers.items():
            groups.setdefault(marker, []).append(event_id)
        return {
            "pos": self.pos,
            "claims": [[m.session, m.claim, m.gen, m.pos, ids] for m, ids in groups.items()],
        }

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> ClaimState:
        state = cls(pos=int(snapshot["pos"]))
        for session, claim, gen, pos, ids in snapshot["claims"]:
            marker = Marker(str(session), str(claim), int(gen), int(pos))
            for event_id in ids:
                state.markers[event_id] = marker
        return state


@dataclasses.dataclass
class Outcome:
    """What one claim request got: claims by session, ids stored elsewhere, ids to wait for."""

    claims: dict[str, dict[str, Claim]] = dataclasses.field(default_factory=dict)
    foreign: dict[str, Event] = dataclasses.field(default_factory=dict)
    #: id -> (the requesting session, the live unused claim of another session on it).
    blocked: dict[str, tuple[str, Marker]] = dataclasses.field(default_factory=dict)


class ClaimRecord:
    """Computes the next claim record from the claim state at the log's head.

    Requests are decided in order, each seeing the claims of the ones before it, exactly as if
    each had its own record. ``own`` gives a requesting session's state (a cached one will do: the
    session commit checks the claim against the exact head); ``owner`` gives another session's
    state read after the claim state, so a claim it calls dead can never become live again.
    """

    def __init__(
        self,
        state: ClaimState,
        claim: str,
        own: Callable[[str], SessionState],
        owner: Callable[[str], SessionState],
    ) -> None:
        self._state, self._claim = state, claim
        self._own, self._owner = own, owner
        self._owners: dict[str, SessionState] = {}
        self._written: dict[str, Marker] = {}  # id -> marker set by this record

    def decide(self, wanted: Mapping[str, Iterable[str]]) -> Outcome:
        outcome = Outcome()
        for session_id, ids in wanted.items():
            for event_id in ids:
                self._decide_one(session_id, event_id, outcome)
        return outcome

    def ops(self) -> list[dict[str, Any]] | None:
        # Built from the final markers, so an id taken over within the record appears once.
        groups: dict[tuple[str, int], list[str]] = {}
        for event_id, marker in self._written.items():
            groups.setdefault((marker.session, marker.gen), []).append(event_id)
        return [
            {"t": "claim", "s": session, "c": self._claim, "g": gen, "ids": ids}
            for (session, gen), ids in groups.items()
        ] or None

    def _decide_one(self, session_id: str, event_id: str, outcome: Outcome) -> None:
        marker = self._written.get(event_id) or self._state.markers.get(event_id)
        if marker is not None and marker.session == session_id:
            own = self._own(session_id)
            if marker.live_in(own):  # a racing writer of this session, or one that stopped
                outcome.claims.setdefault(session_id, {})[event_id] = Claim(
                    marker.claim, marker.gen
                )
                return
        elif marker is not None:
            state = self._owner_state(marker.session)
            stored = state.event(event_id)
            if stored is not None:
                outcome.foreign[event_id] = stored  # first write wins
                return
            if marker.live_in(state):  # the owner may still commit it
                outcome.blocked[event_id] = (session_id, marker)
                return
        # A new id, or a dead claim (an earlier generation, or revoked): claim it afresh.
        gen = self._own(session_id).gen
        self._written[event_id] = Marker(session_id, self._claim, gen, self._state.pos + 1)
        outcome.claims.setdefault(session_id, {})[event_id] = Claim(self._claim, gen)

    def _owner_state(self, session_id: str) -> SessionState:
        state = self._owners.get(session_id)
        if state is None:
            state = self._owners[session_id] = self._owner(session_id)
        return state


def _corrupt(message: str) -> StoreError:
    return StoreError(ErrorCode.STORAGE_READ_FAILED, f"unreadable claim log: {message}")
