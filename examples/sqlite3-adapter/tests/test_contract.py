"""The ASM contract suite, run against the store that tests/conftest.py builds.

One import per module of the bundled suite (pytest_asm_contract/suite/test_*.py): when a new
version of the kit adds a module, add it here too.
"""

from pytest_asm_contract.suite.test_ambiguous import *  # noqa: F403
from pytest_asm_contract.suite.test_backend_limits import *  # noqa: F403
from pytest_asm_contract.suite.test_batch import *  # noqa: F403
from pytest_asm_contract.suite.test_concurrency import *  # noqa: F403
from pytest_asm_contract.suite.test_crash import *  # noqa: F403
from pytest_asm_contract.suite.test_data import *  # noqa: F403
from pytest_asm_contract.suite.test_events import *  # noqa: F403
from pytest_asm_contract.suite.test_faults import *  # noqa: F403
from pytest_asm_contract.suite.test_flush import *  # noqa: F403
from pytest_asm_contract.suite.test_histories import *  # noqa: F403
from pytest_asm_contract.suite.test_idempotency import *  # noqa: F403
from pytest_asm_contract.suite.test_poll import *  # noqa: F403
from pytest_asm_contract.suite.test_port import *  # noqa: F403
from pytest_asm_contract.suite.test_runs import *  # noqa: F403
from pytest_asm_contract.suite.test_sequencing import *  # noqa: F403
from pytest_asm_contract.suite.test_sessions import *  # noqa: F403
from pytest_asm_contract.suite.test_shared_backend import *  # noqa: F403
from pytest_asm_contract.suite.test_stateful import *  # noqa: F403
