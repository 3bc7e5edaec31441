"""MNT-7: maintenance running while clients append and read (``_concurrency/maintenance_load.py``).

Writers append, readers read whole and tail with ``after=cursor``, while one thread prunes a
session again and again and another hard-deletes sessions soft-deleted long ago. The workload is
fixed by ``--asm-seed``; a failure names the read that saw a prune or delete in part, a number
given twice, or an event removed that no prune selects, with the seed.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.maintenance_load import LoadShape, check_load, run_load
from pytest_asm_contract._concurrency.plans import derive_seed
from pytest_asm_contract._concurrency.threads import ThreadsFailed
from pytest_asm_contract._plugin.marks import mark_violated
from pytest_asm_contract._plugin.replay import replay_command

#: Runs per profile; each run is a fresh set of sessions on the same store.
ROUNDS = {"quick": 3, "ci": 4, "deep": 20}


class TestMaintenanceUnderLoad:
    @rule("MNT-7", "MNT-2")
    def test_prunes_and_deletes_beside_writers_and_readers(
        self,
        request: pytest.FixtureRequest,
        asm_store: Any,
        asm_maintenance: Any,
        asm_seed: int,
        asm_profile: str,
    ) -> None:
        name = "test_prunes_and_deletes_beside_writers_and_readers"
        for index in range(ROUNDS[asm_profile]):
            seed = derive_seed(asm_seed, name, index)
            try:
                history = run_load(asm_store, asm_maintenance, LoadShape(), seed, f"mnt{index}")
            except ThreadsFailed as error:
                mark_violated(request.node, "MNT-7")
                pytest.fail(f"MNT-7: {error} (seed {seed})", pytrace=False)
            findings = check_load(history)
            if findings:
                mark_violated(request.node, *dict.fromkeys(f.rule for f in findings))
                lines = [f"{f.rule}: {f.text}" for f in findings]
                replay = replay_command(request.config, name)
                pytest.fail("\n".join([*lines, f"replay: {replay}"]), pytrace=False)


__all__ = ["TestMaintenanceUnderLoad"]
