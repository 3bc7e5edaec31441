"""Short explanations of failed ``==`` comparisons in the kit's checks, on CI as well.

On CI (the ``CI`` or ``BUILD_NUMBER`` variable set) pytest neither truncates an explanation nor
shortens a diff, so a check comparing the numbers of 100 racing appends as lists printed a
line-by-line diff of about a thousand lines ahead of the next failure. The kit's messages say
what broke; under them a comparison of lists, tuples, sets or dicts is explained by where they
first differ, with context, at the same length everywhere (other values are left to pytest).
``-vv`` restores pytest's full diff.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: How much of each side the first line shows.
SHORT = 80
#: Elements shown either side of the first difference.
CONTEXT = 3
#: How many keys or elements each "only in" line lists.
LISTED = 10
#: The most characters one element's repr takes in an explanation.
ELEMENT = 240


def explain(op: str, left: object, right: object) -> list[str] | None:
    """The explanation of ``left op right`` failing, or None to leave it to pytest."""
    if op != "==":
        return None
    summary = f"{saferepr(left, SHORT)} == {saferepr(right, SHORT)}"
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return [summary, *_sequences(left, right)]
    if isinstance(left, set | frozenset) and isinstance(right, set | frozenset):
        return [summary, *_only_in(sorted(left - right, key=repr), sorted(right - left, key=repr))]
    if isinstance(left, dict) and isinstance(right, dict):
        return [summary, *_dicts(left, right)]
    return None


def _sequences(left: Sequence[Any], right: Sequence[Any]) -> list[str]:
    first = next(
        (i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b),
        min(len(left), len(right)),
    )
    lines = []
    if len(left) != len(right):
        lines.append(f"lengths differ: {len(left)} on the left, {len(right)} on the right")
    if first < min(len(left), len(right)):
        differing = sum(a != b for a, b in zip(left, right, strict=False))
        lines.append(
            f"first difference at index {first}: {_element(left[first])} != "
            f"{_element(right[first])} ({differing} index(es) differ)"
        )
        left_fields, right_fields = _fields(left[first]), _fields(right[first])
        if left_fields is not None and right_fields is not None:
            lines += ["  " + line for line in _dicts(left_fields, right_fields)]
    else:
        shorter = "left" if len(left) < len(right) else "right"
        lines.append(f"the {shorter} side ends at index {first}; the other goes on")
    start, end = max(0, first - CONTEXT), first + CONTEXT + 1
    lines.append(f"left[{start}:{end}]:  {_elements(left[start:end])}")
    lines.append(f"right[{start}:{end}]: {_elements(right[start:end])}")
    return lines


def _dicts(left: dict[Any, Any], right: dict[Any, Any]) -> list[str]:
    lines = _only_in(
        sorted(left.keys() - right.keys(), key=repr), sorted(right.keys() - left.keys(), key=repr)
    )
    differing = [key for key in left if key in right and left[key] != right[key]]
    for key in differing[:LISTED]:
        lines.append(f"[{key!r}]: {_element(left[key])} != {_element(right[key])}")
    if len(differing) > LISTED:
        lines.append(f"... and {len(differing) - LISTED} more keys with different values")
    return lines


def _only_in(left_only: list[Any], right_only: list[Any]) -> list[str]:
    lines = []
    for side, extra in (("left", left_only), ("right", right_only)):
        if extra:
            more = f" and {len(extra) - LISTED} more" if len(extra) > LISTED else ""
            lines.append(f"only on the {side} ({len(extra)}): {_elements(extra[:LISTED])}{more}")
    return lines


def _fields(value: object) -> dict[Any, Any] | None:
    """A dict, or a model's fields (pydantic), to say which of them differ."""
    if isinstance(value, dict):
        return value
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else None


def saferepr(value: object, limit: int) -> str:
    """``repr(value)``, its middle cut out past ``limit`` characters; never raises."""
    try:
        text = repr(value)
    except Exception as error:  # a broken __repr__ must not hide the failure
        text = f"<{type(value).__name__}: repr raised {type(error).__name__}>"
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def _element(value: object) -> str:
    return saferepr(value, ELEMENT)


def _elements(values: Sequence[Any]) -> str:
    return "[" + ", ".join(_element(v) for v in values) + "]"


__all__ = ["explain"]
