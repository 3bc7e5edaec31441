"""The whole contract kit against the SQL store on SQLite, PostgreSQL and MariaDB.

Each run is a separate pytest process, exactly as a user runs it, with the QueryAPI, the
artifact registry and the Maintenance port too::

    pytest --asm-store=reference_stores.sql:SqlSessionStore \\
        --asm-query=reference_stores.sql:SqlQueryAPI \\
        --asm-artifact-registry=reference_stores.sql:SqlArtifactRegistry \\
        --asm-maintenance=reference_stores.sql:SqlMaintenance
    pytest --asm-store=reference_stores.sql:SqlSessionStore \\
        --asm-query=reference_stores.sql:SqlQueryAPI \\
        --asm-artifact-registry=reference_stores.sql:SqlArtifactRegistry \\
        --asm-maintenance=reference_stores.sql:SqlMaintenance \\
        --asm-store-option url=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        --asm-store-option isolated=true
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from pytest_asm_contract import Scope
from tests.stores.sql.conftest import server_url
from tests.verdicts import may_skip_for, run_kit

STORE = "reference_stores.sql:SqlSessionStore"
QUERY = "reference_stores.sql:SqlQueryAPI"
REGISTRY = "reference_stores.sql:SqlArtifactRegistry"
MAINTENANCE = "reference_stores.sql:SqlMaintenance"


def run_kit_on(pytester: pytest.Pytester, *options: str) -> None:
    """The bundled suite in a pytest process of its own: every session-store rule must pass
    (the store declares every capability but referential_integrity, and offers both hooks),
    and every QueryAPI, artifact registry and Maintenance rule."""
    result, verdicts = run_kit(
        pytester,
        f"--asm-store={STORE}",
        f"--asm-query={QUERY}",
        f"--asm-artifact-registry={REGISTRY}",
        f"--asm-maintenance={MAINTENANCE}",
        *options,
        subprocess=True,
    )
    wrong = verdicts.unexpected(Scope.SESSION_STORE, may_skip=may_skip_for(STORE))
    for side in (Scope.QUERY_API, Scope.ARTIFACT_REGISTRY, Scope.MAINTENANCE):
        wrong |= verdicts.unexpected(side)
    assert not wrong, f"the SQL store did not pass {wrong}:\n{result.stdout.str()[-6000:]}"
    assert result.ret == 0, result.stdout.str()[-6000:]


def _leftover_tables(url: str, prefix: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return [t for t in sa.inspect(engine).get_table_names() if t.startswith(prefix)]
    finally:
        engine.dispose()


def test_kit_passes_on_the_embedded_sqlite_default(pytester: pytest.Pytester) -> None:
    run_kit_on(pytester)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_kit_passes_on_a_server_with_isolated_namespaces(
    pytester: pytest.Pytester, server: str
) -> None:
    url = server_url(server)
    prefix = f"kit{uuid.uuid4().hex[:8]}_"

    run_kit_on(
        pytester,
        f"--asm-store-option=url={url}",
        "--asm-store-option=isolated=true",
        f"--asm-store-option=table_prefix={prefix}",
    )

    assert _leftover_tables(url, prefix) == [], "isolated namespaces were left behind"
