"""Give the conformance kit a fresh, empty store on its own database file for every test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from asm_sqlite_store import SqliteSessionStore


@pytest.fixture(scope="session")
def asm_store_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[], SqliteSessionStore]:
    # Session-scoped, as the kit's own fixture is: generated (Hypothesis) checks call the factory
    # once per example, so each call must make a new database, not each test.
    def make() -> SqliteSessionStore:
        return SqliteSessionStore(tmp_path_factory.mktemp("asm") / "sessions.sqlite3")

    return make
