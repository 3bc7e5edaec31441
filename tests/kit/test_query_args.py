"""The QueryAPI's argument checks and cursors (``_contract/query_args.py``), below the suite.

The suite's QRY checks show them through a QueryAPI; these pin what a store author relies on
when building one: a cursor that is forged with a valid checksum still cannot make a search
compare values of the wrong type (a raw ``TypeError``), and equal instants in other time zones
are the same filters.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Session
from pytest_asm_contract._contract.query_args import SessionSearch, _checksum

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _sessions(count: int) -> list[Session]:
    return [
        Session(id=f"s{i}", agent_id="a", created_at=T0 + timedelta(seconds=i), updated_at=T0)
        for i in range(count)
    ]


def _forged(payload: dict[str, object]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + _checksum(raw)


def test_pages_follow_the_keyset_to_the_end() -> None:
    sessions, seen, cursor = _sessions(5), [], None
    while True:
        search = SessionSearch.of(order_by="created_at_desc", limit=2, cursor=cursor)
        page, cursor = search.page(sessions)
        seen += [s.id for s in page]
        if cursor is None:
            break
    assert seen == ["s4", "s3", "s2", "s1", "s0"]


@pytest.mark.parametrize(
    "position",
    [["not a time", "s1"], [{"t": "2026-01-01T12:00:00"}, "s1"], [5, "s1"], [True, "s1"]],
    ids=["text", "naive-time", "number", "bool"],
)
def test_a_forged_cursor_whose_position_does_not_fit_the_order_is_invalid(
    position: list[object],
) -> None:
    digest = SessionSearch.of(order_by="created_at_asc").digest()
    forged = _forged({"k": "sessions", "o": "created_at_asc", "f": digest, "a": position})
    with pytest.raises(StoreError) as raised:
        SessionSearch.of(order_by="created_at_asc", cursor=forged)
    assert raised.value.code is ErrorCode.INVALID_CURSOR


def test_the_same_instant_in_another_zone_is_the_same_filter() -> None:
    first = SessionSearch.of(created_after=T0, limit=1)
    page, cursor = first.page(_sessions(3))
    assert cursor is not None
    elsewhere = T0.astimezone(timezone(timedelta(hours=5)))
    again = SessionSearch.of(created_after=elsewhere, limit=1, cursor=cursor)
    assert again.after == first.sort_key(page[-1])
