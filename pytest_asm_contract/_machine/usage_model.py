"""The oracle's own reading of tokens and cost (query-maintenance.md sections 2 and 4).

Written from the spec text alone, on plain dicts, sharing nothing with
``pytest_asm_contract._contract.usage`` (what stores call): the queries' figures are checked
against this, and ``tests/kit/test_usage.py`` checks that the two readings agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COUNTED = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")


def _counts(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def tokens(token_usage: Mapping[str, Any]) -> dict[str, int]:
    """The four counted fields and ``total_tokens`` of one run."""
    counted = {key: token_usage[key] if _counts(token_usage.get(key)) else 0 for key in COUNTED}
    if _counts(token_usage.get("total_tokens")):
        counted["total_tokens"] = token_usage["total_tokens"]
    else:
        counted["total_tokens"] = counted["input_tokens"] + counted["output_tokens"]
    return counted


def rates(
    table: Mapping[str, Mapping[str, Any]], provider: str | None, model: str | None
) -> Mapping[str, float | None] | None:
    """Rates for (provider, model) in ``{provider: {"models": {...}, "default": ...}}``."""
    if provider is None or provider not in table:
        return None
    entry = table[provider]
    models: Mapping[str, Mapping[str, float | None]] = entry.get("models") or {}
    if model is not None:
        if model in models:
            return models[model]
        matching = [key for key in models if model.startswith(key)]
        if matching:
            return models[max(matching, key=len)]
    default: Mapping[str, float | None] | None = entry.get("default")
    return default


def cost(run: Mapping[str, Any], table: Mapping[str, Mapping[str, Any]] | None) -> float | None:
    """``cost_usd`` when set, else the priced tokens, else None (unmapped)."""
    if run.get("cost_usd") is not None:
        return float(run["cost_usd"])
    if table is None:
        return None
    model = (run.get("provider_metadata") or {}).get("model")
    found = rates(table, run.get("provider"), model if isinstance(model, str) else None)
    if found is None:
        return None
    counted = tokens(run.get("token_usage") or {})
    rate_in = found["input"] or 0.0
    cache_read = found.get("cache_read")
    cache_creation = found.get("cache_creation")
    return (
        counted["input_tokens"] * rate_in
        + counted["output_tokens"] * (found["output"] or 0.0)
        + counted["cache_read_tokens"] * (rate_in if cache_read is None else cache_read)
        + counted["cache_creation_tokens"] * (rate_in if cache_creation is None else cache_creation)
    )


__all__ = ["cost", "rates", "tokens"]
