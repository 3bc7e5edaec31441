"""Keyword options of the reference stores, which may arrive as strings from the command line.

``--asm-store-option KEY=VALUE`` passes every value as a string, Python callers pass real bools and
numbers; both go through these helpers, so every store reads ``"ture"`` or ``"-1"`` the same way:
as a ``validation_error`` naming the option and saying what it takes, raised before the store
builds anything. The error's details carry ``option`` (the keyword) and ``value`` (what was given).
"""

from __future__ import annotations

import math
import numbers

from pytest_asm_contract._contract.errors import StoreError, validation_error

__all__ = ["boolean", "non_negative_float", "positive_float", "positive_int"]

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def boolean(value: object, name: str) -> bool:
    """A bool, the int 0 or 1, or true/false, yes/no, on/off, 1/0 (any case, spaces around)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE or word in FALSE:
            return word in TRUE
    raise _invalid(name, value, "a boolean (true/false, yes/no, on/off or 1/0)")


def positive_float(value: object, name: str) -> float:
    """A finite number greater than 0, or its string form."""
    expected = "a finite number greater than 0"
    number = _finite(value, name, expected)
    if not number > 0:
        raise _invalid(name, value, expected)
    return number


def non_negative_float(value: object, name: str) -> float:
    """A finite number of at least 0, or its string form."""
    expected = "a finite number of at least 0"
    number = _finite(value, name, expected)
    if not number >= 0:
        raise _invalid(name, value, expected)
    return number


def positive_int(value: object, name: str) -> int:
    """A whole number of at least 1: ``16``, ``"16"``, ``16.0`` or ``"1e3"``, but not ``2.5``."""
    expected = "a whole number of at least 1"
    whole = _whole(value, name, expected)
    if whole < 1:
        raise _invalid(name, value, expected)
    return whole


def _whole(value: object, name: str, expected: str) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass  # "16.0" or "1e3": whole numbers written as floats
    number = _finite(value, name, expected)
    if not number.is_integer():
        raise _invalid(name, value, expected)
    return int(number)


def _finite(value: object, name: str, expected: str) -> float:
    # bool is an int subclass, but True seconds or True workers is a mistake, not a number.
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _invalid(name, value, expected) from None
    else:
        raise _invalid(name, value, expected)
    if not math.isfinite(number):
        raise _invalid(name, value, expected)
    return number


def _invalid(name: str, value: object, expected: str) -> StoreError:
    # Details stay plain data (they are pickled across processes and printed in reports).
    shown = value if value is None or isinstance(value, str | int | float) else repr(value)
    return validation_error(
        f"option {name} must be {expected}, got {value!r:.80}", option=name, value=shown
    )
