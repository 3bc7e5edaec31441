"""pytest-asm-contract: the conformance kit for Agent Session Manager session stores."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-asm-contract")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._plugin.marks import rule

__all__ = ["ErrorCode", "StoreError", "__version__", "rule"]
