"""``module:attr`` references: how a store, a factory or a reopen spec names its code."""

from __future__ import annotations

import importlib
from typing import Any


class TargetError(ValueError):
    """A ``module:attr`` reference that is malformed or names nothing importable."""


def locate(target: str) -> Any:
    """The object ``target`` names: ``"pkg.module:Attr"`` (the attribute may be dotted)."""
    if not isinstance(target, str):
        raise TargetError(f"expected 'module:attr', got {type(target).__name__}")
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise TargetError(
            f"expected 'module:attr' (for example my_pkg.stores:MyStore), got {target!r}"
        )
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as error:  # any import-time failure is the reference's problem to report
        raise TargetError(
            f"cannot import module {module_name!r}: {type(error).__name__}: {error}"
        ) from error
    for part in attr_path.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise TargetError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    return found


__all__ = ["TargetError", "locate"]
