"""Turn the store calls of a failing example into Python a store author can paste and run.

The state machine records every store call it makes as source code (:func:`call`), built from
:func:`render`, which writes any model or JSON value back as the constructor call that rebuilds it
exactly. Strings are written with ASCII escapes, so NFC/NFD forms, NUL characters and invisible
characters survive copying and editors that normalise Unicode.

:func:`reproducer_module` wraps such a snippet into a standalone pytest file, and
:func:`run_snippet` executes a snippet against a fresh store, so the kit can say whether a
reproduction really fails before it shows it.
"""

from __future__ import annotations

import enum
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from pytest_asm_contract._machine.values import validated

WIDTH = 96
#: Below this many levels of wrapping, a value is written on one line however long it is.
DEEP = 4

#: What a snippet needs in scope; also the header of every reproducer file. Only the kit's
#: public names: a reproducer must keep working when the kit's private modules move.
IMPORTS = """\
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pytest_asm_contract import (
    ErrorCode,
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    StoreError,
    exact_difference,
)
"""

#: The end of a reproducer's store fixture: a store that has ``close`` is closed without any help
#: from the kit.
_CLOSE_STORE = [
    "    yield built",
    '    close = getattr(built, "close", None)',
    "    if close is not None:",
    "        close()",
]


def _render_str(value: str) -> str:
    return ascii(value)


def _render_datetime(value: datetime) -> str:
    parts = [value.year, value.month, value.day, value.hour, value.minute, value.second]
    args = ", ".join(str(p) for p in parts)
    if value.microsecond:
        args += f", {value.microsecond}"
    offset = value.utcoffset()
    if offset is None:
        return f"datetime({args})"
    if offset == timedelta(0):
        return f"datetime({args}, tzinfo=UTC)"
    return f"datetime({args}, tzinfo=timezone(timedelta(seconds={int(offset.total_seconds())})))"


def _model_fields(value: BaseModel) -> list[tuple[str, Any]]:
    shown = []
    fields = type(value).model_fields
    for name, info in fields.items():
        if name not in value.__dict__:
            continue
        current = value.__dict__[name]
        if not info.is_required():
            default = info.get_default(call_default_factory=True)
            if type(default) is type(current) and default == current:
                continue
        shown.append((name, current))
    return shown


def _flat(value: Any) -> str:
    return render(value, width=10**9)


def render(value: Any, indent: int = 0, width: int = WIDTH) -> str:
    """Python source that evaluates to ``value`` (given :data:`IMPORTS`), wrapped at ``width``."""
    if isinstance(value, BaseModel):
        name = type(value).__name__
        valid = validated(type(value), value) is not None
        head = f"{name}(" if valid else f"{name}.model_construct("
        items = [(f"{k}=", v) for k, v in _model_fields(value)]
        return _container(head, ")", items, indent, width)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, str):
        return _render_str(value)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "float('-inf')"
        return repr(value)
    if isinstance(value, datetime):
        return _render_datetime(value)
    if isinstance(value, list):
        return _container("[", "]", [("", v) for v in value], indent, width)
    if isinstance(value, tuple):
        closing = ",)" if len(value) == 1 else ")"
        return _container("(", closing, [("", v) for v in value], indent, width)
    if isinstance(value, dict):
        items = [(f"{render(k, width=10**9)}: ", v) for k, v in value.items()]
        return _container("{", "}", items, indent, width)
    return repr(value)


def _container(head: str, close: str, items: list[tuple[str, Any]], indent: int, width: int) -> str:
    flat = head + ", ".join(prefix + _flat(v) for prefix, v in items) + close
    if indent + len(flat) <= width or not items or indent > 4 * DEEP:
        return flat
    pad = " " * (indent + 4)
    lines = [pad + prefix + render(v, indent + 4, width) for prefix, v in items]
    closing = close if close != ",)" else ")"
    return head + "\n" + ",\n".join(lines) + ",\n" + " " * indent + closing


def call(method: str, *args: Any, **kwargs: Any) -> str:
    """Source of ``store.method(*args, **kwargs)``; None-valued keywords are left out."""
    shown = {k: v for k, v in kwargs.items() if v is not None}
    parts = [render(a, 4) for a in args]
    parts += [f"{k}={render(v, 4)}" for k, v in shown.items()]
    flat = f"store.{method}(" + ", ".join(parts) + ")"
    if "\n" not in flat and len(flat) <= WIDTH:
        return flat
    if len(args) == 1 and not shown:
        return f"store.{method}(" + render(args[0], 0) + ")"
    return f"store.{method}(\n" + ",\n".join("    " + p for p in parts) + ",\n)"


def expect_error(code: str, codes: Sequence[str]) -> str:
    """Source asserting that ``code`` raises a StoreError with one of ``codes``."""
    wanted = ", ".join(f"ErrorCode.{c.upper()}" for c in sorted(codes))
    return (
        "with pytest.raises(StoreError) as caught:\n"
        + textwrap.indent(code, "    ")
        + f"\nassert caught.value.code in ({wanted},)"
    )


class Lazy:
    """Source code rendered on first use: recording every call must stay cheap."""

    __slots__ = ("_make", "_text")

    def __init__(self, make: Callable[[], str]) -> None:
        self._make = make
        self._text: str | None = None

    def __call__(self) -> str:
        if self._text is None:
            self._text = self._make()
        return self._text

    def __str__(self) -> str:
        return self()


def lazy_call(method: str, *args: Any, **kwargs: Any) -> Lazy:
    """:func:`call`, rendered only if the source is ever needed."""
    return Lazy(lambda: call(method, *args, **kwargs))


def snippet(steps: Sequence[str | Lazy]) -> str:
    """The steps as one block of code that expects ``store`` in scope."""
    return "\n".join(str(step) for step in steps)


#: A store call where the machine's snippets place one: a statement, or ``result = ...``.
_CALL_AT_LINE_START = re.compile(r"^(\s*)(result = )?store\.", re.MULTILINE)


def awaited(code: str) -> str:
    """``code`` for an async store: every store call awaited."""
    return _CALL_AT_LINE_START.sub(r"\1\2await store.", code)


def run_snippet(code: str, store: Any) -> BaseException | None:
    """Run ``code`` against ``store``; the exception it raises (it should), or None."""
    namespace: dict[str, Any] = {"store": store}
    # Outside the try: a header that cannot be imported is the kit's bug, not a reproduction.
    exec(compile(IMPORTS, "<imports>", "exec"), namespace)
    try:
        exec(compile(code, "<reproduction>", "exec"), namespace)
    except BaseException as error:  # the point is to see it fail, whatever way it does
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        return error
    return None


def _identifier(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower() or "x"


def reproducer_module(
    *,
    rule_id: str,
    statement: str,
    what: str,
    code: str,
    store_target: str | None,
    store_options: Sequence[tuple[str, str]] = (),
    seed: int | None = None,
    replay: str | None = None,
    is_async: bool = False,
) -> str:
    """A standalone pytest module that reproduces one violation.

    With ``store_target`` (``module:attr``, as given to ``--asm-store``) the file builds the store
    itself; without it (a store built by an overridden ``asm_store_factory`` fixture) the test
    takes that fixture, so the file must sit where that conftest applies. For an async store
    (``is_async``) the calls are awaited in a coroutine the test runs with ``asyncio.run``, so
    the file needs no async pytest plugin.
    """
    if is_async:
        doc = _doc(rule_id, statement, what, seed, replay)
        return _async_reproducer(rule_id, doc, code, store_target, store_options)
    doc = _doc(rule_id, statement, what, seed, replay)
    lines = ['"""' + doc[0], *doc[1:], '"""', "", IMPORTS.rstrip("\n"), ""]
    if store_target is not None:
        module_name, _, attr = store_target.partition(":")
        root = attr.split(".", 1)[0]
        lines.insert(lines.index(IMPORTS.rstrip("\n")) + 1, f"from {module_name} import {root}")
        kwargs = ", ".join(f"{k}={v!r}" for k, v in store_options)
        lines += [
            "",
            "@pytest.fixture",
            "def store():",
            f"    built = {attr}({kwargs})",
            *_CLOSE_STORE,
        ]
    else:
        lines += [
            "",
            "@pytest.fixture",
            "def store(asm_store_factory):",
            "    # The store comes from your asm_store_factory fixture: keep this file where the",
            "    # conftest.py that overrides it applies, or replace this fixture's body.",
            "    built = asm_store_factory()",
            *_CLOSE_STORE,
        ]
    lines += [
        "",
        "",
        f"def test_{_identifier(rule_id)}_reproduction(store):",
        textwrap.indent(code, "    "),
        "",
    ]
    return "\n".join(lines)


def _doc(
    rule_id: str, statement: str, what: str, seed: int | None, replay: str | None
) -> list[str]:
    doc = [
        f"Reproduction of a violation of contract rule {rule_id}, found by pytest-asm-contract.",
        "",
        *textwrap.wrap(f"{rule_id}: {statement}", 96),
        "",
        *textwrap.wrap(f"What happened: {what}", 96),
    ]
    if seed is not None:
        doc += ["", f"Found with --asm-seed={seed}."]
    if replay:
        doc += [f"Replay the whole search with: {replay}"]
    return [*doc, "", "Run: pytest <this file>"]


def _async_reproducer(
    rule_id: str,
    doc: list[str],
    code: str,
    store_target: str | None,
    store_options: Sequence[tuple[str, str]],
) -> str:
    """The reproducer of an async store: ``asyncio.run`` of a coroutine that builds the store,
    awaits the calls and closes the store (awaiting ``close()`` when it is a coroutine)."""
    lines = ['"""' + doc[0], *doc[1:], '"""', "", "import asyncio", "import inspect"]
    lines += [IMPORTS.rstrip("\n"), ""]
    if store_target is not None:
        module_name, _, attr = store_target.partition(":")
        lines.insert(
            lines.index(IMPORTS.rstrip("\n")) + 1, f"from {module_name} import {attr.split('.')[0]}"
        )
        kwargs = ", ".join(f"{k}={v!r}" for k, v in store_options)
        build, fixture = f"{attr}({kwargs})", []
    else:
        build = "asm_store_factory()"
        fixture = [
            "    # The store comes from your asm_store_factory fixture: keep this file where the",
            "    # conftest.py that overrides it applies, or build the store here.",
        ]
    argument = "" if store_target is not None else "asm_store_factory"
    lines += [
        "",
        f"def test_{_identifier(rule_id)}_reproduction({argument}):",
        *fixture,
        "    async def main():",
        f"        store = {build}",
        "        if inspect.isawaitable(store):",
        "            store = await store",
        "        try:",
        textwrap.indent(awaited(code), " " * 12),
        "        finally:",
        '            closed = getattr(store, "close", lambda: None)()',
        "            if inspect.isawaitable(closed):",
        "                await closed",
        "",
        "    asyncio.run(main())",
        "",
    ]
    return "\n".join(lines)
