"""A failed comparison in a check of the contract is explained in a few lines, on CI as well."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from pytest_asm_contract import Event, EventType
from pytest_asm_contract._plugin.explain import explain


def test_lists_are_explained_by_their_first_difference_with_context() -> None:
    numbers = [1, 2, 3, 4, 5, 5, 7, 8, 9, 10, 11, 12]
    lines = explain("==", numbers, list(range(1, 13)))
    assert lines is not None
    assert lines[1:] == [
        "first difference at index 5: 5 != 6 (1 index(es) differ)",
        "left[2:9]:  [3, 4, 5, 5, 7, 8, 9]",
        "right[2:9]: [3, 4, 5, 6, 7, 8, 9]",
    ]


def test_a_shorter_list_says_both_lengths() -> None:
    lines = explain("==", [1, 2, 3], [1, 2, 3, 4, 5])
    assert lines is not None
    assert "lengths differ: 3 on the left, 5 on the right" in lines
    assert "the left side ends at index 3; the other goes on" in lines


def test_models_in_a_list_name_the_field_that_differs_however_long_their_repr() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    stored = Event(id="e1", type=EventType.MESSAGE_SENT, session_id="s", timestamp=when)
    stored = stored.model_copy(update={"data": {"text": "x" * 500}, "sequence_number": 2})
    expected = stored.model_copy(update={"sequence_number": 1})
    lines = explain("==", [stored], [expected])
    assert lines is not None
    assert "  ['sequence_number']: 2 != 1" in lines
    assert all(len(line) < 600 for line in lines)


def test_dicts_and_sets_list_what_is_only_on_one_side() -> None:
    lines = explain("==", {"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 9, "d": 4})
    assert lines is not None
    assert lines[1:] == [
        "only on the left (1): ['c']",
        "only on the right (1): ['d']",
        "['b']: 2 != 9",
    ]
    lines = explain("==", set(range(30)), set(range(2, 30)))
    assert lines is not None
    assert lines[1:] == ["only on the left (2): [0, 1]"]


@pytest.mark.parametrize(
    ("op", "left", "right"), [("!=", [1], [1]), ("==", 1, 2), ("==", "a", "b")]
)
def test_other_comparisons_are_left_to_pytest(op: str, left: object, right: object) -> None:
    assert explain(op, left, right) is None


CHECKS = textwrap.dedent(
    """
    import pytest


    @pytest.mark.asm_rule("SEQ-1")
    def test_numbers():
        assert list(range(1, 300)) == list(range(2, 301)), "numbers from 2"


    def test_not_a_check():
        assert list(range(1, 300)) == list(range(2, 301))
    """
)


@pytest.mark.parametrize("verbosity", [(), ("-vv",)], ids=["default", "very-verbose"])
def test_on_ci_a_check_prints_its_difference_in_a_few_lines(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, verbosity: tuple[str, ...]
) -> None:
    # On CI pytest shows every line of a list's diff; a check keeps to its first difference,
    # a test that is not a check keeps pytest's explanation, and -vv restores it for checks too.
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest("-p", "no:cacheprovider", *verbosity)
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    check = output.split("test_numbers", 2)[-1].split("test_not_a_check")[0]
    if verbosity:
        assert "Full diff" in check
    else:
        assert "first difference at index 0: 1 != 2 (299 index(es) differ)" in check
        assert "Full diff" not in check
        assert len(check.splitlines()) < 25
    assert "Full diff" in output.split("test_not_a_check", 1)[-1]
