"""Database URLs for the SQL store's tests, each gated on its server being reachable.

The servers default to the development and CI services (see README); override them with
``ASM_TEST_POSTGRES_URL`` and ``ASM_TEST_MYSQL_URL``. An unreachable server skips its tests, or
fails them when ``ASM_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_unavailable

POSTGRES_URL = os.environ.get(
    "ASM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("ASM_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
SERVERS = {"postgresql": POSTGRES_URL, "mariadb": MYSQL_URL}
_reachable: dict[str, str | None] = {}


def _probe(name: str, url: str) -> str | None:
    """None when the server answers, else why not."""
    if name not in _reachable:
        try:
            import sqlalchemy as sa

            engine = sa.create_engine(
                url,
                poolclass=sa.pool.NullPool,
                connect_args={"connect_timeout": 3},
            )
            try:
                with engine.connect() as connection:
                    connection.exec_driver_sql("SELECT 1")
            finally:
                engine.dispose()
            _reachable[name] = None
        except Exception as error:
            _reachable[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return _reachable[name]


def server_url(name: str) -> str:
    """The URL of a server the test needs; skips (or fails in CI) when it is unreachable."""
    url = SERVERS[name]
    problem = _probe(name, url)
    if problem is not None:
        service_unavailable(f"{name} at {url} is unreachable ({problem})")
    return url


@pytest.fixture
def pg_url() -> str:
    return server_url("postgresql")


@pytest.fixture
def mysql_url() -> str:
    return server_url("mariadb")


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each backend: a fresh SQLite file, or one of the servers."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return server_url(request.param)


@pytest.fixture
def prefix(db_url: str) -> Iterator[str]:
    """A table prefix no other test uses; whatever a test leaves under it is dropped."""
    value = f"t{uuid.uuid4().hex[:10]}_"
    yield value
    drop_prefix(db_url, value)


def drop_prefix(url: str, value: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        metadata = sa.MetaData()
        for table in inspector.get_table_names():
            if table.startswith(value):
                sa.Table(table, metadata)
        metadata.drop_all(engine)
    finally:
        engine.dispose()
