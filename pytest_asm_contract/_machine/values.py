"""Value helpers the contract model and the judging share: re-validating a value as a model,
finding NUL characters, comparing strictly (types and UTC offsets included), and telling which
ids a careless backend would confuse."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def plain(value: Any) -> Any:
    """A model as a tree of dicts (nested models too), so that validating it checks everything."""
    if isinstance(value, BaseModel):
        return {name: plain(item) for name, item in value.__dict__.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def validated(model: type[M], value: object) -> M | None:
    """``value`` re-validated as ``model`` (a fresh, independent copy), or None if it is invalid.

    Only instances of ``model`` count: the contract rejects anything else (dicts included).
    """
    if not isinstance(value, model):
        return None
    try:
        return model.model_validate(plain(value))
    except ValidationError:
        return None


def contains_nul(value: Any) -> bool:
    """Whether a NUL character occurs anywhere in ``value`` (strings, keys, nested models)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, BaseModel):
        try:
            # Fast path: JSON writes NUL as \u0000 (a literal backslash-u0000 in a string also
            # matches, which only makes an error branch acceptable where it need not be).
            return "\\u0000" in value.model_dump_json(warnings=False)
        except Exception:  # an unvalidated model that cannot serialise: walk it
            return any(contains_nul(item) for item in value.__dict__.values())
    if isinstance(value, Mapping):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


def difference_text(expected: Any, actual: Any) -> str:
    """How ``actual`` differs from ``expected``, for a failure message: the first differing
    field with both values whole, or both values whole when they are not records of one type.
    Never cut: the part that differs is the part a reader needs."""
    if isinstance(expected, BaseModel) and type(actual) is type(expected):
        found = exact_difference(expected, actual)
        if found:
            return found
    return f"expected {expected!r}, got {actual!r}"


def exact_difference(expected: Any, actual: Any, path: str = "") -> str | None:
    """Where ``actual`` differs from ``expected``, or None when they are exactly the same.

    Stricter than ``==``: ``True`` is not ``1``, ``1`` is not ``1.0`` and a datetime must keep its
    UTC offset. Dict key order is not significant; list order is.
    """
    label = path or "value"
    if isinstance(expected, BaseModel):
        if type(actual) is type(expected) and _same_json(expected, actual):
            return None
        if type(actual) is not type(expected):
            return f"{label}: expected a {type(expected).__name__}, got {type(actual).__name__}"
        for name in type(expected).model_fields:
            found = exact_difference(
                getattr(expected, name, None), getattr(actual, name, None), f"{path}.{name}"
            )
            if found:
                return found
        return None
    if isinstance(expected, bool) or expected is None or isinstance(actual, bool):
        same = type(expected) is type(actual) and expected == actual
    elif isinstance(expected, int | float):
        same = type(actual) is type(expected) and expected == actual
    elif isinstance(expected, datetime):
        same = (
            isinstance(actual, datetime)
            and actual.utcoffset() == expected.utcoffset()
            and actual == expected
        )
    elif isinstance(expected, str):
        same = isinstance(actual, str) and str(actual) == str(expected)
    elif isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{label}: expected a dict, got {_shown(actual)}"
        if set(expected) != set(actual):
            missing = [k for k in expected if k not in actual]
            extra = [k for k in actual if k not in expected]
            return f"{label}: keys differ (missing {missing!r}, unexpected {extra!r})"
        for key in expected:
            found = exact_difference(expected[key], actual[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    elif isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{label}: expected a list, got {_shown(actual)}"
        if len(actual) != len(expected):
            return f"{label}: expected {len(expected)} items, got {len(actual)}: {_shown(actual)}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found = exact_difference(want, got, f"{path}[{index}]")
            if found:
                return found
        return None
    else:
        same = expected == actual
    if same:
        return None
    if isinstance(expected, str) and isinstance(actual, str):
        return f"{label}: {_text_difference(expected, actual)}"
    return f"{label}: expected {_shown(expected)}, got {_shown(actual)}"


#: Values longer than this (the kit writes megabyte strings to probe limits) show their length,
#: their start and their end; shorter ones show whole.
LONG_REPR = 400
#: Characters shown either side of the first difference between two long strings.
CONTEXT = 40


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) <= LONG_REPR:
        return text
    return f"{text[:CONTEXT]}...{text[-CONTEXT:]} ({type(value).__name__}, {len(text)} characters)"


def _text_difference(expected: str, actual: str) -> str:
    """Two strings side by side, around their first difference when they are long."""
    if len(repr(expected)) + len(repr(actual)) <= LONG_REPR:
        return f"expected {expected!r}, got {actual!r}"
    at = next(
        (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
        min(len(expected), len(actual)),
    )
    start = max(0, at - CONTEXT)
    return (
        f"first difference at character {at} (lengths {len(expected)} and {len(actual)}): "
        f"expected ...{expected[start : at + CONTEXT]!r}..., "
        f"got ...{actual[start : at + CONTEXT]!r}..."
    )


def _same_json(a: BaseModel, b: BaseModel) -> bool:
    """Fast path: identical JSON means identical values, types and UTC offsets."""
    try:
        return a.model_dump_json(warnings=False) == b.model_dump_json(warnings=False)
    except Exception:  # unvalidated contents that cannot serialise: compare the slow way
        return False


def confusable(a: str, b: str) -> bool:
    """Whether two different ids are ones a careless backend might treat as the same (DATA-3)."""
    if a == b:
        return False

    def forms(s: str) -> set[str]:
        nfc = unicodedata.normalize("NFC", s)
        return {nfc.casefold(), nfc.strip().casefold()}

    if forms(a) & forms(b):
        return True
    # A LIKE pattern: '_' matches any one character, '%' any run of characters.
    for pattern, text in ((a, b), (b, a)):
        if ("%" in pattern or "_" in pattern) and _like(pattern, text):
            return True
    return False


def _like(pattern: str, text: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None
