"""The data model and errors match contract sections 1 and 2."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import (
    INT64_MAX,
    INT64_MIN,
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)


def event(**fields: object) -> Event:
    return Event.model_validate({"type": "message_sent", "session_id": "s", **fields})


def test_enumerations_have_the_contract_members() -> None:
    assert len(EventType) == 28
    assert [s.value for s in SessionStatus] == [
        "pending",
        "active",
        "paused",
        "completed",
        "failed",
        "cancelled",
    ]
    assert {s for s in RunStatus if s.terminal} == {
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.TIMEOUT,
    }


def test_defaults() -> None:
    session, run, evt = Session(agent_id="a"), Run(session_id="s"), event()
    assert session.id.startswith("ses_") and len(session.id) == 4 + 32
    assert run.id.startswith("run_") and evt.id.startswith("evt_")
    assert session.status is SessionStatus.PENDING and run.status is RunStatus.PENDING
    assert evt.sequence_number is None and evt.schema_version == 1
    assert evt.timestamp.tzinfo is UTC


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError):
        event().id = "other"  # type: ignore[misc]


def test_datetimes_are_aware_and_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    evt = event(timestamp=datetime(2026, 1, 1, 14, 0, 0, 5, tzinfo=plus_two))
    assert evt.timestamp == datetime(2026, 1, 1, 12, 0, 0, 5, tzinfo=UTC)
    assert evt.timestamp.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError):
        event(timestamp=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "value",
    [INT64_MAX + 1, INT64_MIN - 1, float("nan"), float("inf"), {1: "non-str key"}, object()],
    ids=["int-too-big", "int-too-small", "nan", "inf", "int-key", "object"],
)
def test_json_trees_reject_what_json_cannot_hold(value: object) -> None:
    with pytest.raises(ValidationError):
        event(data={"v": value})


@pytest.mark.parametrize(
    "value",
    [{"a", "b"}, frozenset({1}), (x for x in [1]), {"k": 1}.keys(), range(2)],
    ids=["set", "frozenset", "generator", "dict-keys", "range"],
)
def test_json_arrays_are_lists_or_tuples_never_unordered_collections(value: object) -> None:
    # A lax list would take these and pick an order (a set's differs from process to process).
    with pytest.raises(ValidationError):
        event(data={"v": [value]})
    with pytest.raises(ValidationError):
        Session(agent_id="a", tags=value)


def test_tuples_are_json_arrays_stored_as_lists() -> None:
    assert event(data={"v": (1, ("x", None))}).data == {"v": [1, ["x", None]]}
    assert Session(agent_id="a", tags=("b", "a")).tags == ["b", "a"]


def test_deep_json_validates_from_text_too() -> None:
    # Arrays nested 50 deep, as in DATA-1's payload: a union that tried both array branches at
    # every level would take twice as long per level (stores that re-validate JSON text hung).
    value: object = 1
    for level in range(50):
        value = {"k": value} if level % 2 else [value, (level,)]
    evt = event(data={"v": value})
    assert Event.model_validate_json(evt.model_dump_json()) == evt


def test_json_trees_keep_types_apart() -> None:
    data = {"b": True, "i": 1, "f": 1.0, "s": "1", "n": None, "edge": [INT64_MIN, INT64_MAX]}
    evt = event(data=data)
    assert evt.data == data
    assert [type(evt.data[k]) for k in ("b", "i", "f", "s")] == [bool, int, float, str]


def test_with_sequence_is_model_copy_with_the_number() -> None:
    original = event(data={"k": [1, 2.5, None]}, provider="p")
    numbered = original.with_sequence(7)
    expected = original.model_copy(update={"sequence_number": 7})
    assert numbered == expected and numbered.sequence_number == 7
    assert numbered.model_fields_set == expected.model_fields_set
    assert numbered.model_dump() == expected.model_dump()
    assert original.sequence_number is None  # the original is untouched
    with pytest.raises(ValidationError):
        numbered.sequence_number = 8  # type: ignore[misc]  # still frozen


@pytest.mark.parametrize("bad", ["", "x" * 256, 5])
def test_ids_are_non_empty_strings_up_to_255(bad: object) -> None:
    with pytest.raises(ValidationError):
        event(id=bad)
    assert event(id="x" * 255).id == "x" * 255


def test_run_constraints() -> None:
    with pytest.raises(ValidationError):
        Run(session_id="s", turn_count=-1)
    with pytest.raises(ValidationError):
        Run(session_id="s", cost_usd=float("nan"))


def test_execution_result_holds_models() -> None:
    session = Session(agent_id="a")
    result = ExecutionResult(session=session, run=Run(session_id=session.id), events=[])
    assert result.provider_metadata == {}


def test_store_error_carries_code_message_details_and_retryable() -> None:
    error = StoreError("timeout", "took too long", {"ms": 5})
    assert error.code is ErrorCode.TIMEOUT and error.retryable
    assert str(error) == "[timeout] took too long"
    assert not StoreError(ErrorCode.STORAGE_WRITE_FAILED, "x").retryable
    assert {c for c in ErrorCode if StoreError(c, "m").retryable} == {
        ErrorCode.STORAGE_CONNECTION_FAILED,
        ErrorCode.TIMEOUT,
    }
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.details) == (error.code, error.message, error.details)
    with pytest.raises(ValueError):
        StoreError("no_such_code", "m")
