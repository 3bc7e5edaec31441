"""Hypothesis budgets the kit ships with, chosen with --asm-profile."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

PROFILES = ("quick", "ci", "deep")
DEFAULT_PROFILE = "ci"

_BUDGETS = {"quick": 25, "ci": 100, "deep": 1000}

for _name, _examples in _BUDGETS.items():
    settings.register_profile(
        f"asm-{_name}",
        # Hypothesis's defaults, not whatever profile is loaded when the kit is imported.
        parent=settings.get_profile("default"),
        max_examples=_examples,
        # Stores do I/O; wall-clock deadlines only make a shared machine's noise look like bugs.
        deadline=None,
        # --asm-seed decides every run. Hypothesis's own profile for CI machines (loaded when
        # the CI variable is set) derives the seed from the test's code instead, so CI would
        # explore other cases than a replay.
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def hypothesis_settings(profile: str) -> settings:
    return settings.get_profile(f"asm-{profile}")
