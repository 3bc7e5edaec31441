"""The package layout keeps its promises: no import cycles, a visible public/private line, the
kit independent of the reference stores, and modules short unless they say why."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pytest_asm_contract", "reference_stores")
PUBLIC = (
    "pytest_asm_contract",
    "pytest_asm_contract.strategies",
    "pytest_asm_contract.suite",
    "pytest_asm_contract.artifact_suite",
)
SUITES = ("pytest_asm_contract.suite.", "pytest_asm_contract.artifact_suite.")
#: Above this many lines a module's docstring must say why it is one module ("on purpose").
LONG = 550


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that ``name`` imports, at module level or inside functions.

    ``from pkg import sub`` counts as importing ``pkg.sub``, and a module's own parent packages
    (which Python imports first anyway) are not counted.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known.keys()
            found |= submodules or {base}
    return {
        module
        for module in found & known.keys()
        if module != name and not name.startswith(module + ".")
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    modules = _modules(package)
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_kit_never_imports_the_reference_stores() -> None:
    every = {**_modules("pytest_asm_contract"), **_modules("reference_stores")}
    offenders = {
        name: sorted(m for m in _imports(name, path, every) if m.startswith("reference_stores"))
        for name, path in _modules("pytest_asm_contract").items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_public_modules_declare_all_and_everything_else_is_private() -> None:
    for name in PUBLIC:
        assert isinstance(importlib.import_module(name).__all__, list), name
    for name in _modules("pytest_asm_contract"):
        if name in PUBLIC or name.startswith(SUITES):
            continue  # the suites' modules are collected by pytest, not imported by users
        private = any(part.startswith("_") for part in name.split(".")[1:])
        assert private, f"{name} is neither public nor visibly private (a leading underscore)"


@pytest.mark.parametrize("package", PACKAGES)
def test_long_modules_say_why(package: str) -> None:
    long = {
        name: len(path.read_text().splitlines())
        for name, path in _modules(package).items()
        if len(path.read_text().splitlines()) > LONG
    }
    silent = [
        name
        for name in long
        if "on purpose"
        not in (ast.get_docstring(ast.parse(_modules(package)[name].read_text())) or "")
    ]
    assert silent == [], f"modules over {LONG} lines without a reason in their docstring: {silent}"
