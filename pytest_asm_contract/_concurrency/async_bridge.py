"""How the kit drives an async store (docs/async.md): behind a synchronous facade, on a loop of its
own.

Every store the kit builds goes through a :class:`StoreBuilder`. A sync store comes back as it
is. An async store (``is_async_store``) is built inside a :class:`LoopThread` the builder
starts, one per store instance, and comes back wrapped in an :class:`AsyncStoreFacade`: the 14
operations as plain methods that run the store's coroutines on that loop and return their
results, or raise their exceptions unchanged (a ``StoreError`` or a raw one: the suite judges
either). Closing the facade awaits the store's ``close()`` on its loop, then stops the loop and
joins its thread. So the whole suite runs on async stores unchanged, and its threads, calling one
facade at once, become concurrent tasks on the store's loop (ASYNC-3).

Side ports (``--asm-query``, ``--asm-artifact-registry``, ``--asm-maintenance``) receive the
facade; async side ports are not supported yet.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable
from typing import Any

from pytest_asm_contract._concurrency.event_loop import LoopThread
from pytest_asm_contract._contract.async_port import is_async_store
from pytest_asm_contract._contract.locate import locate
from pytest_asm_contract._contract.port import (
    FAULT_HOOK,
    REOPEN_HOOK,
    SESSION_STORE_OPERATIONS,
    ReopenSpec,
)

#: Members the facade sets on itself rather than forwarding through ``__getattr__``: the kit's
#: Protocol checks (``isinstance(store, FaultInjectable)``) look them up statically on Python
#: 3.12 and later, where ``__getattr__`` is not consulted.
_BRIDGED = (*SESSION_STORE_OPERATIONS, FAULT_HOOK, REOPEN_HOOK)
_numbers = itertools.count(1)


class AsyncStoreFacade:
    """The kit's synchronous view of one async store, which lives on ``loop``.

    The operations the store has (and its hooks) are set on the facade, so ``missing_operations``
    sees what the store lacks; every other attribute (``capabilities``, ``asm_*_unavailable``,
    anything a conftest reads) is forwarded, a coroutine method made a plain one like the
    operations.
    """

    def __init__(self, store: object, loop: LoopThread) -> None:
        self._asm_store = store
        self._asm_loop = loop
        self._asm_closed = False
        for name in _BRIDGED:
            member = getattr(store, name, None)
            if callable(member):
                setattr(self, name, self._bridge(member))

    @property
    def asm_async_store(self) -> object:
        """The async store behind this facade."""
        return self._asm_store

    @property
    def asm_loop_thread(self) -> LoopThread:
        """The loop (and thread) the store lives on."""
        return self._asm_loop

    def _bridge(self, member: Any) -> Any:
        if not inspect.iscoroutinefunction(member):
            return member  # a plain hook runs in the caller's thread, as on a sync store
        run = self._asm_loop.run

        # updated=(): copying __dict__ would copy a markcoroutinefunction marker, and the bridged
        # method must look plain; __wrapped__ keeps the signature for PORT-1's checks.
        @functools.wraps(member, updated=())
        def bridged(*args: Any, **kwargs: Any) -> Any:
            return run(lambda: member(*args, **kwargs))

        return bridged

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_asm_"):  # not set yet (a half-built facade): never forward these
            raise AttributeError(name)
        return self._bridge(getattr(self._asm_store, name))

    def close(self) -> None:
        """Run the store's ``close()`` on its loop (awaited when async), then stop the loop."""
        if self._asm_closed:
            return
        self._asm_closed = True
        try:
            close = getattr(self._asm_store, "close", None)
            if callable(close):
                self._asm_loop.run(close)
        finally:
            self._asm_loop.stop()

    def __repr__(self) -> str:
        return f"<async store {self._asm_store!r} on event loop {self._asm_loop.name}>"


def _target_of(factory: Callable[..., Any]) -> Callable[..., Any]:
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory


def _on_loop(factory: Callable[[], Any], name: str) -> Any:
    """``factory()`` inside a new loop's thread (awaited when it returns an awaitable): the store,
    behind a facade when it is async. A sync store built there is returned as it is."""
    loop = LoopThread(f"asm-loop-{next(_numbers)}-{name}")
    try:
        store = loop.run(factory)
        if is_async_store(store):
            return AsyncStoreFacade(store, loop)
    except BaseException:
        loop.stop()
        raise
    loop.stop()
    return store


class StoreBuilder:
    """A store factory through which the kit builds every store: ``builder()`` returns a fresh
    store, an async one behind its facade.

    An async store is built on its own loop when that is known before building: ``factory`` (or
    the callable a ``functools.partial`` wraps) is an async store class, or an ``async def``
    function (awaited on the loop). Any other factory is called in the calling thread, as for a
    sync store; an async store it returns (or an awaitable it returns, awaited on the loop) is
    then given a loop of its own.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        target = _target_of(factory)
        self._name = getattr(target, "__qualname__", type(target).__name__)
        self._async_first = inspect.iscoroutinefunction(target) or (
            isinstance(target, type) and is_async_store(target)
        )

    def __call__(self) -> Any:
        if self._async_first:
            return _on_loop(self.factory, self._name)
        built = self.factory()
        if inspect.isawaitable(built):
            return _on_loop(lambda: built, self._name)
        if is_async_store(built):
            return AsyncStoreFacade(built, LoopThread(f"asm-loop-{next(_numbers)}-{self._name}"))
        return built

    def __repr__(self) -> str:
        return f"StoreBuilder({self.factory!r})"


def store_builder(factory: Callable[[], Any]) -> StoreBuilder:
    """``factory`` as a :class:`StoreBuilder` (a builder is returned as it is)."""
    return factory if isinstance(factory, StoreBuilder) else StoreBuilder(factory)


def open_reopened(spec: ReopenSpec) -> Any:
    """Build a store from a reopen spec in this process (a worker, or a fresh reader), an async
    one on a loop of its own as the kit builds the store under test."""
    target, kwargs = spec
    return StoreBuilder(functools.partial(locate(target), **kwargs))()


__all__ = ["AsyncStoreFacade", "StoreBuilder", "open_reopened", "store_builder"]
