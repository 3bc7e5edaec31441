"""Tokens and cost of a run (query-maintenance.md sections 2 and 4), for stores to share.

A run's ``token_usage`` is a free JSON object; the figures the QueryAPI sums come from it by
one reading, :func:`run_usage`, so that every store (and the kit's checks) count alike:

* ``input_tokens``, ``output_tokens``, ``cache_read_tokens``, ``cache_creation_tokens`` and
  ``total_tokens`` count when they are ints >= 0 (a bool, a float, a string, a negative number
  or a missing key counts 0);
* a run's total is its ``total_tokens`` when that counts, else input + output (a
  ``total_tokens`` that does not count is treated as absent, not as a total of 0);
* its cost is ``cost_usd`` when set; else, when the pricing table has rates for the run's
  provider and model (``provider_metadata["model"]``), the tokens priced at those rates (cache
  tokens at their own rate, or the input rate); else the run is unmapped (``cost_usd`` None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, StrictStr
from pydantic.types import FiniteFloat

from pytest_asm_contract._contract.model import Run, _Frozen

#: Where runs without a provider or a model are summed in usage and cost summaries.
UNKNOWN = "unknown"

NonNegativeRate = Annotated[FiniteFloat, Field(ge=0)]


class TokenTotals(_Frozen):
    """Token counts of one run, or summed over runs."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: TokenTotals) -> TokenTotals:
        return TokenTotals(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_creation_tokens=self.cache_creation_tokens + other.cache_creation_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class Rates(_Frozen):
    """USD per token; cache tokens cost the input rate unless their own is given."""

    input: NonNegativeRate
    output: NonNegativeRate
    cache_read: NonNegativeRate | None = None
    cache_creation: NonNegativeRate | None = None


class ProviderPricing(_Frozen):
    """One provider's rates: by model name (exact, or the longest key the name starts with),
    else ``default``."""

    models: dict[StrictStr, Rates] = Field(default_factory=dict)
    default: Rates | None = None


class PricingTable(_Frozen):
    """Rates by provider name."""

    providers: dict[StrictStr, ProviderPricing] = Field(default_factory=dict)

    def rates_for(self, provider: str | None, model: str | None) -> Rates | None:
        """The exact model's rates, else the longest model key that prefixes the model name,
        else the provider's default, else None."""
        pricing = self.providers.get(provider) if provider is not None else None
        if pricing is None:
            return None
        if model is not None:
            if model in pricing.models:
                return pricing.models[model]
            prefixes = [key for key in pricing.models if model.startswith(key)]
            if prefixes:
                return pricing.models[max(prefixes, key=len)]
        return pricing.default


class RunUsage(_Frozen):
    """What one run contributes to stats, usage and cost summaries."""

    provider: str | None
    model: str | None
    tokens: TokenTotals
    #: None when the run has no cost_usd and the pricing table has no rates for it (unmapped).
    cost_usd: float | None


def _count(usage: Mapping[str, object], key: str) -> int | None:
    value = usage.get(key)
    # bool is an int in Python, not a number in JSON
    return value if type(value) is int and value >= 0 else None


def token_totals(token_usage: Mapping[str, object]) -> TokenTotals:
    """A run's token counts from its ``token_usage`` (see the module's docstring)."""
    input_tokens = _count(token_usage, "input_tokens") or 0
    output_tokens = _count(token_usage, "output_tokens") or 0
    total = _count(token_usage, "total_tokens")
    return TokenTotals(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=_count(token_usage, "cache_read_tokens") or 0,
        cache_creation_tokens=_count(token_usage, "cache_creation_tokens") or 0,
        total_tokens=input_tokens + output_tokens if total is None else total,
    )


def run_usage(run: Run, pricing_table: PricingTable | None = None) -> RunUsage:
    """One run's provider, model, tokens and cost, as every QueryAPI figure counts them."""
    model = run.provider_metadata.get("model")
    model_name = model if isinstance(model, str) else None
    tokens = token_totals(run.token_usage)
    cost = run.cost_usd
    if cost is None and pricing_table is not None:
        rates = pricing_table.rates_for(run.provider, model_name)
        if rates is not None:
            cache_read = rates.input if rates.cache_read is None else rates.cache_read
            cache_creation = rates.input if rates.cache_creation is None else rates.cache_creation
            cost = (
                tokens.input_tokens * rates.input
                + tokens.output_tokens * rates.output
                + tokens.cache_read_tokens * cache_read
                + tokens.cache_creation_tokens * cache_creation
            )
    return RunUsage(provider=run.provider, model=model_name, tokens=tokens, cost_usd=cost)


__all__ = [
    "UNKNOWN",
    "PricingTable",
    "ProviderPricing",
    "Rates",
    "RunUsage",
    "TokenTotals",
    "run_usage",
    "token_totals",
]
