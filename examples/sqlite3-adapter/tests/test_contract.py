"""The ASM contract suite, run against the store that tests/conftest.py builds."""

from pytest_asm_contract.suite import *  # noqa: F403
