"""Shared helpers for the project's own tests."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("ASM_REQUIRE_SERVICES") == "1"


def service_unavailable(reason: str) -> None:
    """Skip a test whose server is unreachable, or fail it when ASM_REQUIRE_SERVICES=1 (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (ASM_REQUIRE_SERVICES=1, so this is a failure)", pytrace=False)
    pytest.skip(f"{reason}; start the server or unset the requirement (see README)")
