"""DATA-2: a value the backend cannot hold is rejected whole, never stored altered.

Each case writes one record carrying a value that some backend cannot hold as it is (a NUL
character, a lone surrogate, a negative zero, a very long text, characters outside the BMP). A
store passes when it either

* stores it exactly: every read path returns the value unchanged (same type, same sign of zero,
  same characters), or
* rejects it with ``validation_error`` and stores nothing of the write: no record, no event of
  the batch, no consumed sequence number, no session or run of the flush.

Silently stripping, truncating or normalising the value fails, and so does a storage error (the
store must check what its backend cannot hold before writing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from pytest_asm_contract import rule
from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event, ExecutionResult, Run, Session
from pytest_asm_contract.suite._builders import a_run, a_session, an_event, at, expect_error

SESSION_ID = "ses-limits"
RUN_ID = "run-limits"
LONG_TEXT = ("long text \u00e9\u4e2d\U0001f600 " * 8000)[:100_000]

#: name -> the hostile value
VALUES: dict[str, Any] = {
    "nul": "before\x00after",
    "only-nul": "\x00",
    "lone-surrogate": "high\ud800low",
    "astral-plane": "\U0001f600\U00010348",
    "long-text": LONG_TEXT,
}


def _differences(expected: Any, actual: Any, path: str) -> list[str]:
    """Where ``actual`` differs from ``expected``: types, values, float sign, characters."""
    if isinstance(expected, BaseModel):
        if type(actual) is not type(expected):
            return [f"{path}: got type {type(actual).__name__}"]
        found: list[str] = []
        for name in type(expected).model_fields:
            found += _differences(getattr(expected, name), getattr(actual, name), f"{path}.{name}")
        return found
    if isinstance(expected, datetime) or type(expected) is not type(actual):
        if expected != actual or type(expected) is not type(actual):
            return [f"{path}: expected {expected!r:.60}, got {actual!r:.60}"]
        return []
    if isinstance(expected, dict):
        if expected.keys() != actual.keys():
            return [f"{path}: keys {sorted(actual)!r:.120} instead of {sorted(expected)!r:.120}"]
        return [d for k in expected for d in _differences(expected[k], actual[k], f"{path}[{k!r}]")]
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items instead of {len(expected)}"]
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in _differences(e, a, f"{path}[{i}]")
        ]
    if isinstance(expected, float) and math.copysign(1, expected) != math.copysign(1, actual):
        return [f"{path}: expected {expected!r}, got {actual!r} (the sign of zero changed)"]
    if expected != actual:
        return [f"{path}: expected {expected!r:.60}, got {actual!r:.60}"]
    return []


def _assert_exact(expected: BaseModel, actual: Any, how: str) -> None:
    found = _differences(expected, actual, type(expected).__name__)
    assert not found, (
        f"the store accepted the value but {how} returns it changed (DATA-2: reject it with "
        "validation_error instead):\n  " + "\n  ".join(found[:8])
    )


def _write(call: Callable[[], Any]) -> StoreError | None:
    """Run a write; None if it succeeded, the error if it was rejected with validation_error."""
    try:
        call()
    except StoreError as error:
        if error.code is not ErrorCode.VALIDATION_ERROR:
            pytest.fail(
                f"a value the backend may not hold was refused with {error.code.value} "
                f"({error.message}); DATA-2 wants validation_error (check before writing)",
                pytrace=False,
            )
        return error
    except Exception as error:
        pytest.fail(
            f"a raw {type(error).__module__}.{type(error).__name__} escaped the store: {error} "
            "(DATA-2: reject the value with validation_error)",
            pytrace=False,
        )
    return None


def _lookup_absent(call: Callable[[], Any], *codes: ErrorCode) -> None:
    """Reading back a rejected record: not found, or validation_error for an id it cannot hold."""
    with expect_error(*codes, ErrorCode.VALIDATION_ERROR):
        found = call()
        pytest.fail(f"a rejected write left this stored: {found!r}", pytrace=False)


def _empty(call: Callable[[], Any]) -> None:
    """A list lookup of a rejected record: [] (or validation_error for an unusable id)."""
    try:
        found = call()
    except StoreError as error:
        assert error.code is ErrorCode.VALIDATION_ERROR, f"lookup failed: {error}"
        return
    assert found in ([], 0, None), f"a rejected write left {found!r:.200}"


# -- where the hostile value goes: field -> a model carrying the value there --------------------
SESSION_FIELDS: dict[str, Callable[[str], Session]] = {
    "session.id": lambda v: a_session(id=f"ses-{v}"[:255]),
    "session.agent_id": lambda v: a_session(agent_id=f"agent-{v}"[:255]),
    "session.parent_session_id": lambda v: a_session(parent_session_id=f"ses-{v}"[:255]),
    "session.tags": lambda v: a_session(tags=["ok", v]),
    "session.metadata-value": lambda v: a_session(metadata={"text": v}),
    "session.metadata-key": lambda v: a_session(metadata={v: 1}),
}
RUN_FIELDS: dict[str, Callable[[str], Run]] = {
    "run.id": lambda v: a_run(SESSION_ID, id=f"run-{v}"[:255]),
    "run.provider": lambda v: a_run(SESSION_ID, provider=v),
    "run.output": lambda v: a_run(SESSION_ID, output={"text": [v]}),
}
EVENT_FIELDS: dict[str, Callable[[str], Event]] = {
    "event.id": lambda v: an_event(SESSION_ID, id=f"evt-{v}"[:255]),
    "event.run_id": lambda v: an_event(SESSION_ID, run=f"run-{v}"[:255]),
    "event.provider": lambda v: an_event(SESSION_ID, provider=v),
    "event.correlation_id": lambda v: an_event(SESSION_ID, correlation_id=v),
    "event.data-value": lambda v: an_event(SESSION_ID, data={"text": v, "n": 1}),
    "event.data-key": lambda v: an_event(SESSION_ID, data={v: v}),
    "event.metadata": lambda v: an_event(SESSION_ID, metadata={"nested": [{"t": v}]}),
}


def _params(fields: Mapping[str, Callable[[str], BaseModel]]) -> list[Any]:
    """Every (value, field) pair the model accepts (ids, for one, refuse lone surrogates)."""
    params = []
    for value_name, value in VALUES.items():
        for field, build in fields.items():
            try:
                build(value)
            except ValidationError:
                continue
            params.append(pytest.param(value_name, field, id=f"{field}-{value_name}"))
    return params


class TestBackendLimits:
    @rule("DATA-2")
    @pytest.mark.parametrize(("value", "field"), _params(SESSION_FIELDS))
    def test_session_value_kept_exactly_or_rejected(
        self, asm_store: Any, value: str, field: str
    ) -> None:
        session = SESSION_FIELDS[field](VALUES[value])
        if _write(lambda: asm_store.save_session(session)) is None:
            _assert_exact(session, asm_store.get_session(session.id), "get_session")
            _assert_exact(session, asm_store.list_sessions()[0], "list_sessions")
            return
        assert asm_store.list_sessions() == [], "a rejected session was stored"
        _lookup_absent(lambda: asm_store.get_session(session.id), ErrorCode.SESSION_NOT_FOUND)

    @rule("DATA-2")
    @pytest.mark.parametrize(("value", "field"), _params(RUN_FIELDS))
    def test_run_value_kept_exactly_or_rejected(
        self, asm_store: Any, value: str, field: str
    ) -> None:
        asm_store.save_session(a_session(id=SESSION_ID))
        run = RUN_FIELDS[field](VALUES[value])
        if _write(lambda: asm_store.save_run(run)) is None:
            _assert_exact(run, asm_store.get_run(run.id), "get_run")
            _assert_exact(run, asm_store.list_runs(SESSION_ID)[0], "list_runs")
            return
        assert asm_store.list_runs(SESSION_ID) == [], "a rejected run was stored"
        _lookup_absent(lambda: asm_store.get_run(run.id), ErrorCode.RUN_NOT_FOUND)

    @rule("DATA-2")
    @pytest.mark.parametrize(("value", "field"), _params(EVENT_FIELDS))
    def test_event_value_kept_exactly_or_batch_rejected(
        self, asm_store: Any, value: str, field: str
    ) -> None:
        asm_store.save_session(a_session(id=SESSION_ID))
        hostile = EVENT_FIELDS[field](VALUES[value])
        plain = an_event(SESSION_ID, id="evt-plain", timestamp=at(1))
        if _write(lambda: asm_store.append_events([plain, hostile])) is None:
            stored = asm_store.get_events(SESSION_ID)
            assert len(stored) == 2, f"a batch of 2 left {len(stored)} events"
            _assert_exact(hostile.with_sequence(2), stored[1], "get_events")
            return
        assert asm_store.get_events(SESSION_ID) == [], "part of a rejected batch was stored"
        assert asm_store.get_latest_sequence(SESSION_ID) == 0, "a rejected batch used numbers"
        _empty(lambda: asm_store.get_events(hostile.session_id))

    # "Stores nothing" needs the flush to be one transaction, which FLUSH-3's injected failures
    # check first: a torn flush is reported there, not as a backend limit.
    @rule("DATA-2", "FLUSH-3")
    @pytest.mark.parametrize("value", list(VALUES))
    def test_flush_with_an_unholdable_event_stores_nothing(
        self, asm_store: Any, value: str
    ) -> None:
        session = a_session(id=SESSION_ID)
        run = a_run(session, id=RUN_ID)
        events = [
            an_event(session, run, id="evt-flush-plain"),
            an_event(session, run, data={"text": VALUES[value]}, provider=VALUES[value]),
        ]
        result = ExecutionResult(session=session, run=run, events=events)
        if _write(lambda: asm_store.flush(result)) is None:
            stored = asm_store.get_events(SESSION_ID)
            for index, event in enumerate(events):
                _assert_exact(event.with_sequence(index + 1), stored[index], "get_events")
            return
        _lookup_absent(lambda: asm_store.get_session(SESSION_ID), ErrorCode.SESSION_NOT_FOUND)
        _lookup_absent(lambda: asm_store.get_run(RUN_ID), ErrorCode.RUN_NOT_FOUND)
        assert asm_store.get_events(SESSION_ID) == [], "a rejected flush stored events"

    @rule("DATA-2")
    @pytest.mark.parametrize("where", ["run.cost_usd", "event.data"])
    def test_negative_zero_keeps_its_sign_or_is_rejected(self, asm_store: Any, where: str) -> None:
        asm_store.save_session(a_session(id=SESSION_ID))
        if where == "run.cost_usd":
            run = a_run(SESSION_ID, cost_usd=-0.0)
            if _write(lambda: asm_store.save_run(run)) is None:
                _assert_exact(run, asm_store.get_run(run.id), "get_run")
            else:
                assert asm_store.list_runs(SESSION_ID) == []
            return
        event = an_event(SESSION_ID, data={"zero": -0.0, "list": [-0.0, 0.0]})
        if _write(lambda: asm_store.append_event(event)) is None:
            _assert_exact(event.with_sequence(1), asm_store.get_events(SESSION_ID)[0], "get_events")
        else:
            assert asm_store.get_events(SESSION_ID) == []


__all__ = ["TestBackendLimits"]
