"""``from pytest_asm_contract.suite import *`` brings in every test of the suite, nothing else."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import pytest_asm_contract.artifact_suite
import pytest_asm_contract.suite


def _tests_of(module: ModuleType) -> set[str]:
    """The test classes and functions a module defines (what pytest collects from it)."""
    return {
        name
        for name, value in vars(module).items()
        if (inspect.isclass(value) and name.startswith("Test"))
        or (inspect.isfunction(value) and name.startswith("test_"))
        if getattr(value, "__module__", None) == module.__name__
    }


@pytest.mark.parametrize(
    "package",
    [pytest_asm_contract.suite, pytest_asm_contract.artifact_suite],
    ids=lambda p: p.__name__,
)
def test_the_package_exports_every_test_of_its_modules_and_nothing_else(
    package: ModuleType,
) -> None:
    every_test: set[str] = set()
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        tests = _tests_of(module)
        assert tests, f"{module.__name__} defines no test"
        assert set(module.__all__) == tests, f"{module.__name__}.__all__ is not its tests"
        every_test |= tests
    assert set(package.__all__) == every_test
    namespace: dict[str, object] = {}
    exec(f"from {package.__name__} import *", namespace)
    assert set(namespace) - {"__builtins__"} == every_test
