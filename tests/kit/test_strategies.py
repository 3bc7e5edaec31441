"""The public strategies, the contract model and reproducer rendering, tested directly."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from pytest_asm_contract._contract.errors import ErrorCode
from pytest_asm_contract._contract.model import (
    INT64_MAX,
    INT64_MIN,
    Event,
    EventType,
    ExecutionResult,
    Run,
    Session,
)
from pytest_asm_contract._machine import repro
from pytest_asm_contract._machine.oracle import (
    FOREIGN,
    KNOWN,
    NEW,
    REPEAT,
    ContractModel,
    confusable,
    contains_nul,
    exact_difference,
    flush_problems,
    validated,
)
from pytest_asm_contract.strategies import (
    NFC_NFD_PAIRS,
    deep_json,
    events,
    execution_results,
    ids,
    int64s,
    invalid_batches,
    invalid_events,
    invalid_json_values,
    invalid_runs,
    invalid_sessions,
    json_values,
    mismatched_flush_payloads,
    near_misses,
    non_models,
    runs,
    sessions,
    timestamps,
)

SOME = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
FIND = settings(max_examples=1000, deadline=None, database=None, phases=[Phase.generate])


def roundtrip(value: Any) -> Any:
    """Evaluate the rendered source of ``value`` as a reproduction would."""
    namespace: dict[str, Any] = {}
    exec(repro.IMPORTS, namespace)
    return eval(repro.render(value), namespace)


# -- valid values ---------------------------------------------------------------------------------
@SOME
@given(st.one_of(sessions(), runs(), events(), execution_results()))
def test_valid_strategies_produce_valid_models(value: Any) -> None:
    checked = validated(type(value), value)
    assert checked is not None
    assert exact_difference(value, checked) is None


@SOME
@given(st.one_of(sessions(), runs(), events(), execution_results()))
def test_rendered_models_rebuild_exactly(value: Any) -> None:
    assert exact_difference(value, roundtrip(value)) is None


@SOME
@given(execution_results())
def test_execution_results_hold_together(result: ExecutionResult) -> None:
    assert result.run.session_id == result.session.id
    assert all(e.session_id == result.session.id for e in result.events)
    assert all(e.run_id in (None, result.run.id) for e in result.events)
    assert flush_problems(result)[0] == set()


@pytest.mark.parametrize(
    ("description", "strategy", "condition"),
    [
        ("an id with a NUL", ids(), lambda s: "\x00" in s),
        ("an id with a LIKE wildcard", ids(), lambda s: "%" in s or "_" in s),
        ("an id with a slash", ids(), lambda s: "/" in s),
        ("an id with a quote", ids(), lambda s: "'" in s or '"' in s),
        ("an id of 255 characters", ids(), lambda s: len(s) == 255),
        (
            "an id in NFD form",
            ids(),
            lambda s: s != unicodedata.normalize("NFC", s),
        ),
        ("the largest 64-bit int", int64s(), lambda n: n == INT64_MAX),
        ("the smallest 64-bit int", int64s(), lambda n: n == INT64_MIN),
        ("a non-UTC offset", timestamps(), lambda t: t.utcoffset() != timedelta(0)),
        ("a microsecond timestamp", timestamps(), lambda t: t.microsecond % 1000 != 0),
        ("nested JSON", json_values(), lambda v: isinstance(v, dict | list) and bool(v)),
        ("deep JSON", deep_json(), lambda v: _depth(v) >= 16),
        (
            "a caller-supplied number",
            events(hostile=False),
            lambda e: e.sequence_number is not None,
        ),
    ],
)
def test_hostile_values_are_generated(description: str, strategy: Any, condition: Any) -> None:
    find(strategy, condition, settings=FIND)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def test_nfc_nfd_pairs_differ_but_look_alike() -> None:
    for nfc, nfd in NFC_NFD_PAIRS:
        assert nfc != nfd
        assert unicodedata.normalize("NFC", nfd) == nfc


@SOME
@given(ids())
def test_near_misses_are_other_valid_ids(value: str) -> None:
    for twin in near_misses(value):
        assert twin != value
        assert 0 < len(twin) <= 255


def test_near_misses_include_confusable_ids() -> None:
    twins = near_misses("ses-1")
    assert "SES-1" in twins
    assert any(confusable("ses-1", twin) for twin in twins if "_" in twin or "%" in twin)


# -- invalid values -------------------------------------------------------------------------------
@SOME
@given(invalid_events())
def test_invalid_events_are_invalid(event: Event) -> None:
    assert isinstance(event, Event)
    assert validated(Event, event) is None


@SOME
@given(st.one_of(invalid_sessions(), invalid_runs()))
def test_invalid_sessions_and_runs_are_invalid(value: Session | Run) -> None:
    assert validated(type(value), value) is None


@SOME
@given(invalid_json_values())
def test_invalid_json_is_rejected_by_the_model(value: Any) -> None:
    raw = Event.model_construct(type=EventType.MESSAGE_SENT, session_id="s", data={"x": value})
    assert validated(Event, raw) is None


@SOME
@given(non_models())
def test_non_models_are_not_events(value: Any) -> None:
    assert not ContractModel().append_one(value).succeeds


@SOME
@given(invalid_batches())
def test_invalid_batches_must_be_rejected_whole(batch: Any) -> None:
    outcome = ContractModel().append_batch(batch)
    assert outcome.must_fail
    assert outcome.errors == {ErrorCode.VALIDATION_ERROR}


@SOME
@given(mismatched_flush_payloads())
def test_mismatched_flush_payloads_are_mismatches(payload: ExecutionResult) -> None:
    problems, _ = flush_problems(payload)
    assert problems
    assert problems <= {ErrorCode.SESSION_MISMATCH, ErrorCode.RUN_MISMATCH}


def _comparable(value: Any) -> Any:
    """``value`` with its sets sorted: a set's repr follows the order its elements went in (when
    their hashes share a slot), and repr, not ==, is compared because NaN != NaN."""
    if isinstance(value, set | frozenset):
        return ("set", sorted(map(repr, value)))
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_comparable(item) for item in value)
    return value


@SOME
@given(invalid_events())
def test_rendered_invalid_events_rebuild_the_same_fields(event: Event) -> None:
    assert repr(_comparable(roundtrip(event).__dict__)) == repr(_comparable(event.__dict__))


# -- the contract model ---------------------------------------------------------------------------
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def an_event(event_id: str, session_id: str = "s", **fields: Any) -> Event:
    fields.setdefault("timestamp", T0)
    return Event(id=event_id, type=EventType.MESSAGE_SENT, session_id=session_id, **fields)


def stored(model: ContractModel, outcome: Any) -> ContractModel:
    assert outcome.succeeds
    return outcome.after  # type: ignore[no-any-return]


def test_model_numbers_per_session_and_ignores_supplied_numbers() -> None:
    model = ContractModel()
    outcome = model.append_batch(
        [an_event("a"), an_event("b", "t"), an_event("c", sequence_number=9)]
    )
    assert [e.sequence_number for e in outcome.result] == [1, 1, 2]
    assert outcome.kinds == (NEW, NEW, NEW)


def test_model_repeats_and_known_ids_return_the_first_copy() -> None:
    model = stored(ContractModel(), ContractModel().append_one(an_event("a", data={"v": 1})))
    outcome = model.append_batch([an_event("b"), an_event("b", data={"v": 2}), an_event("a")])
    assert outcome.kinds == (NEW, REPEAT, KNOWN)
    assert outcome.result[1] == outcome.result[0]
    assert outcome.result[2].data == {"v": 1}
    assert outcome.errors == set()


def test_model_allows_already_exists_for_an_id_of_another_session() -> None:
    model = stored(ContractModel(), ContractModel().append_one(an_event("a", "s")))
    outcome = model.append_one(an_event("a", "t"))
    assert outcome.kinds == (FOREIGN,)
    assert outcome.succeeds and outcome.result.session_id == "s"
    assert outcome.errors == {ErrorCode.ALREADY_EXISTS}


def test_model_allows_validation_error_for_nul() -> None:
    outcome = ContractModel().append_one(an_event("a", data={"k": "x\x00y"}))
    assert outcome.succeeds
    assert ErrorCode.VALIDATION_ERROR in outcome.errors


def test_model_delete_cascades_and_restarts_numbering() -> None:
    model = stored(ContractModel(), ContractModel().append_batch([an_event("a"), an_event("b")]))
    model = stored(model, model.save_run(Run(session_id="s", id="r")))
    model = stored(model, model.delete_session("s"))
    assert model.latest_sequence("s") == 0
    assert model.get_run("r").must_fail
    again = model.append_one(an_event("a"))
    assert again.result.sequence_number == 1 and again.kinds == (NEW,)


def test_model_event_filters() -> None:
    batch = [an_event(f"e{i}", timestamp=T0 + timedelta(seconds=i)) for i in range(5)]
    model = stored(ContractModel(), ContractModel().append_batch(batch))
    since = (T0 + timedelta(seconds=2)).astimezone(timezone(timedelta(hours=5)))
    assert [e.id for e in model.get_events("s", since=since).result] == ["e2", "e3", "e4"]
    assert [e.id for e in model.get_events("s", after=1, limit=2).result] == ["e1", "e2"]
    assert [e.id for e in model.get_events("s", after=1, before=3).result] == ["e1"]
    assert model.get_events("s", limit=0).result == []
    for bad in ({"limit": -1}, {"type": "nope"}, {"since": datetime(2026, 1, 1)}, {"after": True}):
        assert model.get_events("s", **bad).must_fail


def test_model_flush_problems_allow_every_applicable_code() -> None:
    session = Session(id="s", agent_id="a")
    run = Run(id="r", session_id="s")
    stray = an_event("x", "other", run_id="elsewhere")
    problems, _ = flush_problems(ExecutionResult(session=session, run=run, events=[stray]))
    assert problems == {ErrorCode.SESSION_MISMATCH, ErrorCode.RUN_MISMATCH}
    assert flush_problems({"session": session, "run": run})[0] == {ErrorCode.VALIDATION_ERROR}
    assert flush_problems(None)[0] == {ErrorCode.VALIDATION_ERROR}


def test_model_active_run_is_the_latest_running_one() -> None:
    model = ContractModel()
    for run_id, second in (("a", 1), ("c", 2), ("b", 2)):
        model = stored(
            model,
            model.save_run(
                Run(
                    id=run_id,
                    session_id="s",
                    status="running",
                    started_at=T0 + timedelta(seconds=second),
                )
            ),
        )
    assert model.active_run("s").id == "c"  # type: ignore[union-attr]


# -- comparisons ----------------------------------------------------------------------------------
def test_exact_difference_is_stricter_than_equality() -> None:
    assert exact_difference({"k": 1}, {"k": 1.0}) is not None
    assert exact_difference({"k": 1}, {"k": True}) is not None
    assert exact_difference({"a": 1, "b": 2}, {"b": 2, "a": 1}) is None
    utc = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert exact_difference(utc, utc.astimezone(timezone(timedelta(hours=2)))) is not None
    event = an_event("a", data={"n": 2**53 + 1})
    assert exact_difference(event, event.model_copy(update={"data": {"n": float(2**53 + 1)}}))


def test_contains_nul_looks_everywhere() -> None:
    assert contains_nul(an_event("a", data={"k\x00": 1}))
    assert contains_nul({"nested": ["x\x00"]})


def test_confusable_ids() -> None:
    assert confusable("abc", "ABC")
    assert confusable("\u00e9", "e\u0301")
    assert confusable("ab_", "abc")
    assert confusable("a%", "abc")
    assert not confusable("abc", "abd")
