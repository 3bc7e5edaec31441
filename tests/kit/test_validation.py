"""The input helpers stores share: ``as_events`` validates a whole batch in one call."""

from __future__ import annotations

import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, EventType
from pytest_asm_contract._contract.validation import as_events


def _batch(count: int) -> list[Event]:
    return [Event(type=EventType.MESSAGE_SENT, session_id="s", data={"i": i}) for i in range(count)]


def test_a_valid_batch_comes_back_as_equal_new_models() -> None:
    given = _batch(3)
    checked = as_events(given)
    assert checked == given
    assert not any(c is g or c.data is g.data for c, g in zip(checked, given, strict=True))


def test_any_iterable_of_events_is_accepted() -> None:
    given = _batch(2)
    assert as_events(e for e in given) == given


@pytest.mark.parametrize("position", [0, 2, 4])
def test_the_first_invalid_element_is_named_with_its_index(position: int) -> None:
    batch: list[object] = list(_batch(5))
    batch[position] = Event.model_construct(type="no-such-type", session_id="s")
    with pytest.raises(StoreError) as raised:
        as_events(batch)
    assert raised.value.code == ErrorCode.VALIDATION_ERROR
    assert raised.value.details["index"] == position
    assert f"event at index {position}" in str(raised.value)


def test_mutated_json_inside_a_frozen_event_is_rejected() -> None:
    batch = _batch(2)
    batch[1].data["bad"] = float("nan")  # frozen models still hold mutable dicts
    with pytest.raises(StoreError) as raised:
        as_events(batch)
    assert raised.value.details["index"] == 1


def test_a_non_event_is_named_with_its_index() -> None:
    with pytest.raises(StoreError) as raised:
        as_events([*_batch(1), {"type": "message_sent"}])
    assert raised.value.details == {"expected": "Event", "got": "dict", "index": 1}
