"""The whole contract kit against the SQL store on SQLite, PostgreSQL and MariaDB.

Each run is a separate pytest process, exactly as a user runs it::

    pytest --asm-store=reference_stores.sql:SqlSessionStore
    pytest --asm-store=reference_stores.sql:SqlSessionStore \\
        --asm-store-option url=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        --asm-store-option isolated=true
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from tests.sql.conftest import server_url

#: Rules the SQL store must pass, not merely not fail (its capabilities and hooks included).
MUST_PASS = (
    "SEQ-1",
    "SEQ-5",
    "IDEM-1",
    "IDEM-4",
    "BATCH-5",
    "FLUSH-1",
    "FLUSH-3",
    "FLUSH-5",
    "POLL-1",
    "DATA-1",
    "DATA-2",
    "DATA-3",
    "CONC-1",
    "CONC-2",
    "CONC-3",
)


def run_kit(pytester: pytest.Pytester, *options: str) -> dict[str, Any]:
    result = pytester.runpytest_subprocess(
        "--asm-store=reference_stores.sql:SqlSessionStore",
        *options,
        "--asm-report=report",
        "-p",
        "no:cacheprovider",
        "-q",
    )
    report: dict[str, Any] = json.loads((pytester.path / "report.json").read_text())
    statuses = {rule["id"]: rule["status"] for rule in report["rules"]}
    failed = sorted(r for r, status in statuses.items() if status == "failed")
    assert not failed, f"the SQL store failed {failed}:\n{result.stdout.str()[-6000:]}"
    assert result.ret == 0, result.stdout.str()[-6000:]
    not_passed = [r for r in MUST_PASS if statuses[r] != "passed"]
    assert not not_passed, f"not passed: {[(r, statuses[r]) for r in not_passed]}"
    return statuses


def _leftover_tables(url: str, prefix: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return [t for t in sa.inspect(engine).get_table_names() if t.startswith(prefix)]
    finally:
        engine.dispose()


def test_kit_passes_on_the_embedded_sqlite_default(pytester: pytest.Pytester) -> None:
    run_kit(pytester)


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_kit_passes_on_a_server_with_isolated_namespaces(
    pytester: pytest.Pytester, server: str
) -> None:
    url = server_url(server)
    prefix = f"kit{uuid.uuid4().hex[:8]}_"

    run_kit(
        pytester,
        f"--asm-store-option=url={url}",
        "--asm-store-option=isolated=true",
        f"--asm-store-option=table_prefix={prefix}",
    )

    assert _leftover_tables(url, prefix) == [], "isolated namespaces were left behind"
