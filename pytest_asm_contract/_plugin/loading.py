"""Turn ``--asm-store=module:attr`` and its options into a store factory, or a usage error.

The factory is a :class:`StoreBuilder`: an async store (docs/async.md) comes back behind the
kit's synchronous facade, built on an event loop of its own.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pytest_asm_contract._concurrency.async_bridge import store_builder
from pytest_asm_contract._contract.async_port import MixedPortError
from pytest_asm_contract._contract.locate import TargetError, locate
from pytest_asm_contract._contract.port import (
    ARTIFACT_STORE_OPERATIONS,
    SESSION_STORE_OPERATIONS,
    V08_OPERATIONS,
    close_store,
    missing_operations,
)

StoreFactory = Callable[[], Any]


@dataclasses.dataclass(frozen=True)
class StoreSpec:
    """Where a store comes from: ``target`` is ``module:attr``; ``options`` are its kwargs."""

    target: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        opts = " ".join(f"{k}={v}" for k, v in self.options)
        return f"{self.target} {opts}".strip()


def parse_options(raw: Sequence[str]) -> tuple[tuple[str, str], ...]:
    parsed = []
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise pytest.UsageError(
                f"--asm-store-option expects KEY=VALUE with KEY a Python identifier, got {item!r}"
            )
        parsed.append((key.strip(), value))
    return tuple(parsed)


def resolve_target(target: str, flag: str = "--asm-store") -> Any:
    """Import ``module:attr`` (attr may be dotted) and return the attribute."""
    try:
        obj = locate(target)
    except TargetError as error:
        raise pytest.UsageError(f"{flag}={target}: {error}") from None
    if not callable(obj):
        attr = target.partition(":")[2]
        raise pytest.UsageError(
            f"{flag}={target}: {attr!r} is of type {type(obj).__name__}, not a class or a "
            "callable that returns a fresh store"
        )
    return obj


def build_factory(spec: StoreSpec, flag: str = "--asm-store") -> StoreFactory:
    target = resolve_target(spec.target, flag)
    try:
        return store_builder(functools.partial(target, **dict(spec.options)))
    except MixedPortError as error:
        raise pytest.UsageError(f"{flag}={spec.label}: {error}") from None


def _build_once(factory: StoreFactory, spec: StoreSpec, flag: str) -> Any:
    try:
        return factory()
    except MixedPortError as error:  # a factory function's store, seen once built
        raise pytest.UsageError(f"{flag}={spec.label}: {error}") from None
    except Exception as error:
        raise pytest.UsageError(
            f"{flag}={spec.label}: building the store raised {type(error).__name__}: {error}"
        ) from None


def check_artifact_store(factory: StoreFactory, spec: StoreSpec) -> None:
    store = _build_once(factory, spec, "--asm-artifact-store")
    try:
        missing = missing_operations(store, ARTIFACT_STORE_OPERATIONS)
        if missing:
            raise pytest.UsageError(
                f"--asm-artifact-store={spec.label}: the factory returned an object of type "
                f"{type(store).__name__}, which is not an artifact store (missing: "
                f"{', '.join(missing)})"
            )
    finally:
        close_store(store)


def check_session_store(factory: StoreFactory, spec: StoreSpec) -> None:
    """Build one store to turn a broken factory or a non-store into one clear usage error.

    A store missing only v0.8 operations passes here: PORT-1 reports it as a single failure.
    """
    store = _build_once(factory, spec, "--asm-store")
    try:
        missing = missing_operations(store)
        v07_core = [op for op in SESSION_STORE_OPERATIONS if op not in V08_OPERATIONS]
        if set(v07_core) <= set(missing):
            raise pytest.UsageError(
                f"--asm-store={spec.label}: the factory returned an object of type "
                f"{type(store).__name__}, which is not a session store (it has none of: "
                f"{', '.join(v07_core)})"
            )
    finally:
        close_store(store)
