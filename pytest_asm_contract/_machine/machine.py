"""The machine: the rules of every area combined into one RuleBasedStateMachine.

The rules draw; the :class:`~.referee.Referee` built for each example calls the store and judges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from hypothesis.stateful import RuleBasedStateMachine, invariant

from pytest_asm_contract._contract.port import close_store
from pytest_asm_contract._machine.append_rules import AppendRules
from pytest_asm_contract._machine.checks import check_state, final_check
from pytest_asm_contract._machine.coverage import Coverage
from pytest_asm_contract._machine.flush_rules import FlushRules
from pytest_asm_contract._machine.inputs import Pools
from pytest_asm_contract._machine.mutation_rules import CallerMutationRules
from pytest_asm_contract._machine.pipeline_rules import PipelineRules
from pytest_asm_contract._machine.read_rules import ReadRules
from pytest_asm_contract._machine.referee import Referee
from pytest_asm_contract._machine.session_rules import SessionAndRunRules


class ContractMachine(
    SessionAndRunRules,
    AppendRules,
    FlushRules,
    PipelineRules,
    ReadRules,
    CallerMutationRules,
    RuleBasedStateMachine,
):
    """Drives one fresh store per example and compares it with the contract model.

    Use :func:`contract_machine` to bind it to a store factory and a :class:`Coverage`.
    """

    store_factory: ClassVar[Callable[[], Any]]
    coverage: ClassVar[Coverage]

    def __init__(self) -> None:
        super().__init__()
        self.coverage.examples += 1
        self.pools = Pools(["s1", "s2", "s3"], ["r1", "r2", "r3"], ["agent-1"], [])
        self.referee = Referee(type(self).store_factory(), self.coverage, self.pools)
        self._cache_strategies()
        self.fresh = 0
        self.used_event_ids = []
        self.pipeline = None
        self.last_flush = None

    @invariant()
    def store_matches_model(self) -> None:
        """After every write, the store reads back what the model holds."""
        self.coverage.steps += 1
        if self.referee.dirty:
            check_state(self.referee)

    def teardown(self) -> None:
        try:
            if not self.referee.failed:
                final_check(self.referee)
        finally:
            close_store(self.referee.store)
