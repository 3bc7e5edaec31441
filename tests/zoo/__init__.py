"""A zoo of deliberately broken stores: each must make the kit fail on the rule it breaks.

Every module here defines store classes with a ``BREAKS`` tuple (the rule ids the kit must report
as failed) and a docstring naming the mistake. ``tests/test_zoo.py`` finds them all.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator


def mutants() -> Iterator[tuple[str, type]]:
    """``(module:Class, class)`` for every broken store in the zoo, in a stable order."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, obj in sorted(vars(module).items()):
            if (
                isinstance(obj, type)
                and obj.__module__ == module.__name__
                and "BREAKS" in vars(obj)
            ):
                yield f"{module.__name__}:{name}", obj
