"""The QueryAPI's single arguments, validated (QRY-5): limits, orders, times, flags, strings,
one-or-many values and pricing tables. ``query_args`` builds whole searches from them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from pytest_asm_contract._contract.errors import validation_error
from pytest_asm_contract._contract.query import LIMIT_MAX
from pytest_asm_contract._contract.usage import PricingTable

E = TypeVar("E", bound=Enum)


def check_limit(value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LIMIT_MAX:
        raise validation_error(
            f"limit must be an int in 1..{LIMIT_MAX}, got {value!r}", field="limit"
        )
    return value


def check_order(value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise validation_error(
            f"unknown order_by {value!r}; expected one of: {', '.join(allowed)}", field="order_by"
        )
    return value


def check_time(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise validation_error(
            f"{name} must be a timezone-aware datetime, got {value!r}", field=name
        )
    return value


def check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise validation_error(f"{name} must be a bool, got {value!r}", field=name)
    return value


def check_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise validation_error(f"{name} must be a string, got {value!r:.80}", field=name)
    return value


def one_or_many(
    value: object, name: str, each: Callable[[object, str], Any]
) -> frozenset[Any] | None:
    """One value, or a non-empty list of them (any of)."""
    if value is None:
        return None
    if isinstance(value, str | Enum):
        return frozenset({each(value, name)})
    if not isinstance(value, list | tuple) or not value:
        raise validation_error(
            f"{name} must be one value or a non-empty list, got {value!r:.80}", field=name
        )
    return frozenset(each(item, name) for item in value)


def every_of(value: object, name: str, each: Callable[[object, str], Any]) -> frozenset[Any] | None:
    """A non-empty list (any of)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise validation_error(f"{name} must be a non-empty list, got {value!r:.80}", field=name)
    return frozenset(each(item, name) for item in value)


def member_of(enum_type: type[E]) -> Callable[[object, str], E]:
    def member(value: object, name: str) -> E:
        try:
            return enum_type(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in enum_type)
            raise validation_error(
                f"unknown {name} {value!r}; expected one of: {allowed}", field=name
            ) from None

    return member


def check_pricing_table(value: object) -> PricingTable | None:
    if value is None or isinstance(value, PricingTable):
        return value
    if isinstance(value, Mapping):
        try:
            return PricingTable.model_validate(value)
        except ValueError as error:
            raise validation_error(
                f"invalid pricing_table: {error}", field="pricing_table"
            ) from None
    raise validation_error(
        f"pricing_table must be a PricingTable, got {value!r:.80}", field="pricing_table"
    )


__all__ = [
    "check_flag",
    "check_limit",
    "check_order",
    "check_pricing_table",
    "check_text",
    "check_time",
    "every_of",
    "member_of",
    "one_or_many",
]
