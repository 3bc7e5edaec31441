"""FLUSH-3, BATCH-6, SEQ-1, IDEM-1 (``shared_backend``): a writer process killed mid-commit.

A writer process, opened from the store's ``asm_reopen_spec()``, commits flushes, batches and
appends in a loop and is killed with SIGKILL at a seeded point inside a chosen commit, several
times; after each kill a fresh instance must show every commit whole or absent, gap-free numbers,
and take new writes, including the retry of the commit that was in flight
(``pytest_asm_contract._concurrency.crash``, docs/histories.md).
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from pytest_asm_contract import ReopenSpec, rule
from pytest_asm_contract._concurrency.crash import CrashRounds, CrashSetupError
from pytest_asm_contract._concurrency.plans import derive_seed
from pytest_asm_contract._plugin.marks import mark_violated
from pytest_asm_contract._plugin.replay import replay_command

#: Kills per profile (each one a new writer process).
ROUNDS = {"quick": 3, "ci": 6, "deep": 30}
COMMITS_PER_WRITER = 40


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
class TestCrash:
    @rule("FLUSH-3", "BATCH-6", "SEQ-1", "IDEM-1", capability="shared_backend")
    def test_killed_writer_leaves_every_commit_whole_or_absent(
        self,
        request: pytest.FixtureRequest,
        asm_store: Any,
        asm_reopen_spec: ReopenSpec,
        asm_seed: int,
        asm_profile: str,
    ) -> None:
        seed = derive_seed(asm_seed, "test_killed_writer")
        crashes = CrashRounds(asm_store, asm_reopen_spec, seed, commits=COMMITS_PER_WRITER)
        try:
            crashes.run(ROUNDS[asm_profile])
        except CrashSetupError as error:
            pytest.fail(f"{error} (seed {seed})", pytrace=False)
        failed = [r for r in crashes.reports if r.problems]
        if not failed:
            return
        problems = [p for r in failed for p in r.problems]
        mark_violated(request.node, *sorted({p.rule for p in problems}))
        lines = [r.summary() for r in crashes.reports]
        lines += [f"  {p.rule}: {p.message}" for p in problems]
        lines += [
            f"seed: {seed} (from --asm-seed={asm_seed})",
            "replay: " + replay_command(request.config, "test_killed_writer"),
        ]
        pytest.fail("\n".join(lines), pytrace=False)


__all__ = ["TestCrash"]
