"""Shared helpers for the project's own tests."""

from __future__ import annotations

import multiprocessing.resource_tracker
import os

import pytest

# Imported here, before any pytester run: an in-process run restores sys.modules afterwards, so
# a resource tracker module first imported inside one comes back as a second copy with a tracker
# of its own, which then fails to unregister the first one's semaphores (KeyError tracebacks on
# stderr after the zoo's process-based checks).
_KEEP = (multiprocessing.resource_tracker,)

REQUIRE_SERVICES = os.environ.get("ASM_REQUIRE_SERVICES") == "1"


def service_unavailable(reason: str) -> None:
    """Skip a test whose server is unreachable, or fail it when ASM_REQUIRE_SERVICES=1 (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (ASM_REQUIRE_SERVICES=1, so this is a failure)", pytrace=False)
    pytest.skip(f"{reason}; start the server or unset the requirement (see README)")
