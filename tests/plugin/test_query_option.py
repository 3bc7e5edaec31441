"""``--asm-query``: without it the QRY checks skip saying how to enable them; a store that
declares ``asm_query_unavailable`` has them skip with its reason; a QueryAPI lacking a query
fails once, naming it."""

from __future__ import annotations

import pytest

MEMORY = "reference_stores.memory:InMemorySessionStore"
QUERY = "reference_stores.memory:InMemoryQueryAPI"
ONE_CHECK = ["--asm-rules=QRY-8", "-p", "no:cacheprovider", "-rs"]

STORES = """
from reference_stores.memory import InMemorySessionStore


class NoQueries(InMemorySessionStore):
    asm_query_unavailable = "its backend keeps one log per session"


class HalfQueryAPI:
    def __init__(self, store):
        self.store = store

    def search_sessions(self, **filters):
        return None
"""


def test_without_asm_query_the_qry_checks_skip_saying_how(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(f"--asm-store={MEMORY}", *ONE_CHECK)
    assert "passed" not in result.parseoutcomes()
    result.stdout.fnmatch_lines(["*no QueryAPI configured: pass --asm-query=module:attr*"])
    assert result.ret == 0


def test_a_store_without_queries_skips_them_with_its_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(user_stores=STORES)
    pytester.syspathinsert()
    result = pytester.runpytest(
        "--asm-store=user_stores:NoQueries", f"--asm-query={QUERY}", *ONE_CHECK
    )
    result.stdout.fnmatch_lines(
        ["*NoQueries offers no QueryAPI: its backend keeps one log per session*"]
    )
    assert "passed" not in result.parseoutcomes()
    assert result.ret == 0


def test_a_query_api_lacking_queries_fails_naming_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(user_stores=STORES)
    pytester.syspathinsert()
    result = pytester.runpytest(
        f"--asm-store={MEMORY}", "--asm-query=user_stores:HalfQueryAPI", *ONE_CHECK
    )
    result.stdout.fnmatch_lines(["*HalfQueryAPI) lacks get_session_stats, search_runs*"])
    assert result.ret == 1


def test_the_s3_store_declares_why_it_offers_no_queries() -> None:
    from reference_stores.s3 import S3SessionStore

    assert "S3 bucket" in S3SessionStore.asm_query_unavailable
