"""The command line that runs a check again with this run's store, profile and seed."""

from __future__ import annotations

import shlex

import pytest

from pytest_asm_contract._plugin.state import STATE


def replay_command(config: pytest.Config, selector: str) -> str:
    """``pytest`` with this run's store options, profile and seed, selecting ``selector``."""
    state = config.stash[STATE]
    parts = ["pytest"]
    if state.spec is not None:
        parts.append(f"--asm-store={state.spec.target}")
        parts.extend(f"--asm-store-option={key}={value}" for key, value in state.spec.options)
    parts += [f"{p.option}={p.target}" for p in state.side_ports.values() if p.target]
    parts += [f"--asm-profile={state.profile}", f"--asm-seed={state.seed}", "-k", selector]
    return " ".join(shlex.quote(part) for part in parts)


__all__ = ["replay_command"]
