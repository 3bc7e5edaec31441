"""The kit fails every broken store of the zoo on the rules it breaks, and only there.

Each broken store runs the whole bundled suite but the state machine (``tests/plugin/
test_stateful.py`` runs that one) at the quick budget: every rule in its ``BREAKS`` must fail;
the rules in its ``ALSO`` are collateral that its mistake legitimately drags along (they may fail
or pass); every other rule of its kind must pass, or be skipped for a capability or hook the
store does not offer. So a kit that failed everything could not pass this, and neither could one
that passed everything. The correct reference stores are checked the same way in
``tests/stores/memory/test_kit.py``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from pytest_asm_contract import Scope
from pytest_asm_contract._contract.async_port import is_async_store
from tests.conftest import service_unavailable
from tests.verdicts import may_skip_for, run_kit
from tests.zoo import EXPECTED, kit_arguments, mutants

STATEFUL_TEST = "test_store_follows_the_contract_model"
# tests/zoo/sequences.py holds bugs that only a sequence of calls shows: the state machine alone
# catches them (tests/plugin/test_stateful.py). Every other broken store is caught here.
MUTANTS = [(t, c) for t, c in mutants() if not t.startswith("tests.zoo.sequences:")]
ROOT = Path(__file__).resolve().parents[2]


def test_the_zoo_is_exactly_the_registered_stores() -> None:
    found = {target for target, _ in mutants()}
    assert found == EXPECTED, (
        f"not registered in tests/zoo/__init__.py: {sorted(found - EXPECTED)}; "
        f"registered but not found (no BREAKS?): {sorted(EXPECTED - found)}"
    )


@pytest.mark.parametrize(("target", "store_class"), MUTANTS, ids=[t for t, _ in MUTANTS])
def test_broken_store_fails_its_rules_and_passes_the_others(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, target: str, store_class: type
) -> None:
    problem = getattr(store_class, "service_problem", lambda: None)()
    if problem is not None:
        service_unavailable(problem)
    on_a_server = hasattr(store_class, "service_problem")
    if on_a_server:  # the zoo's module, importable in the process of its own
        search_path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(search_path))
    kind = getattr(store_class, "KIND", "session")
    result, verdicts = run_kit(
        pytester,
        *kit_arguments(target, kind),
        "--asm-profile=quick",
        "--asm-full-run",  # every check runs, so that collateral beyond ALSO shows
        "-k",
        f"not {STATEFUL_TEST}",
        # A store on a server runs in a process of its own, as a user runs it: pytester's
        # in-process runs unload the modules each imported, so a driver module re-imported
        # by one run and one kept by SQLAlchemy from an earlier run can differ, and the kit's
        # driver patches (on the module imported now) then miss the store's writes.
        subprocess=on_a_server,
    )
    assert result.ret == 1, result.stdout.str()[-3000:]
    breaks, also = set(store_class.BREAKS), set(getattr(store_class, "ALSO", ()))
    missed = sorted(breaks - verdicts.failed)
    assert not missed, f"{target} ({store_class.__doc__}) was not caught on {missed}"
    if getattr(store_class, "OTHERS_NOT_RUN", False):
        return  # the store lacks the port: only PORT-1 runs (see its docstring)
    scope = {
        "artifact": Scope.ARTIFACT_STORE,
        "query": Scope.QUERY_API,
        "registry": Scope.ARTIFACT_REGISTRY,
        "maintenance": Scope.MAINTENANCE,
    }.get(kind, Scope.SESSION_STORE)
    allowed = {
        "may_fail": breaks | also,
        # collateral may also stop a check before its verdict (the fault checks stop at FLUSH-3)
        "may_skip": also if kind != "session" else also | may_skip_for(target),
    }
    wrong = verdicts.unexpected(scope, **allowed)
    if is_async_store(store_class):
        wrong |= verdicts.unexpected(Scope.ASYNC_STORE, **allowed)
    assert not wrong, (
        f"{target} should pass the rules it does not break; list true collateral in its ALSO, "
        f"with the reason: {wrong}"
    )


#: Correct stores written from the docs alone; the zoo's dict and Redis stores break them. The
#: async facade over the in-memory store runs the same suite through the kit's event-loop bridge.
CORRECT = [
    "tests.zoo.dict_store:DictSessionStore",
    "tests.zoo.redis_store:RedisSessionStore",
    "tests.zoo.async_stores:AsyncThreadFacade",
]


@pytest.mark.parametrize("target", CORRECT)
def test_correct_store_written_from_the_docs_passes_every_rule(
    pytester: pytest.Pytester, target: str
) -> None:
    store_class = _locate_class(target)
    problem = getattr(store_class, "service_problem", lambda: None)()
    if problem is not None:
        service_unavailable(problem)
    result, verdicts = run_kit(pytester, f"--asm-store={target}", "--asm-profile=quick")
    assert result.ret == 0, result.stdout.str()[-3000:]
    skips = may_skip_for(target)
    wrong = verdicts.unexpected(Scope.SESSION_STORE, may_skip=skips)
    if is_async_store(store_class):
        wrong |= verdicts.unexpected(Scope.ASYNC_STORE, may_skip=skips)
    assert not wrong, f"{target}: {wrong}"


def _locate_class(target: str) -> type:
    module, _, name = target.partition(":")
    found: type = getattr(importlib.import_module(module), name)
    return found
