"""Fault targets below the store: a database driver's own entry points, patched while armed.

A store on a plain driver hands the kit nothing to hook, so the kit intercepts the driver
itself: sqlite3 (``sqlite3.py``), psycopg 3 (``psycopg.py``), PyMySQL (``pymysql.py``) and
redis-py (``redis.py``), one target each, built on the classes here. While armed, a target
replaces a few Python-level methods of its driver; disarmed, it puts back the very objects it
replaced. A driver that is not installed is left alone, and none is imported before a target is
armed (contract DEP-1).

Every intercepted call that writes asks the policy first and, when told to, raises the driver's
own error type instead of reaching the backend, as a lost backend would. Once a write took effect
(a SQL transaction committed, a Redis command returned) the policy may lose its reply. A call
made inside another intercepted call (PyMySQL's ``executemany`` runs ``execute`` per chunk) is
the outer call's business and is not asked about again.

Patching is process-wide: while armed, writes through the driver count from every thread, since
a store's own worker threads write on its behalf; the kit arms only while one check runs. A
thread that picked up a wrapper just before disarming gets the original behaviour from it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

from pytest_asm_contract._faults.protocols import Policy
from pytest_asm_contract._faults.sqlalchemy import sql_is_write, sql_verb

T = TypeVar("T")
_MISSING = object()
_nesting = threading.local()


@contextlib.contextmanager
def _outermost() -> Iterator[bool]:
    """Within the block, whether this is the outermost intercepted call on this thread."""
    depth: int = getattr(_nesting, "depth", 0)
    _nesting.depth = depth + 1
    try:
        yield depth == 0
    finally:
        _nesting.depth = depth


class Tally:
    """How many writes through one driver returned normally since it was armed (or reset); a
    write the backend refused, or that the kit failed, does not count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._completed = 0

    @property
    def completed(self) -> int:
        with self._lock:
            return self._completed

    def reset(self) -> None:
        with self._lock:
            self._completed = 0

    def count(self) -> None:
        with self._lock:
            self._completed += 1


class DriverTarget:
    """One driver's target: its patches, installed while armed, and the questions its writes ask
    the policy. A subclass names the driver, its error and installs its patches."""

    #: The driver's top-level module, imported when the target is armed.
    module: ClassVar[str]
    #: The backend, as failure messages name it.
    label: ClassVar[str]

    def __init__(self) -> None:
        self.tally = Tally()
        self._policy: Policy | None = None
        self._patches: list[tuple[Any, str, object]] = []
        self._arming = threading.Lock()
        self._driver: Any = None

    @property
    def installed(self) -> bool:
        """Whether the driver can be imported (it is, then, once)."""
        if self._driver is None:
            try:
                self._driver = importlib.import_module(self.module)
            except ImportError:
                self._driver = False
        return self._driver is not False

    @property
    def armed(self) -> bool:
        return self._policy is not None

    def arm(self, policy: Policy) -> None:
        if not self.installed:
            return
        with self._arming:
            if self._policy is not None:
                raise RuntimeError(f"the {self.label} driver target is already armed")
            self.tally.reset()
            self._forget_transactions()
            self._policy = policy
            try:
                self._install(self._driver)
            except BaseException:
                self._policy = None
                self._restore()
                raise

    def disarm(self) -> None:
        with self._arming:
            self._policy = None
            self._restore()

    # -- for subclasses -----------------------------------------------------------------------
    def error(self, message: str) -> Exception:
        """What the driver raises when its backend is lost, saying ``message``."""
        raise NotImplementedError

    def _install(self, driver: Any) -> None:
        raise NotImplementedError

    def _forget_transactions(self) -> None:
        """Drop what was noted about open transactions while the target was last armed."""

    def _patch(self, owner: Any, name: str, wrap: Callable[[Any], Callable[..., Any]]) -> None:
        """Replace ``owner.name`` by ``wrap(current)``, remembering exactly what to put back."""
        original = vars(owner).get(name, _MISSING)
        current = getattr(owner, name)
        replacement = functools.wraps(current)(wrap(current))
        setattr(owner, name, replacement)
        self._patches.append((owner, name, original))

    def _restore(self) -> None:
        while self._patches:
            owner, name, original = self._patches.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

    def call(
        self,
        what: str,
        writes: bool,
        run: Callable[[], T],
        settle: Callable[[Policy], None] | None = None,
    ) -> T:
        """One intercepted call: when it ``writes``, the policy may fail it before it is made;
        ``settle`` runs once it returned (where a write took effect, and its reply may be lost)."""
        policy = self._policy
        with _outermost() as outermost:
            if policy is None or not outermost:
                return run()
            if writes:
                message = policy.before_write(what)
                if message is not None:
                    raise self.error(message)
            result = run()
            if writes:
                self.tally.count()
            if settle is not None:
                settle(policy)
            return result

    def lose_reply(self, policy: Policy, what: str) -> None:
        """After a write took effect: fail as if its reply never came, if the policy says so."""
        message = policy.after_write(what)
        if message is not None:
            raise self.error(message)


class SqlDriverTarget(DriverTarget):
    """A DB-API driver. A write is a statement ``sql_is_write`` accepts; it takes effect when its
    connection leaves the transaction other than by a rollback (a commit, or at once when there
    is no transaction around it)."""

    def __init__(self) -> None:
        super().__init__()
        self._writing: weakref.WeakSet[Any] = weakref.WeakSet()
        self._writing_lock = threading.Lock()

    def in_transaction(self, connection: Any) -> bool:
        raise NotImplementedError

    def _forget_transactions(self) -> None:
        with self._writing_lock:
            self._writing.clear()

    def statement(self, connection: Any, statement: str, run: Callable[[], T]) -> T:
        """Run one statement (or script) on ``connection``."""
        writes = sql_is_write(statement)

        def settle(policy: Policy) -> None:
            rolled_back = sql_verb(statement) == "ROLLBACK"
            self._settle(policy, connection, statement if writes else "COMMIT", writes, rolled_back)

        return self.call(statement, writes, run, settle)

    def commit(self, connection: Any, run: Callable[[], T], *, rolled_back: bool = False) -> T:
        """Run what ends ``connection``'s transaction: a commit, or a rollback."""

        def settle(policy: Policy) -> None:
            self._settle(policy, connection, "COMMIT", False, rolled_back)

        return self.call("ROLLBACK" if rolled_back else "COMMIT", False, run, settle)

    def wrap_statement(self, method: Any) -> Callable[..., Any]:
        """A cursor's ``execute`` or ``executemany`` that asks about its statement."""

        def statement(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            return self.statement(
                cursor.connection,
                query_text(query, cursor),
                lambda: method(cursor, query, *args, **kwargs),
            )

        return statement

    def wrap_end(self, *, rolled_back: bool) -> Callable[[Any], Callable[..., Any]]:
        """For a connection's ``commit`` (or ``rollback``)."""

        def wrap(method: Any) -> Callable[..., Any]:
            def end(connection: Any) -> Any:
                return self.commit(connection, lambda: method(connection), rolled_back=rolled_back)

            return end

        return wrap

    def _settle(
        self, policy: Policy, connection: Any, what: str, wrote: bool, rolled_back: bool
    ) -> None:
        in_transaction = self.in_transaction(connection)
        with self._writing_lock:
            if wrote:
                self._writing.add(connection)
            if in_transaction or connection not in self._writing:
                return
            self._writing.discard(connection)
        if not rolled_back:
            self.lose_reply(policy, what)


def query_text(query: Any, context: Any = None) -> str:
    """The SQL text of a query a driver accepts: text, bytes, a composed query (psycopg's
    ``sql.SQL``, rendered in ``context``) or a template ("" when it cannot be told)."""
    if isinstance(query, str):
        return query
    if isinstance(query, bytes | bytearray | memoryview):
        return bytes(query).decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)
    if callable(as_string):
        with contextlib.suppress(Exception):
            return str(as_string(context))
    strings = getattr(query, "strings", None)
    if isinstance(strings, tuple):
        return " ".join(str(part) for part in strings)
    return ""


__all__ = ["DriverTarget", "SqlDriverTarget", "Tally", "query_text"]
