"""The driver fault target for stores on PyMySQL (MySQL and MariaDB).

While armed, ``pymysql.cursors.Cursor.execute`` and ``executemany`` (every cursor class inherits
them; ``executemany`` runs ``execute`` per chunk, and is asked about once) and the connection's
``commit`` and ``rollback`` pass through the target. Class methods are patched, so connections
opened before arming are covered too. Failures are ``pymysql.err.OperationalError`` with error
2013, "Lost connection to MySQL server during query", what a dropped server gives.
"""

from __future__ import annotations

import importlib
from typing import Any

from pytest_asm_contract._faults.drivers import SqlDriverTarget

#: CR_SERVER_LOST: the client lost the server in the middle of a query.
SERVER_LOST = 2013


class PymysqlTarget(SqlDriverTarget):
    """Fails the writes of every PyMySQL connection where the armed policy says."""

    module = "pymysql"
    label = "MySQL/MariaDB"

    def error(self, message: str) -> Exception:
        error: Exception = self._driver.err.OperationalError(SERVER_LOST, message)
        return error

    def in_transaction(self, connection: Any) -> bool:
        status = importlib.import_module("pymysql.constants.SERVER_STATUS")
        return bool(connection.server_status & status.SERVER_STATUS_IN_TRANS)

    def _install(self, driver: Any) -> None:
        cursors = importlib.import_module("pymysql.cursors")
        connections = importlib.import_module("pymysql.connections")
        self._patch(cursors.Cursor, "execute", self.wrap_statement)
        self._patch(cursors.Cursor, "executemany", self.wrap_statement)
        self._patch(connections.Connection, "commit", self.wrap_end(rolled_back=False))
        self._patch(connections.Connection, "rollback", self.wrap_end(rolled_back=True))


__all__ = ["PymysqlTarget"]
