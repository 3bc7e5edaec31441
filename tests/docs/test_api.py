"""docs/api.md lists exactly the public names, the model fields and the plugin's fixtures."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import pytest_asm_contract
from pytest_asm_contract import Event, ExecutionResult, Run, Session

API = Path(__file__).resolve().parents[2] / "docs" / "api.md"
PUBLIC_MODULES = (
    "pytest_asm_contract",
    "pytest_asm_contract.strategies",
    "pytest_asm_contract.suite",
    "pytest_asm_contract.artifact_suite",
)
#: A table row's first cell: a name in backticks.
ROW = re.compile(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|", re.MULTILINE)


def _sections() -> dict[str, str]:
    """The page's text by heading (``##`` and ``###``), without the heading's markup."""
    parts = re.split(r"^(#{2,3} .+)$", API.read_text(), flags=re.MULTILINE)
    return {
        heading.lstrip("#").strip().strip("`"): body
        for heading, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def _listed_for(module: str) -> list[str]:
    """The names listed from ``## `module``` up to the next ``##`` heading."""
    text = API.read_text()
    start = text.index(f"## `{module}`\n")
    end = text.find("\n## ", start + 1)
    return ROW.findall(text[start : end if end != -1 else len(text)])


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_the_api_page_lists_exactly_the_public_names(module: str) -> None:
    exported = importlib.import_module(module).__all__
    listed = _listed_for(module)
    assert sorted(set(listed)) == sorted(listed), f"{module}: a name is listed twice"
    assert set(listed) == set(exported), (
        f"docs/api.md and {module}.__all__ disagree: missing from the page "
        f"{sorted(set(exported) - set(listed))}, not exported {sorted(set(listed) - set(exported))}"
    )


@pytest.mark.parametrize("model", [Session, Run, Event, ExecutionResult], ids=lambda m: m.__name__)
def test_the_api_page_lists_every_model_field_in_order(model: type) -> None:
    listed = ROW.findall(_sections()[model.__name__])
    assert listed == list(model.model_fields), (
        f"docs/api.md lists the {model.__name__} fields {listed}, the model has "
        f"{list(model.model_fields)}"
    )


def test_the_api_page_lists_every_fixture_of_the_plugin(pytestconfig: pytest.Config) -> None:
    manager = pytestconfig.pluginmanager
    plugin_modules = {
        "pytest_asm_contract._plugin.fixtures",
        "pytest_asm_contract._plugin.hooks",
    }
    fixtures = set()
    for plugin in manager.get_plugins():
        if getattr(plugin, "__name__", None) in plugin_modules:
            fixtures |= {
                name
                for name, value in vars(plugin).items()
                if (name.startswith("asm_") and hasattr(value, "_fixture_function_marker"))
                or (name.startswith("asm_") and type(value).__name__ == "FixtureFunctionDefinition")
            }
    assert fixtures, "no fixture of the plugin found"
    listed = set(ROW.findall(_sections()["Fixtures"]))
    assert listed == fixtures, (
        f"missing from docs/api.md: {sorted(fixtures - listed)}; "
        f"not fixtures: {sorted(listed - fixtures)}"
    )


def test_every_public_name_is_importable_from_the_package() -> None:
    for name in pytest_asm_contract.__all__:
        assert hasattr(pytest_asm_contract, name), name
