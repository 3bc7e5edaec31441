"""The machine: the rule mixins of every area combined into one RuleBasedStateMachine."""

from __future__ import annotations

import collections
from typing import Any

from hypothesis.stateful import RuleBasedStateMachine

from pytest_asm_contract._contract.model import Event
from pytest_asm_contract._contract.port import close_store, declared_capabilities
from pytest_asm_contract._machine.appends import AppendRules
from pytest_asm_contract._machine.base import LastWrite, Pipeline
from pytest_asm_contract._machine.checks import StateChecks
from pytest_asm_contract._machine.constants import Action
from pytest_asm_contract._machine.flushes import FlushRules
from pytest_asm_contract._machine.inputs import Pools
from pytest_asm_contract._machine.mutations import CallerMutationRules
from pytest_asm_contract._machine.oracle import ContractModel
from pytest_asm_contract._machine.pipeline import PipelineRules
from pytest_asm_contract._machine.reads import ReadRules
from pytest_asm_contract._machine.repro import Lazy
from pytest_asm_contract._machine.sessions import SessionAndRunRules


class ContractMachine(
    SessionAndRunRules,
    AppendRules,
    FlushRules,
    PipelineRules,
    ReadRules,
    CallerMutationRules,
    StateChecks,
    RuleBasedStateMachine,
):
    """Drives one fresh store per example and compares it with the contract model.

    Use :func:`contract_machine` to bind it to a store factory and a :class:`Coverage`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.coverage.examples += 1
        self.store = type(self).store_factory()
        capabilities = declared_capabilities(self.store)
        self.model = ContractModel(referential_integrity="referential_integrity" in capabilities)
        self.pools = Pools(["s1", "s2", "s3"], ["r1", "r2", "r3"], ["agent-1"], [])
        self._cache_strategies()
        self.steps: list[str | Lazy] = []
        self.full_steps: list[str | Lazy] = []
        self.fresh = 0
        self.used_event_ids: list[str] = []
        # Sessions deleted with events and not appended to since, with the number a counter
        # that was never reset would hand out next, minus one (SES-4).
        self.restarted: dict[str, int] = {}
        self.ever_numbered: collections.Counter[str] = collections.Counter()
        self.removed: dict[str, Event] = {}  # events removed by a delete, by id (SES-4)
        self.last = LastWrite()
        self.dirty = False
        self.comparing = False
        self.failed = False
        self.pipeline: Pipeline | None = None
        self.last_flush: Any = None
        # Every store operation, as (method, args, kwargs): the example, replayable (see minimize).
        self.actions: list[Action] = []

    def teardown(self) -> None:
        try:
            if not self.failed:
                self._final_check()
        finally:
            close_store(self.store)

    def _final_check(self) -> None:
        """Compare everything once more at the end of the example."""
        self.last = LastWrite(op="end of example")
        self._check_state(full=True)
