"""The contract as a Hypothesis state machine, checked against an independent model.

:class:`ContractMachine` drives a store with every operation of the port (sessions, runs, the
three append paths, batches with repeated and foreign ids and mixed sessions, valid and invalid
flushes, reads with random filter combinations, caller mutations of returned objects) and with the
shape of real ASM traffic (a run saved as running, its events appended by the pipeline in batches,
then one final flush). After every call it compares the store with
:class:`~.oracle.ContractModel`; after every write it compares the whole state.
Every check names the rule it enforces, and a failure raises a :class:`ContractViolation` of that
rule carrying the store calls made so far as runnable Python.

Each rule has its own violation class. A run stops at its first violation, which the kit then
cuts down by replaying the recorded operations (``minimizing``, ``simplifying``); Hypothesis's
own shrinking is not used, as it has no public time limit. :class:`Coverage` records what the
machine exercised, so a run that never reached a key rule (for example because the store
rejected every batch) can fail instead of passing vacuously.

Use :func:`run_contract_machine` to run it; the bundled suite module ``test_stateful.py`` does so
for ``--asm-store``.

The rules draw, a referee judges. The machine's rules only draw inputs and hand each store
operation to the example's :class:`Referee` (``self.referee.act(save_session, session)``); the
referee calls the store, judges the result against the model, records the call and raises the
violation. The recorded operations replay on a fresh referee alone, which is how a failing
example is cut down.

Where things live (import them from this package; the modules are an implementation detail):

- ``constants``: :data:`STATEFUL_RULES` and the constants the parts share.
- ``violations``: :class:`ContractViolation`, one subclass per rule, and :func:`violations_in`.
- ``coverage``: :class:`Probe`, :data:`PROBES` and :class:`Coverage`.
- ``oracle``: :class:`~.oracle.ContractModel`, what a correct store does; ``values``: the value
  helpers it shares with the judging (strict comparison, re-validation, NULs, confusable ids).
- ``repro``: rendering calls as Python, and reproducer files.
- judging, around :class:`Referee`:

  - ``referee``: the referee (the store, the model, the recorded calls and the bookkeeping of
    the last write), and how one store call is run, judged and recorded;
  - ``writes`` and ``reads``: the judged operations the rules hand over, as functions of the
    referee;
  - ``checks``: reading the state back after writes, and at the end of an example;
  - ``comparisons``: comparing returned values with the model, naming the rule a difference
    breaks.

- drawing, in :class:`ContractMachine` (``machine``), combined from one rule class per area:

  - ``inputs``: the strategies the machine draws from, and :class:`Pools` of ids and instants;
  - ``drawing``: the base of the rule classes: a step's inputs, and the state drawing keeps;
  - ``session_rules``, ``append_rules``, ``flush_rules``, ``pipeline_rules``, ``read_rules``,
    ``mutation_rules``: the rules of those areas.

- ``minimizing``: :func:`contract_machine`, :func:`replay` and :func:`minimize`.
- ``simplifying``: :func:`simplify`, which makes a minimal reproduction readable.
- ``running``: :func:`machine_settings` and :func:`run_contract_machine`.
- ``reporting``: :func:`confirm` and :func:`explain`, which turn violations into a message.
"""

from __future__ import annotations

from pytest_asm_contract._machine.constants import DEFAULT_STEP_COUNT as DEFAULT_STEP_COUNT
from pytest_asm_contract._machine.constants import EVENT_WRITES as EVENT_WRITES
from pytest_asm_contract._machine.constants import EXTRA_ROUNDS as EXTRA_ROUNDS
from pytest_asm_contract._machine.constants import MUTATION_KEY as MUTATION_KEY
from pytest_asm_contract._machine.constants import RUN_WRITES as RUN_WRITES
from pytest_asm_contract._machine.constants import SESSION_WRITES as SESSION_WRITES
from pytest_asm_contract._machine.constants import STATEFUL_RULES
from pytest_asm_contract._machine.constants import Action as Action
from pytest_asm_contract._machine.coverage import PROBES, Coverage, Probe
from pytest_asm_contract._machine.inputs import BAD_ELEMENTS as BAD_ELEMENTS
from pytest_asm_contract._machine.inputs import COSTS as COSTS
from pytest_asm_contract._machine.inputs import EVENT_TYPES as EVENT_TYPES
from pytest_asm_contract._machine.inputs import FEW_TYPES as FEW_TYPES
from pytest_asm_contract._machine.inputs import FINAL_RUN_STATUSES as FINAL_RUN_STATUSES
from pytest_asm_contract._machine.inputs import HOSTILE_ID as HOSTILE_ID
from pytest_asm_contract._machine.inputs import HOSTILE_OBJECT as HOSTILE_OBJECT
from pytest_asm_contract._machine.inputs import HOSTILE_TAGS as HOSTILE_TAGS
from pytest_asm_contract._machine.inputs import ID_STYLE as ID_STYLE
from pytest_asm_contract._machine.inputs import INITIAL_SESSIONS as INITIAL_SESSIONS
from pytest_asm_contract._machine.inputs import INSIDE_OFFSET as INSIDE_OFFSET
from pytest_asm_contract._machine.inputs import INVALID_EVENTS as INVALID_EVENTS
from pytest_asm_contract._machine.inputs import INVALID_SESSIONS as INVALID_SESSIONS
from pytest_asm_contract._machine.inputs import NON_MODELS as NON_MODELS
from pytest_asm_contract._machine.inputs import NOTHING as NOTHING
from pytest_asm_contract._machine.inputs import ONE_IN_FOUR as ONE_IN_FOUR
from pytest_asm_contract._machine.inputs import ONE_IN_SIX as ONE_IN_SIX
from pytest_asm_contract._machine.inputs import OPTIONAL_ID as OPTIONAL_ID
from pytest_asm_contract._machine.inputs import OPTIONAL_OBJECT as OPTIONAL_OBJECT
from pytest_asm_contract._machine.inputs import OPTIONAL_TEXT as OPTIONAL_TEXT
from pytest_asm_contract._machine.inputs import PAGE_ARGUMENTS as PAGE_ARGUMENTS
from pytest_asm_contract._machine.inputs import RUN_EXTRAS as RUN_EXTRAS
from pytest_asm_contract._machine.inputs import RUN_STATUSES as RUN_STATUSES
from pytest_asm_contract._machine.inputs import SESSION_EXTRAS as SESSION_EXTRAS
from pytest_asm_contract._machine.inputs import SESSION_STATUSES as SESSION_STATUSES
from pytest_asm_contract._machine.inputs import SMALL_JSON as SMALL_JSON
from pytest_asm_contract._machine.inputs import STATUS_FILTER_KIND as STATUS_FILTER_KIND
from pytest_asm_contract._machine.inputs import SUPPLIED_SEQUENCE as SUPPLIED_SEQUENCE
from pytest_asm_contract._machine.inputs import TURNS as TURNS
from pytest_asm_contract._machine.inputs import Pools as Pools
from pytest_asm_contract._machine.inputs import pools as pools
from pytest_asm_contract._machine.inputs import weighted as weighted
from pytest_asm_contract._machine.machine import ContractMachine
from pytest_asm_contract._machine.minimizing import contract_machine, minimize, replay
from pytest_asm_contract._machine.pipeline_rules import Pipeline as Pipeline
from pytest_asm_contract._machine.referee import LastWrite as LastWrite
from pytest_asm_contract._machine.referee import Referee as Referee
from pytest_asm_contract._machine.reporting import Explanation as Explanation
from pytest_asm_contract._machine.reporting import confirm, explain
from pytest_asm_contract._machine.running import StatefulResult, run_contract_machine
from pytest_asm_contract._machine.running import machine_settings as machine_settings
from pytest_asm_contract._machine.simplifying import simplify
from pytest_asm_contract._machine.violations import VIOLATION_TYPES as VIOLATION_TYPES
from pytest_asm_contract._machine.violations import ContractViolation, violations_in

# ``__all__`` is the public interface, the same list as before the module became a package. The
# other names the module defined are re-exported above (``X as X``), so that
# ``from pytest_asm_contract._machine import X`` keeps working for every one of them. The list is
# deliberately not extended: Hypothesis also draws string constants found in the loaded source
# (names in ``__all__`` included) when it generates text, so new strings here would change what a
# given seed explores.
__all__ = [
    "PROBES",
    "STATEFUL_RULES",
    "ContractMachine",
    "ContractViolation",
    "Coverage",
    "Probe",
    "StatefulResult",
    "confirm",
    "contract_machine",
    "explain",
    "minimize",
    "replay",
    "run_contract_machine",
    "simplify",
    "violations_in",
]
