"""Waking long-polling readers (POLL-1).

``Waiter`` is a generation counter with a condition: a reader takes a token *before* it queries,
and after an empty result waits until the generation moves past the token (an append committed)
or a poll interval passes, then queries again. Commits of the same store bump the generation
directly; on PostgreSQL a LISTEN connection bumps it for every NOTIFY the writers of any process
send in their transactions (delivered at commit). Elsewhere other processes' writes are found by
polling, which is also the safety net if the LISTEN connection is lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from typing import Any

try:
    import sqlalchemy as sa
except ImportError:  # DEP-1
    sa = None  # type: ignore[assignment]


def channel_name(prefix: str, url: str) -> str:
    """A NOTIFY channel per namespace: a valid unquoted identifier under 63 bytes."""
    digest = hashlib.sha256(f"{url}\0{prefix}".encode()).hexdigest()[:24]
    return f"asm_events_{digest}"


class Waiter:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    def token(self) -> int:
        with self._condition:
            return self._generation

    def bump(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, token: int, timeout: float) -> None:
        """Return once the generation differs from ``token``, or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._generation == token:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._condition.wait(remaining)


class PgListener:
    """A daemon thread that LISTENs on one channel and bumps a Waiter for every notification."""

    POLL_S = 0.25

    def __init__(self, engine: sa.Engine, channel: str, waiter: Waiter) -> None:
        self._engine = engine
        self._channel = channel
        self._waiter = waiter
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failed = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def healthy(self) -> bool:
        return self._ready.is_set() and not self._failed and not self._stop.is_set()

    def ensure_started(self, timeout: float = 5.0) -> bool:
        """Start listening if not yet; True once notifications are being received."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"asm-listen-{self._channel}", daemon=True
                )
                self._thread.start()
        self._ready.wait(timeout)
        return self.healthy

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        connection: Any = None
        try:
            # A connection of its own, outside the pool, made the way SQLAlchemy makes them.
            dialect = self._engine.dialect
            args, kwargs = dialect.create_connect_args(self._engine.url)
            connection = dialect.loaded_dbapi.connect(*args, **kwargs)
            connection.autocommit = True
            connection.execute(f"LISTEN {self._channel}")
            self._ready.set()
            while not self._stop.is_set():
                for _ in connection.notifies(timeout=self.POLL_S):
                    self._waiter.bump()
        except Exception:
            self._failed = True  # readers fall back to polling
        finally:
            self._ready.set()
            self._waiter.bump()
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()
