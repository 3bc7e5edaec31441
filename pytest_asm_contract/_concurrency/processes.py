"""Worker processes that open the store under test from its reopen spec and run tasks in it.

One mechanism serves every check across processes: the shared-backend checks (CONC-3), history
workloads over several processes and killed writers. A :class:`Worker` is one spawned process
with a pipe of its own; it opens stores from reopen specs (``asm_reopen_spec()``; an async store
behind the kit's facade, on a loop of its own, as in the driving process), keeps them
open until told to forget them, and runs *tasks*: module-level functions ``task(context, *args)``,
sent by reference. A task may report progress while it runs (:meth:`TaskContext.report`); the
killed-writer rounds learn that way when a commit begins. A :class:`ProcessPool` is several
workers sharing a barrier and a count of running writers, inherited when they start.

A killed worker can only break its own pipe, never another's. Every wait also watches the
process, so a dead worker is reported at once; the guards only catch a hung store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pytest_asm_contract._concurrency.async_bridge import open_reopened
from pytest_asm_contract._concurrency.recording import describe_error
from pytest_asm_contract._contract.port import ReopenSpec, close_quietly

#: Only a hung store (or a worker that cannot start) reaches these.
START_GUARD_S = 120.0
TASK_GUARD_S = 300.0

Task = Callable[..., Any]


class WorkerError(RuntimeError):
    """A worker process failed, died or did not answer."""


@dataclasses.dataclass(frozen=True)
class Shared:
    """What a pool's workers share: a barrier, a count of running writers, a "done" event."""

    barrier: Any
    left: Any
    finished: Any

    def reset(self, writers: int) -> None:
        if self.barrier.broken:
            self.barrier.reset()
        with self.left.get_lock():
            self.left.value = writers
        self.finished.clear()


@dataclasses.dataclass
class TaskContext:
    """What a task gets besides its arguments (in the worker process)."""

    store: Any
    number: int
    shared: Shared | None
    _conn: Any

    def report(self, *message: Any) -> None:
        """Send ``message`` to the driving process now, while the task goes on."""
        self._conn.send(("progress", message))


def _worker_main(number: int, conn: Any, shared: Shared | None) -> None:
    stores: dict[str, Any] = {}
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        kind, spec, task, args = message
        try:
            key = repr(spec)
            if kind == "forget":
                close_quietly(stores.pop(key, None))
                result = None
            else:
                store = stores.get(key)
                if store is None:
                    store = stores[key] = open_reopened(spec)
                result = (
                    None if task is None else task(TaskContext(store, number, shared, conn), *args)
                )
            conn.send(("ok", result))
        except BaseException as error:
            if shared is not None:
                shared.barrier.abort()  # never leave the other workers waiting for this one
            text = f"{describe_error(error)[0]}\n{traceback.format_exc(limit=12)}"
            conn.send(("error", text))
    for store in stores.values():
        close_quietly(store)


class Worker:
    """One spawned process, driven through its own pipe (see the module docstring)."""

    def __init__(self, name: str, number: int = 0, shared: Shared | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_worker_main, args=(number, child, shared), name=name, daemon=True
        )
        self.process.start()
        child.close()
        self._started = False

    def receive(self, guard: float) -> tuple[str, Any] | None:
        """The worker's next message; None if it sent none within ``guard`` seconds.

        Raises ``WorkerError`` when the process died without a word.
        """
        ready = multiprocessing.connection.wait([self.conn, self.process.sentinel], guard)
        if self.conn in ready:
            try:
                message: tuple[str, Any] = self.conn.recv()
            except (EOFError, OSError):
                pass
            else:
                return message
        if ready:
            self.process.join(1)
            raise WorkerError(f"{self.name} exited (code {self.process.exitcode})")
        return None

    def _started_or_fail(self) -> None:
        if self._started:
            return
        message = self.receive(START_GUARD_S)
        if message is None or message[0] != "ready":
            raise WorkerError(f"{self.name} did not start: {message!r}")
        self._started = True

    def submit(self, kind: str, spec: ReopenSpec, task: Task | None = None, *args: Any) -> None:
        """Ask the worker to ``run`` a task, ``open`` a store or ``forget`` it; answer later."""
        self._started_or_fail()
        self.conn.send((kind, spec, task, args))

    def answer(
        self, guard: float = TASK_GUARD_S, on_progress: Callable[[Any], None] | None = None
    ) -> Any:
        """The result of the request submitted last; progress reports go to ``on_progress``."""
        deadline = time.monotonic() + guard
        while True:
            message = self.receive(max(0.0, deadline - time.monotonic()))
            if message is None:
                raise WorkerError(f"{self.name} did not answer within {guard:.0f}s")
            kind, payload = message
            if kind == "progress":
                if on_progress is not None:
                    on_progress(payload)
            elif kind == "error":
                raise WorkerError(f"{self.name}: {payload}")
            else:
                return payload

    def call(self, kind: str, spec: ReopenSpec, task: Task | None = None, *args: Any) -> Any:
        self.submit(kind, spec, task, *args)
        return self.answer()

    def kill(self) -> list[tuple[str, Any]]:
        """SIGKILL the process; the messages it sent before it died, then the pipe is closed."""
        self.process.kill()
        self.process.join(TASK_GUARD_S)
        left: list[tuple[str, Any]] = []
        with contextlib.suppress(WorkerError):
            while (message := self.receive(0)) is not None:
                left.append(message)
        self.conn.close()
        return left

    def stop(self) -> None:
        """Let the worker close its stores and exit (killed if it does not)."""
        if self.process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
            self.process.join(30)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
        self.conn.close()


class ProcessPool:
    """``size`` workers sharing a barrier of ``parties`` (default: one per worker)."""

    def __init__(self, size: int, parties: int | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        shared = Shared(
            barrier=context.Barrier(parties or size),
            left=context.Value("i", 0),
            finished=context.Event(),
        )
        self._shared: Shared | None = shared
        self.workers = [Worker(f"asm-worker-{n}", n, shared) for n in range(size)]

    @property
    def shared(self) -> Shared:
        if self._shared is None:
            raise WorkerError("the pool was stopped")
        return self._shared

    @property
    def size(self) -> int:
        return len(self.workers)

    @property
    def alive(self) -> bool:
        return bool(self.workers) and all(w.process.is_alive() for w in self.workers)

    def run(self, spec: ReopenSpec, task: Task, *args: Any) -> list[Any]:
        """Run ``task`` in every worker at once; the results in worker order."""
        return self.run_each(spec, [(task, args)] * self.size)

    def run_each(
        self, spec: ReopenSpec, tasks: Sequence[tuple[Task, tuple[Any, ...]]]
    ) -> list[Any]:
        """Run ``tasks[i]`` in worker ``i``; the results in that order."""
        if self.shared.barrier.broken:
            self.shared.barrier.reset()
        for worker, (task, args) in zip(self.workers, tasks, strict=False):
            worker.submit("run", spec, task, *args)
        return self._answers(len(tasks))

    def forget(self, spec: ReopenSpec) -> None:
        """Close every worker's instance of this store (before the test's own store closes).

        Workers that died took their instances with them; they are left to ``ProcessPools``.
        """
        living = [w for w in self.workers if w.process.is_alive()]
        for worker in living:
            worker.submit("forget", spec)
        for worker in living:
            with contextlib.suppress(WorkerError):
                worker.answer()

    def _answers(self, count: int) -> list[Any]:
        results: list[Any] = []
        errors: list[str] = []
        for worker in self.workers[:count]:
            try:
                results.append(worker.answer())
            except WorkerError as error:
                self.shared.finished.set()  # let readers in the driving process stop
                errors.append(str(error))
                results.append(None)
        if errors:
            raise WorkerError("a worker process failed:\n" + "\n".join(errors))
        return results

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []
        # Release the shared semaphores now, not whenever the last reference to the pool goes:
        # a failed test's traceback keeps it alive, possibly past the multiprocessing state that
        # registered them, and the resource tracker then reports unknown names.
        self._shared = None


@contextlib.contextmanager
def process_pool(size: int, parties: int | None = None) -> Iterator[ProcessPool]:
    pool = ProcessPool(size, parties)
    try:
        yield pool
    finally:
        pool.stop()


__all__ = [
    "START_GUARD_S",
    "TASK_GUARD_S",
    "ProcessPool",
    "Shared",
    "TaskContext",
    "Worker",
    "WorkerError",
    "process_pool",
]
