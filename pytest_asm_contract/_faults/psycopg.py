"""The driver fault target for stores on psycopg 3 (``psycopg.connect``, its cursors).

While armed, ``psycopg.Cursor.execute`` and ``executemany`` pass through the target; every
synchronous cursor class but the server-side one inherits them, and ``Connection.execute`` runs
its statement on such a cursor, so each statement is asked about once whichever way it came.
``Connection.commit``, ``Connection.rollback`` and the end of a ``conn.transaction()`` block are
where writes take effect (and where a reply may be lost). Class methods are patched, so
connections opened before arming are covered too. Failures are ``psycopg.OperationalError``.
Async connections are not intercepted.
"""

from __future__ import annotations

from typing import Any

from pytest_asm_contract._faults.drivers import SqlDriverTarget


class PsycopgTarget(SqlDriverTarget):
    """Fails the writes of every psycopg connection where the armed policy says."""

    module = "psycopg"
    label = "PostgreSQL"

    def error(self, message: str) -> Exception:
        error: Exception = self._driver.OperationalError(message)
        return error

    def in_transaction(self, connection: Any) -> bool:
        idle = self._driver.pq.TransactionStatus.IDLE
        return bool(connection.info.transaction_status != idle)

    def _install(self, driver: Any) -> None:
        def wrap_transaction_exit(method: Any) -> Any:
            def exit_block(block: Any, exc_type: Any, exc: Any, traceback: Any) -> Any:
                return self.commit(
                    block.connection,
                    lambda: method(block, exc_type, exc, traceback),
                    rolled_back=exc_type is not None,
                )

            return exit_block

        self._patch(driver.Cursor, "execute", self.wrap_statement)
        self._patch(driver.Cursor, "executemany", self.wrap_statement)
        self._patch(driver.Connection, "commit", self.wrap_end(rolled_back=False))
        self._patch(driver.Connection, "rollback", self.wrap_end(rolled_back=True))
        self._patch(driver.Transaction, "__exit__", wrap_transaction_exit)


__all__ = ["PsycopgTarget"]
