"""The in-memory reference stores, and a strict variant of them, pass every rule of the kit; the
in-memory session store with its QueryAPI, artifact registry and Maintenance port."""

from __future__ import annotations

import pytest

from pytest_asm_contract import Scope
from tests.verdicts import may_skip_for, run_kit

STORES = [
    ("reference_stores.memory:InMemorySessionStore", Scope.SESSION_STORE),
    ("tests.stores.memory.strict:StrictInMemorySessionStore", Scope.SESSION_STORE),
    ("reference_stores.memory:InMemoryArtifactStore", Scope.ARTIFACT_STORE),
]


@pytest.mark.parametrize(("store", "scope"), STORES, ids=[s for s, _ in STORES])
def test_the_store_passes_every_rule(pytester: pytest.Pytester, store: str, scope: Scope) -> None:
    artifact = scope is Scope.ARTIFACT_STORE
    flag = "--asm-artifact-store" if artifact else "--asm-store"
    query = store == "reference_stores.memory:InMemorySessionStore"
    extra = (
        [
            "--asm-query=reference_stores.memory:InMemoryQueryAPI",
            "--asm-artifact-registry=reference_stores.memory:InMemoryArtifactRegistry",
            "--asm-maintenance=reference_stores.memory:InMemoryMaintenance",
        ]
        if query
        else []
    )
    result, verdicts = run_kit(pytester, f"{flag}={store}", *extra)
    assert result.ret == 0, result.stdout.str()[-3000:]
    wrong = verdicts.unexpected(scope, may_skip=set() if artifact else may_skip_for(store))
    if query:
        wrong |= verdicts.unexpected(Scope.QUERY_API)
        wrong |= verdicts.unexpected(Scope.ARTIFACT_REGISTRY)
        wrong |= verdicts.unexpected(Scope.MAINTENANCE)
    assert not wrong, f"{store}: {wrong}"
