"""Usage and cost figures folded from the SQL QueryAPI's grouped sums (one row per provider, or
per provider and model): the SQL sums each group, these add the groups up and price them."""

from __future__ import annotations

import json

from pytest_asm_contract._contract.query import CostSummary, UsageFigures
from pytest_asm_contract._contract.usage import UNKNOWN, PricingTable, TokenTotals


class CostSums:
    """Cost figures summed over (provider, model) groups."""

    def __init__(self) -> None:
        self.total, self.priced, self.unmapped = 0.0, 0, 0
        self.by_provider: dict[str, float] = {}
        self.by_model: dict[str, float] = {}

    def add(self, provider: str | None, model: str | None, cost: float, runs: int) -> None:
        if runs == 0:
            return
        self.total += cost
        self.priced += runs
        name, model_name = provider or UNKNOWN, model or UNKNOWN
        self.by_provider[name] = self.by_provider.get(name, 0.0) + cost
        self.by_model[model_name] = self.by_model.get(model_name, 0.0) + cost

    def price(
        self,
        provider: str | None,
        model: str | None,
        runs: int,
        tokens: TokenTotals,
        table: PricingTable | None,
    ) -> None:
        """Runs without cost_usd: priced at the table's rates (cost is linear in the tokens),
        or unmapped."""
        rates = None if table is None else table.rates_for(provider, model)
        if rates is None:
            self.unmapped += runs
            return
        cache_read = rates.input if rates.cache_read is None else rates.cache_read
        cache_creation = rates.input if rates.cache_creation is None else rates.cache_creation
        cost = (
            tokens.input_tokens * rates.input
            + tokens.output_tokens * rates.output
            + tokens.cache_read_tokens * cache_read
            + tokens.cache_creation_tokens * cache_creation
        )
        self.add(provider, model, cost, runs)

    def result(self) -> CostSummary:
        return CostSummary(
            total_cost_usd=self.total,
            run_count=self.priced,
            by_provider=self.by_provider,
            by_model=self.by_model,
            unmapped_runs=self.unmapped,
        )


def figures(count: int, tokens: TokenTotals) -> UsageFigures:
    return UsageFigures(
        total_input_tokens=tokens.input_tokens,
        total_output_tokens=tokens.output_tokens,
        total_tokens=tokens.total_tokens,
        run_count=count,
    )


def added(a: UsageFigures, b: UsageFigures) -> UsageFigures:
    return UsageFigures(
        total_input_tokens=a.total_input_tokens + b.total_input_tokens,
        total_output_tokens=a.total_output_tokens + b.total_output_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
        run_count=a.run_count + b.run_count,
    )


def decoded_string(json_text: str | None) -> str | None:
    """A JSON string's value from its JSON text (None stays None)."""
    if json_text is None:
        return None
    value = json.loads(json_text)
    return value if isinstance(value, str) else None


__all__ = ["CostSums", "added", "decoded_string", "figures"]
