"""JSON text of the SQL store: ASCII, and the same values back, with orjson and without it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from pytest_asm_contract import strategies
from pytest_asm_contract._contract.model import INT64_MAX, INT64_MIN
from pytest_asm_contract._machine.oracle import exact_difference
from reference_stores.sql import codec

TRICKY: list[Any] = [
    {"i": 1, "role": "assistant", "nested": {"list": [1, 2.5, None, True, "x"]}},
    {"big": INT64_MAX, "small": INT64_MIN, "float": 1e16, "tiny": 5e-324, "neg_zero": -0.0},
    {"unicode": "café ☕ 𝄞", "nul": "a\x00b", "controls": "\t\n\x1f\x7f"},
    {"surrogate": "\ud800 alone"},  # orjson refuses it: the standard encoder's escape is kept
    {"": {"": []}, 'quote"and\\slash/': "%_'"},
    [],
    {},
]

WITH_AND_WITHOUT_ORJSON = pytest.mark.parametrize(
    "use_orjson", [True, False], ids=["orjson", "standard"]
)


@pytest.fixture
def encoder(use_orjson: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    if use_orjson:
        if codec._orjson is None:
            pytest.skip("orjson is not installed (pip install orjson, or the sql extra)")
    else:
        monkeypatch.setattr(codec, "_orjson", None)
    return codec.dump_json


def _check(dump: Any, value: Any) -> None:
    text = dump(value)
    assert isinstance(text, str) and text.isascii(), text
    assert exact_difference(value, json.loads(text)) is None, text


@WITH_AND_WITHOUT_ORJSON
@pytest.mark.parametrize("value", TRICKY, ids=range(len(TRICKY)))
def test_tricky_values_come_back_exactly(encoder: Any, value: Any) -> None:
    _check(encoder, value)


@WITH_AND_WITHOUT_ORJSON
# The fixture only picks the encoder: sharing it between examples is what we want.
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=strategies.json_objects())
def test_json_objects_come_back_exactly(encoder: Any, value: Any) -> None:
    _check(encoder, value)


def test_without_orjson_the_text_is_the_standard_encoders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec, "_orjson", None)
    for value in TRICKY:
        expected = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        assert codec.dump_json(value) == expected
