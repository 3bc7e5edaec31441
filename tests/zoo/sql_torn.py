"""Torn flushes on PostgreSQL (psycopg) and MariaDB (PyMySQL), with no fault hook.

The SQL reference store with one mistake: flush commits the session and the run in one
transaction and the events in another. The store offers no fault hook, so only the kit's own
driver targets (psycopg's and PyMySQL's cursors) can fail the write between the two: these
stores show that those targets catch what a store does not announce.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pytest_asm_contract._contract.model import ExecutionResult
from pytest_asm_contract._contract.validation import as_execution_result
from reference_stores.sql import SqlSessionStore, codec
from tests.stores.sql.conftest import SERVERS, _probe
from tests.zoo import HISTORY_RULES

#: A reader, or another process, can see the flush half applied.
TORN_FLUSH_ALSO = (*HISTORY_RULES, "CONC-3")


class _TornFlushSqlStore(SqlSessionStore):
    """flush in two transactions (session and run, then events); no ``asm_fault_target``."""

    SERVER: ClassVar[str]

    def __init__(self, url: str | None = None, *, isolated: bool | str = True, **options: Any):
        super().__init__(url or SERVERS[self.SERVER], isolated=isolated, **options)

    # The reference store's hook, hidden (a protocol member set to None is absent): the kit must
    # find the writes in the driver.
    asm_fault_target = None  # type: ignore[assignment]

    @classmethod
    def service_problem(cls) -> str | None:
        """Why the tests cannot reach the database server, or None."""
        return _probe(cls.SERVER, SERVERS[cls.SERVER])

    def asm_reopen_spec(self) -> tuple[str, dict[str, Any]]:
        _, options = super().asm_reopen_spec()
        return f"{type(self).__module__}:{type(self).__name__}", {**options, "isolated": False}

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        self._limits.check_session(checked.session)
        self._limits.check_run(checked.run)
        self._limits.check_events(checked.events)
        session_row = codec.session_row(checked.session)
        run_row = codec.run_row(checked.run)

        def save_session_and_run(connection: Any) -> None:
            connection.execute(self._statements.upsert_session, session_row)
            connection.execute(self._statements.upsert_run, run_row)

        self._write("flush", save_session_and_run)
        if checked.events:
            self._write_events(
                "flush", lambda connection, new: self._store_events(connection, checked.events, new)
            )


class TornFlushPostgresStore(_TornFlushSqlStore):
    """On PostgreSQL through psycopg: the psycopg driver target fails the second transaction."""

    BREAKS = ("FLUSH-3",)
    ALSO = TORN_FLUSH_ALSO
    SERVER = "postgresql"


class TornFlushMariadbStore(_TornFlushSqlStore):
    """On MariaDB through PyMySQL: the PyMySQL driver target fails the second transaction."""

    BREAKS = ("FLUSH-3",)
    ALSO = TORN_FLUSH_ALSO
    SERVER = "mariadb"
