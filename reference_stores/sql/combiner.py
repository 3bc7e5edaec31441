"""Group commit for appends: concurrent appends of one store share one transaction.

A durable commit costs a disk flush (about 2 ms on the development machine), and the per-session
counter row stays locked until the commit, so one append per transaction caps a session at a few
hundred events per second whatever the number of writers. Here the first caller becomes the
leader and writes every request queued so far in one transaction; callers that arrive meanwhile
queue up and the next leader takes them all. Each caller still returns only after the commit
that holds its events, each request keeps its own consecutive block (BATCH-5), and if a shared
transaction fails, every request is retried alone so one bad request cannot fail the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
#: Groups one leader writes back to back before handing over.
MAX_ROUNDS_PER_LEADER = 4
R = TypeVar("R")


class _Request(Generic[T, R]):
    __slots__ = ("done", "error", "payload", "result")

    def __init__(self, payload: T) -> None:
        self.payload = payload
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class Combiner(Generic[T, R]):
    """``submit(payload)`` runs ``run_group([payloads...])`` for queued payloads together."""

    def __init__(self, run_group: Callable[[list[T]], list[R]]) -> None:
        self._run_group = run_group
        self._condition = threading.Condition()
        self._pending: list[_Request[T, R]] = []
        self._leader = False

    def submit(self, payload: T) -> R:
        request: _Request[T, R] = _Request(payload)
        with self._condition:
            self._pending.append(request)
            while self._leader and not request.done:
                self._condition.wait()
            if request.done:
                return self._outcome(request)
            self._leader = True
            group, self._pending = self._pending, []
        rounds = 0
        try:
            while group:
                self._execute(group)
                rounds += 1
                with self._condition:
                    self._condition.notify_all()  # the finished callers may leave now
                    # Requests that queued meanwhile go next, without waiting for a new leader
                    # to wake up; a few rounds at most, so this caller is not held for long.
                    group = []
                    if rounds < MAX_ROUNDS_PER_LEADER:
                        group, self._pending = self._pending, []
        finally:
            with self._condition:
                self._leader = False
                self._condition.notify_all()
        return self._outcome(request)

    @staticmethod
    def _outcome(request: _Request[T, R]) -> R:
        if request.error is not None:
            raise request.error
        return request.result  # type: ignore[return-value]  # set when error is None

    def _execute(self, group: list[_Request[T, R]]) -> None:
        try:
            results = self._run_group([r.payload for r in group])
        except BaseException as error:
            if len(group) == 1:
                self._finish(group[0], error=error)
                return
            for request in group:  # one request may be the culprit: give each its own try
                try:
                    self._finish(request, result=self._run_group([request.payload])[0])
                except BaseException as single_error:
                    self._finish(request, error=single_error)
            return
        for request, result in zip(group, results, strict=True):
            self._finish(request, result=result)

    def _finish(
        self, request: _Request[T, R], result: R | None = None, error: BaseException | None = None
    ) -> None:
        with self._condition:
            request.result, request.error, request.done = result, error, True
