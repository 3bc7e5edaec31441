"""The session log: immutable commit records and the state they add up to.

A session's log is a sequence of records at positions 1, 2, 3, ... Each record is one JSON object
holding a list of operations; the state of the session is the result of applying the records in
order. Every ``snapshot_interval``-th record also carries the whole state before it, so a reader
never needs more than one snapshot and ``snapshot_interval`` records. A record of a batch over
several sessions names its transaction (``xtx``) and counts only once that transaction's decision
object says "commit"; an aborted one is skipped. The record format (``FORMAT``, ``check_record``,
``encode_record``) is shared with the claim log (``_claims``); ``_logstore`` reads and commits both.
See docs/s3-protocol.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, Run, Session

FORMAT = 1


def _dump(model: Session | Run | Event) -> dict[str, Any]:
    # Python mode, not pydantic's JSON mode: that one replaces lone surrogates in dict keys.
    # ``encode_record`` turns the datetimes into ISO strings; enums are str subclasses.
    return model.model_dump()


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a log record")


def _corrupt(message: str, **details: Any) -> StoreError:
    return StoreError(ErrorCode.STORAGE_READ_FAILED, f"unreadable log: {message}", details)


@dataclasses.dataclass
class SessionState:
    """What a session's log adds up to at position ``pos``.

    ``gen`` counts the deletes so far: a delete ends a generation, and id claims taken in an
    earlier generation are dead. ``revoked`` holds the claims other sessions revoked in this
    generation. Instances are treated as immutable once published; ``evolve`` copies.
    """

    pos: int = 0
    gen: int = 0
    session: Session | None = None
    runs: dict[str, Run] = dataclasses.field(default_factory=dict)
    events: list[Event] = dataclasses.field(default_factory=list)
    index: dict[str, int] = dataclasses.field(default_factory=dict)
    revoked: frozenset[str] = frozenset()
    #: A batch transaction whose record follows ``pos`` and is not decided yet (readers stop).
    pending: str | None = None

    @property
    def empty(self) -> bool:
        return self.session is None and not self.runs and not self.events

    def event(self, event_id: str) -> Event | None:
        seq = self.index.get(event_id)
        return None if seq is None else self.events[seq - 1]

    def evolve(self) -> SessionState:
        return dataclasses.replace(
            self, runs=dict(self.runs), events=list(self.events), index=dict(self.index)
        )

    # -- applying records (mutates: call on an evolved copy) ------------------------------------
    def apply(self, record: Mapping[str, Any], skip: bool = False) -> None:
        """Apply the next record (checked by ``check_record``); ``skip`` (an aborted batch)
        only moves past its position."""
        if not skip:
            for op in record["ops"]:
                self._apply_op(op)
        self.pos = int(record["pos"])

    def _apply_op(self, op: Mapping[str, Any]) -> None:
        kind = op["t"]
        if kind == "session":
            self.session = Session.model_validate(op["session"])
        elif kind == "run":
            run = Run.model_validate(op["run"])
            self.runs[run.id] = run
        elif kind == "drop_run":
            self.runs.pop(op["run_id"], None)
        elif kind == "events":
            for raw in op["events"]:
                event = Event.model_validate(raw)
                if event.sequence_number != len(self.events) + 1 or event.id in self.index:
                    raise _corrupt("events out of sequence", event_id=event.id)
                self.events.append(event)
                self.index[event.id] = len(self.events)
        elif kind == "revoke":
            self.revoked = self.revoked | frozenset(op["claims"])
        elif kind == "delete":
            self.session = None
            self.runs = {}
            self.events = []
            self.index = {}
            self.revoked = frozenset()
            self.gen += 1
        else:
            raise _corrupt(f"unknown operation {kind!r}")

    # -- snapshots ------------------------------------------------------------------------------
    def to_snapshot(self) -> dict[str, Any]:
        return {
            "pos": self.pos,
            "gen": self.gen,
            "session": None if self.session is None else _dump(self.session),
            "runs": [_dump(run) for run in self.runs.values()],
            "events": [_dump(event) for event in self.events],
            "revoked": sorted(self.revoked),
        }

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> SessionState:
        state = cls(pos=snapshot["pos"], gen=snapshot["gen"])
        if snapshot["session"] is not None:
            state.session = Session.model_validate(snapshot["session"])
        for raw in snapshot["runs"]:
            run = Run.model_validate(raw)
            state.runs[run.id] = run
        for raw in snapshot["events"]:
            event = Event.model_validate(raw)
            state.events.append(event)
            state.index[event.id] = len(state.events)
        state.revoked = frozenset(snapshot["revoked"])
        return state


# -- operations, as written into records ---------------------------------------------------------
def session_op(session: Session) -> dict[str, Any]:
    return {"t": "session", "session": _dump(session)}


def run_op(run: Run) -> dict[str, Any]:
    return {"t": "run", "run": _dump(run)}


def drop_run_op(run_id: str) -> dict[str, Any]:
    return {"t": "drop_run", "run_id": run_id}


def events_op(events: Iterable[Event]) -> dict[str, Any]:
    return {"t": "events", "events": [_dump(event) for event in events]}


def revoke_op(claims: Iterable[str]) -> dict[str, Any]:
    return {"t": "revoke", "claims": sorted(claims)}


def delete_op() -> dict[str, Any]:
    return {"t": "delete"}


def check_record(record: Mapping[str, Any], ident: tuple[str, str], pos: int) -> None:
    """``record`` must be of this format, name its log (``ident``) and sit at ``pos``."""
    key, value = ident
    found = record.get("pos")
    if record.get("v") != FORMAT or record.get(key) != value:
        raise _corrupt("record of another format or log", position=found, **{key: value})
    if found != pos:
        raise _corrupt(f"expected position {pos}, read {found}", position=found)


def encode_record(record: Mapping[str, Any]) -> bytes:
    # ASCII JSON: lone surrogates and NUL survive as escapes; floats round-trip through repr.
    return json.dumps(
        record, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_json_default
    ).encode()


def decode_record(body: bytes, key: str) -> dict[str, Any]:
    try:
        record = json.loads(body)
    except ValueError as error:
        raise _corrupt(f"object {key!r} is not JSON", key=key) from error
    if not isinstance(record, dict):
        raise _corrupt(f"object {key!r} is not a record", key=key)
    return record
