"""DEP-1 for the SQL store: it imports without its extras and says which extra a store needs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from pytest_asm_contract import rule

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = set(sys.argv[1].split(","))

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    import asyncio, inspect
    import reference_stores.sql
    import reference_stores.sql.migrate, reference_stores.sql.store  # every module imports
    import reference_stores.sql.async_store
    from pytest_asm_contract._contract.errors import StoreError

    store_class = getattr(reference_stores.sql, sys.argv[3])
    kwargs = json.loads(sys.argv[2])
    try:
        closed = store_class(**kwargs).close()
        if inspect.isawaitable(closed):
            asyncio.run(closed)
        print(json.dumps({"built": True}))
    except StoreError as error:
        print(json.dumps({"code": error.code.value, "message": error.message,
                          "details": error.details}))
    """
)


def _build_with(blocked: str, store: str = "SqlSessionStore", **kwargs: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, blocked, json.dumps(kwargs), store],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@rule("DEP-1")
@pytest.mark.parametrize(
    ("blocked", "kwargs", "dependency", "extra"),
    [
        ("sqlalchemy", {}, "sqlalchemy", "sql"),
        ("sqlalchemy,alembic,psycopg,pymysql", {}, "sqlalchemy", "sql"),
        ("alembic", {}, "alembic", "sql"),
        (
            "psycopg",
            {"url": "postgresql+psycopg://postgres@127.0.0.1:5432/test"},
            "psycopg",
            "postgres",
        ),
        ("pymysql", {"url": "mysql+pymysql://root@127.0.0.1:3306/test"}, "pymysql", "mysql"),
    ],
    ids=["sqlalchemy", "everything", "alembic", "psycopg", "pymysql"],
)
def test_store_without_its_extra_raises_dependency_not_available(
    blocked: str, kwargs: dict[str, str], dependency: str, extra: str
) -> None:
    result = _build_with(blocked, **kwargs)

    assert result.get("code") == "dependency_not_available", result
    details = result["details"]
    assert isinstance(details, dict)
    assert details["dependency"] == dependency
    assert details["module"] == dependency
    assert details["operation"] == "SqlSessionStore()"
    assert f"pytest-asm-contract[{extra}]" in str(result["message"])


@rule("DEP-1")
@pytest.mark.parametrize(
    ("blocked", "kwargs", "dependency", "extra"),
    [
        ("sqlalchemy", {}, "sqlalchemy", "async"),
        ("greenlet", {}, "greenlet", "async"),
        ("aiosqlite", {}, "aiosqlite", "async"),
        (
            "asyncpg",
            {"url": "postgresql://postgres@127.0.0.1:5432/test"},
            "asyncpg",
            "async-postgres",
        ),
        ("asyncmy", {"url": "mysql://root@127.0.0.1:3306/test"}, "asyncmy", "async-mysql"),
    ],
    ids=["sqlalchemy", "greenlet", "aiosqlite", "asyncpg", "asyncmy"],
)
def test_async_store_without_its_extra_raises_dependency_not_available(
    blocked: str, kwargs: dict[str, str], dependency: str, extra: str
) -> None:
    result = _build_with(blocked, "AsyncSqlSessionStore", **kwargs)

    assert result.get("code") == "dependency_not_available", result
    details = result["details"]
    assert isinstance(details, dict)
    assert details["dependency"] == dependency
    assert details["operation"] == "AsyncSqlSessionStore()"
    assert f"pytest-asm-contract[{extra}]" in str(result["message"])


@pytest.mark.parametrize("store", ["SqlSessionStore", "AsyncSqlSessionStore"])
def test_nothing_blocked_builds_the_store(store: str) -> None:
    assert _build_with("nothing-at-all", store) == {"built": True}
