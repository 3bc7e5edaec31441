"""Hypothesis budgets the kit ships with, chosen with --asm-profile."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

PROFILES = ("quick", "ci", "deep")
DEFAULT_PROFILE = "ci"

_BUDGETS = {"quick": 25, "ci": 100, "deep": 1000}

for _name, _examples in _BUDGETS.items():
    settings.register_profile(
        f"asm-{_name}",
        max_examples=_examples,
        # Stores do I/O; wall-clock deadlines only make a shared machine's noise look like bugs.
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def hypothesis_settings(profile: str) -> settings:
    return settings.get_profile(f"asm-{profile}")
