"""Models to rows and back, exactly (DATA-1), and the checks for values a backend cannot hold.

Timestamps become integer microseconds since 1970-01-01 UTC; JSON fields become ASCII JSON text
(``ensure_ascii``), so every string, 64-bit integer and float ``repr`` survives on every backend.
Plain string columns (ids, provider, correlation_id) hold the string itself, so they must be
representable: valid UTF-8 (no lone surrogates) everywhere, and no NUL character on PostgreSQL.
``check_storable`` rejects anything else with ``validation_error`` before a write starts (DATA-2).
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_asm_contract._contract.errors import validation_error
from pytest_asm_contract._contract.model import INT64_MAX, Event, Run, Session
from pytest_asm_contract._contract.query import ArtifactMeta
from reference_stores.sql.schema import COLUMNS

try:
    import orjson as _orjson
except ImportError:  # optional speed-up; the standard encoder below writes the same values
    _orjson = None  # type: ignore[assignment]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact; no UTC conversion)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _unencodable(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


#: CPython's C encoder, built once (``json.dumps`` builds one per call). No cycle check: the
#: values are validated JSON trees. Same output as ``_ENCODER.encode``.
_C_ENCODE: Any = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None,
        _unencodable,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        False,
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def dump_json(value: Any) -> str:
    """``value``, a validated JSON tree (str keys, finite floats, 64-bit ints), as ASCII JSON.

    orjson, when installed (the ``sql`` extra brings it), writes it about seven times faster.
    Its output is used only when it is ASCII; text with other characters, or with a lone
    surrogate (which orjson refuses), goes through the standard encoder's escapes. Either way
    ``json.loads`` gives back the same values (orjson writes floats as their shortest
    round-tripping form too, sometimes spelled differently: ``1e16`` for ``1e+16``).
    """
    if not value and isinstance(value, dict):
        return "{}"  # most metadata objects are empty
    if _orjson is not None:
        try:
            fast: bytes = _orjson.dumps(value)
        except _orjson.JSONEncodeError:
            pass
        else:
            if fast.isascii():
                return fast.decode("ascii")
    if _C_ENCODE is not None and isinstance(value, dict | list):
        return "".join(_C_ENCODE(value, 0))
    return _ENCODER.encode(value)


def load_json(text: str) -> Any:
    return json.loads(text)


def _opt_json(value: Any) -> str | None:
    return None if value is None else dump_json(value)


def _opt_load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _opt_micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _opt_datetime(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Limits:
    """What one backend can hold in a plain string or float column."""

    def __init__(self, dialect_name: str) -> None:
        self.dialect_name = dialect_name
        #: PostgreSQL text cannot contain U+0000.
        self.nul_allowed = dialect_name != "postgresql"

    def problem(self, value: str) -> str | None:
        """Why ``value`` cannot be stored as it is, or None."""
        if not self.nul_allowed and "\x00" in value:
            return f"{self.dialect_name} cannot store the NUL character (U+0000) in text"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "the string is not valid Unicode text (it holds a lone surrogate)"
        return None

    def storable(self, value: str | None) -> bool:
        return value is None or self.problem(value) is None

    def check(self, fields: Iterable[tuple[str, str | None]]) -> None:
        for name, value in fields:
            if value is None:
                continue
            problem = self.problem(value)
            if problem is not None:
                raise validation_error(
                    f"{name} {value!r:.80} cannot be stored: {problem}",
                    field=name,
                    backend=self.dialect_name,
                )

    def check_session(self, session: Session) -> None:
        self.check(
            (
                ("session.id", session.id),
                ("session.agent_id", session.agent_id),
                ("session.parent_session_id", session.parent_session_id),
            )
        )

    def check_artifact_meta(self, meta: ArtifactMeta) -> None:
        self.check((f"meta.{name}", getattr(meta, name)) for name in ARTIFACT_TEXT)
        if meta.byte_size is not None and meta.byte_size > INT64_MAX:
            raise validation_error(
                f"meta.byte_size {meta.byte_size} cannot be stored: above 2**63 - 1",
                field="meta.byte_size",
                backend=self.dialect_name,
            )

    def check_run(self, run: Run) -> None:
        self.check(
            (
                ("run.id", run.id),
                ("run.session_id", run.session_id),
                ("run.provider", run.provider),
            )
        )

    def check_events(self, events: Sequence[Event]) -> None:
        # Almost every batch is fine: one encode of all its strings tells, and only a batch
        # that fails it is checked field by field, for the message.
        text = "".join(
            f"{e.id}{e.session_id}{e.run_id or ''}{e.provider or ''}{e.correlation_id or ''}"
            for e in events
        )
        if (self.nul_allowed or "\x00" not in text) and _encodes(text):
            return
        for index, event in enumerate(events):
            try:
                self.check(
                    (
                        ("event.id", event.id),
                        ("event.session_id", event.session_id),
                        ("event.run_id", event.run_id),
                        ("event.provider", event.provider),
                        ("event.correlation_id", event.correlation_id),
                    )
                )
            except Exception as error:
                details = getattr(error, "details", None)
                if isinstance(details, dict):
                    details.setdefault("index", index)
                raise


def session_row(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "agent_id": session.agent_id,
        "status": session.status.value,
        "parent_session_id": session.parent_session_id,
        "metadata": dump_json(session.metadata),
        "context": dump_json(session.context),
        "tags": dump_json(session.tags),
        "created_at": to_micros(session.created_at),
        "updated_at": to_micros(session.updated_at),
        "deleted_at": _opt_micros(session.deleted_at),
    }


def session_from_row(row: Mapping[Any, Any]) -> Session:
    return Session.model_validate(
        {
            "id": row["id"],
            "agent_id": row["agent_id"],
            "status": row["status"],
            "parent_session_id": row["parent_session_id"],
            "metadata": load_json(row["metadata"]),
            "context": load_json(row["context"]),
            "tags": load_json(row["tags"]),
            "created_at": from_micros(row["created_at"]),
            "updated_at": from_micros(row["updated_at"]),
            "deleted_at": _opt_datetime(row["deleted_at"]),
        }
    )


def run_row(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "session_id": run.session_id,
        "status": run.status.value,
        "input": _opt_json(run.input),
        "output": _opt_json(run.output),
        "error": _opt_json(run.error),
        "metadata": dump_json(run.metadata),
        "turn_count": run.turn_count,
        "token_usage": dump_json(run.token_usage),
        "cost_usd": None if run.cost_usd is None else repr(run.cost_usd),
        "started_at": to_micros(run.started_at),
        "ended_at": _opt_micros(run.ended_at),
        "provider": run.provider,
        "provider_metadata": dump_json(run.provider_metadata),
    }


def run_from_row(row: Mapping[Any, Any]) -> Run:
    cost = row["cost_usd"]
    return Run.model_validate(
        {
            "id": row["id"],
            "session_id": row["session_id"],
            "status": row["status"],
            "input": _opt_load(row["input"]),
            "output": _opt_load(row["output"]),
            "error": _opt_load(row["error"]),
            "metadata": load_json(row["metadata"]),
            "turn_count": int(row["turn_count"]),
            "token_usage": load_json(row["token_usage"]),
            "cost_usd": None if cost is None else float(cost),  # the repr: exact
            "started_at": from_micros(row["started_at"]),
            "ended_at": _opt_datetime(row["ended_at"]),
            "provider": row["provider"],
            "provider_metadata": load_json(row["provider_metadata"]),
        }
    )


#: The order of ``event_values``: the events table's columns, as the schema lists them. The
#: store's INSERT of events takes its parameters this way.
EVENT_COLUMNS = COLUMNS["events"]


def event_values(event: Event, sequence_number: int) -> tuple[Any, ...]:
    """The event's row as a tuple in ``EVENT_COLUMNS`` order (no dict per row on the hot path)."""
    return (
        event.id,
        event.session_id,
        sequence_number,
        event.type._value_,  # the plain attribute: ``.value`` is a slower descriptor
        to_micros(event.timestamp),
        event.run_id,
        dump_json(event.data),
        dump_json(event.metadata),
        event.schema_version,
        event.provider,
        event.correlation_id,
    )


def event_row(event: Event, sequence_number: int) -> dict[str, Any]:
    return dict(zip(EVENT_COLUMNS, event_values(event, sequence_number), strict=True))


def event_from_row(row: Mapping[Any, Any]) -> Event:
    return Event.model_validate(
        {
            "id": row["id"],
            "type": row["type"],
            "timestamp": from_micros(row["timestamp"]),
            "session_id": row["session_id"],
            "run_id": row["run_id"],
            "data": load_json(row["data"]),
            "metadata": load_json(row["metadata"]),
            "sequence_number": int(row["sequence_number"]),
            "schema_version": int(row["schema_version"]),
            "provider": row["provider"],
            "correlation_id": row["correlation_id"],
        }
    )


def artifact_meta_row(meta: ArtifactMeta) -> dict[str, Any]:
    return {
        "id": meta.id,
        "session_id": meta.session_id,
        "run_id": meta.run_id,
        "key": meta.key,
        "content_type": meta.content_type,
        "byte_size": meta.byte_size,
        "checksum_sha256": meta.checksum_sha256,
        "storage_backend": meta.storage_backend,
        "storage_ref": meta.storage_ref,
        "metadata": dump_json(meta.metadata),
        "created_at": to_micros(meta.created_at),
        "deleted_at": _opt_micros(meta.deleted_at),
    }


def artifact_meta_from_row(row: Mapping[Any, Any]) -> ArtifactMeta:
    size = row["byte_size"]
    return ArtifactMeta.model_validate(
        {
            **{name: row[name] for name in ARTIFACT_TEXT},
            "byte_size": None if size is None else int(size),
            "metadata": load_json(row["metadata"]),
            "created_at": from_micros(row["created_at"]),
            "deleted_at": _opt_datetime(row["deleted_at"]),
        }
    )


#: The registry's columns read back as they are.
ARTIFACT_TEXT = (
    "id",
    "session_id",
    "run_id",
    "key",
    "content_type",
    "checksum_sha256",
    "storage_backend",
    "storage_ref",
)
