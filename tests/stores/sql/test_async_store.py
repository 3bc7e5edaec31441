"""The async SQL store: the whole kit on SQLite, PostgreSQL and MariaDB, and what is its own
(opening lazily, URLs, closing, sharing a backend with the sync store).

    pytest --asm-store=reference_stores.sql:AsyncSqlSessionStore
    pytest --asm-store=reference_stores.sql:AsyncSqlSessionStore \\
        --asm-store-option url=postgresql://postgres@127.0.0.1:5432/test \\
        --asm-store-option isolated=true
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from pytest_asm_contract import ErrorCode, Scope, StoreError
from pytest_asm_contract.suite._builders import a_session, an_event
from reference_stores.sql import AsyncSqlSessionStore, SqlSessionStore
from tests.stores.sql.conftest import server_url
from tests.verdicts import may_skip_for, run_kit

STORE = "reference_stores.sql:AsyncSqlSessionStore"
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def run_kit_on(pytester: pytest.Pytester, *options: str) -> None:
    """The bundled suite in a pytest process of its own: every session-store rule and every
    ASYNC rule passes."""
    result, verdicts = run_kit(pytester, f"--asm-store={STORE}", *options, subprocess=True)
    store_options = dict(o.split("=", 1)[1].split("=", 1) for o in options if "option" in o)
    skips = may_skip_for(STORE, **store_options)
    wrong = verdicts.unexpected(Scope.SESSION_STORE, may_skip=skips)
    wrong |= verdicts.unexpected(Scope.ASYNC_STORE)
    assert not wrong, f"the async SQL store did not pass {wrong}:\n{result.stdout.str()[-6000:]}"
    assert result.ret == 0, result.stdout.str()[-6000:]


def test_kit_passes_on_the_embedded_sqlite_default(pytester: pytest.Pytester) -> None:
    run_kit_on(pytester)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_kit_passes_on_a_server_with_isolated_namespaces(
    pytester: pytest.Pytester, server: str
) -> None:
    url = sa.make_url(server_url(server))
    async_url = url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)
    prefix = f"akit{uuid.uuid4().hex[:8]}_"

    run_kit_on(
        pytester,
        f"--asm-store-option=url={async_url}",
        "--asm-store-option=isolated=true",
        f"--asm-store-option=table_prefix={prefix}",
    )

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        left = [t for t in sa.inspect(engine).get_table_names() if t.startswith(prefix)]
    finally:
        engine.dispose()
    assert left == [], "isolated namespaces were left behind"


def test_a_url_without_a_driver_gets_the_async_one() -> None:
    store = AsyncSqlSessionStore("postgresql://user@127.0.0.1:1/db")
    try:
        assert "postgresql+asyncpg://" in repr(store)
    finally:
        run(store.close())


def test_a_sync_driver_is_a_validation_error_naming_the_async_ones() -> None:
    with pytest.raises(StoreError) as raised:
        AsyncSqlSessionStore("mysql+pymysql://user@127.0.0.1:1/db")

    assert raised.value.code is ErrorCode.VALIDATION_ERROR
    assert "mysql+asyncmy" in raised.value.message


def test_opening_a_database_without_the_schema_names_the_migration(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"

    async def first_call() -> None:
        store = AsyncSqlSessionStore(url)
        try:
            await store.get_latest_sequence("s")
        finally:
            await store.close()

    with pytest.raises(StoreError) as raised:
        run(first_call())

    assert raised.value.code is ErrorCode.MIGRATION_REQUIRED
    assert "python -m reference_stores.sql upgrade" in raised.value.message


def test_close_removes_the_temporary_file_and_later_calls_fail() -> None:
    async def scenario() -> tuple[Path, StoreError]:
        store = AsyncSqlSessionStore()
        await store.save_session(a_session())
        spec = await store.asm_reopen_spec()
        path = Path(sa.make_url(spec[1]["url"]).database or "")
        assert path.exists()
        await store.close()
        await store.close()  # a second close does nothing
        with pytest.raises(StoreError) as raised:
            await store.get_latest_sequence("s")
        return path, raised.value

    path, error = run(scenario())

    assert not path.exists()
    assert error.code is ErrorCode.STORAGE_ERROR


def test_the_async_and_the_sync_store_share_one_database(tmp_path: Path) -> None:
    """One schema and codec: what one face writes, the other reads, numbering continues."""
    path = tmp_path / "shared.db"
    sync_store = SqlSessionStore(f"sqlite:///{path}", create_schema=True)
    session = a_session()
    sync_store.save_session(session)
    sync_store.append_event(an_event(session.id))

    async def scenario() -> tuple[Any, int | None]:
        async with AsyncSqlSessionStore(f"sqlite:///{path}") as store:
            stored = await store.append_event_with_sequence(an_event(session.id))
            return await store.get_session(session.id), stored.sequence_number

    try:
        read, number = run(scenario())
        assert read == session
        assert number == 2
        assert [e.sequence_number for e in sync_store.get_events(session.id)] == [1, 2]
    finally:
        sync_store.close()


def test_cancelled_appends_leave_no_hole_and_the_store_usable() -> None:
    """Tasks cancelled at random moments of their appends (the kit's ASYNC-1 cancels at each
    await point in turn; this is the crowd version): numbers stay 1..n."""

    async def scenario() -> tuple[list[int | None], int]:
        async with AsyncSqlSessionStore() as store:
            session = a_session()
            await store.save_session(session)
            tasks = [
                asyncio.ensure_future(store.append_event_with_sequence(an_event(session.id)))
                for _ in range(60)
            ]
            for step, task in enumerate(tasks):
                for _ in range(step % 7):
                    await asyncio.sleep(0)
                if step % 3 == 0:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await store.append_event(an_event(session.id))
            numbers = [e.sequence_number for e in await store.get_events(session.id)]
            return numbers, await store.get_latest_sequence(session.id)

    numbers, latest = run(scenario())

    assert numbers == list(range(1, latest + 1))


def test_concurrent_appends_share_transactions_and_survive_a_cancelled_caller() -> None:
    """Group commit: 50 appends from tasks started together commit in far fewer transactions;
    cancelling the first caller mid-write fails none of the others, and its own write is
    finished whole before its cancellation is raised."""

    async def scenario() -> tuple[list[int], int, int]:
        async with AsyncSqlSessionStore() as store:
            session = a_session()
            await store.save_session(session)
            commits = 0

            def count(*_: object) -> None:
                nonlocal commits
                commits += 1

            sa.event.listen(store.asm_fault_target(), "commit", count)
            tasks = [
                asyncio.ensure_future(store.append_event_with_sequence(an_event(session.id)))
                for _ in range(50)
            ]
            for _ in range(3):  # the leader is inside its transaction, the others queued
                await asyncio.sleep(0)
            tasks[0].cancel()
            done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
            written = sum(not isinstance(r, BaseException) for r in done)
            numbers = [e.sequence_number or 0 for e in await store.get_events(session.id)]
            return numbers, written, commits

    numbers, written, commits = run(scenario())

    assert numbers == list(range(1, len(numbers) + 1))
    assert written == 49 and len(numbers) == 50
    assert 0 < commits < 25, f"{commits} commits for 50 concurrent appends: no group commit"
