"""Tokens and cost of a run: the public arithmetic stores use, and the oracle's own reading.

Examples pin the spec's words (sections 2 and 4 of query-maintenance.md); a Hypothesis test checks
that ``run_usage`` and the oracle's independent ``usage_model`` agree on any token_usage object
and any pricing table.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_asm_contract import (
    PricingTable,
    ProviderPricing,
    Rates,
    Run,
    TokenTotals,
    run_usage,
    token_totals,
)
from pytest_asm_contract._machine import usage_model


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({}, TokenTotals()),
        (
            {"input_tokens": 10, "output_tokens": 5},
            TokenTotals(input_tokens=10, output_tokens=5, total_tokens=15),
        ),
        (
            {"input_tokens": 10, "output_tokens": 5, "total_tokens": 40},
            TokenTotals(input_tokens=10, output_tokens=5, total_tokens=40),
        ),
        # what does not count: a bool, a float, a string, a negative number, None
        (
            {"input_tokens": True, "output_tokens": 5.0, "cache_read_tokens": "7"},
            TokenTotals(),
        ),
        (
            {"input_tokens": 3, "cache_creation_tokens": -1, "total_tokens": None},
            TokenTotals(input_tokens=3, total_tokens=3),
        ),
        # a total that does not count is absent, not 0
        (
            {"input_tokens": 3, "output_tokens": 4, "total_tokens": -5},
            TokenTotals(input_tokens=3, output_tokens=4, total_tokens=7),
        ),
        (
            {"cache_read_tokens": 2, "cache_creation_tokens": 9},
            TokenTotals(cache_read_tokens=2, cache_creation_tokens=9, total_tokens=0),
        ),
    ],
)
def test_token_totals_count_only_non_negative_ints(
    usage: dict[str, Any], expected: TokenTotals
) -> None:
    assert token_totals(usage) == expected


TABLE = PricingTable(
    providers={
        "anthropic": ProviderPricing(
            models={
                "claude": Rates(input=1.0, output=2.0),
                "claude-sonnet": Rates(input=3.0, output=15.0, cache_read=0.3),
                "claude-sonnet-4": Rates(input=4.0, output=16.0, cache_creation=5.0),
            },
            default=Rates(input=0.5, output=0.5),
        ),
        "openai": ProviderPricing(models={"gpt-4o": Rates(input=2.5, output=10.0)}),
    }
)
TOKENS = {"input_tokens": 10, "output_tokens": 20, "cache_read_tokens": 100}


def _run(provider: str | None, model: str | None, **fields: Any) -> Run:
    metadata = {} if model is None else {"model": model}
    return Run(session_id="s", provider=provider, provider_metadata=metadata, **fields)


@pytest.mark.parametrize(
    ("provider", "model", "cost"),
    [
        ("anthropic", "claude-sonnet", 10 * 3.0 + 20 * 15.0 + 100 * 0.3),  # exact key
        ("anthropic", "claude-sonnet-4-5", 10 * 4.0 + 20 * 16.0 + 100 * 4.0),  # longest prefix
        ("anthropic", "claude-haiku", 10 * 1.0 + 20 * 2.0 + 100 * 1.0),  # the only prefix
        ("anthropic", "other", 10 * 0.5 + 20 * 0.5 + 100 * 0.5),  # the provider's default
        ("anthropic", None, 10 * 0.5 + 20 * 0.5 + 100 * 0.5),  # no model: the default
        ("openai", "gpt-4o-mini", 10 * 2.5 + 20 * 10.0 + 100 * 2.5),
        ("openai", "o1", None),  # no key matches and no default: unmapped
        ("mistral", "large", None),  # unknown provider
        (None, "claude", None),  # no provider
    ],
)
def test_rates_resolve_exact_then_longest_prefix_then_default(
    provider: str | None, model: str | None, cost: float | None
) -> None:
    usage = run_usage(_run(provider, model, token_usage=TOKENS), TABLE)
    if cost is None:
        assert usage.cost_usd is None
    else:
        assert usage.cost_usd == pytest.approx(cost, rel=1e-9)
    assert usage.provider == provider and usage.model == model


def test_a_set_cost_wins_over_the_table_and_needs_none() -> None:
    run = _run("anthropic", "claude", token_usage=TOKENS, cost_usd=0.25)
    assert run_usage(run, TABLE).cost_usd == 0.25
    assert run_usage(run).cost_usd == 0.25
    assert run_usage(_run("anthropic", "claude", token_usage=TOKENS)).cost_usd is None


def test_a_model_that_is_not_a_string_is_no_model() -> None:
    run = Run(session_id="s", provider="anthropic", provider_metadata={"model": 4})
    assert run_usage(run, TABLE).model is None


# -- agreement with the oracle's own reading ---------------------------------------------------
_COUNTS = st.one_of(
    st.integers(min_value=-3, max_value=10**12),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
    st.none(),
)
_USAGE = st.dictionaries(
    st.sampled_from(
        [
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_creation_tokens",
            "total_tokens",
            "other",
        ]
    ),
    _COUNTS,
)
_RATE = st.floats(min_value=0, max_value=1e3, allow_nan=False)
_RATES = st.fixed_dictionaries(
    {"input": _RATE, "output": _RATE},
    optional={"cache_read": st.none() | _RATE, "cache_creation": st.none() | _RATE},
)
_NAMES = st.sampled_from(["", "c", "cl", "claude", "claude-3", "claude-3-5", "gpt"])
_TABLE = st.dictionaries(
    st.sampled_from(["anthropic", "openai"]),
    st.fixed_dictionaries(
        {"models": st.dictionaries(_NAMES, _RATES, max_size=4)},
        optional={"default": _RATES},
    ),
)


def _table(plain: dict[str, dict[str, Any]]) -> PricingTable:
    return PricingTable.model_validate({"providers": plain})


@given(
    usage=_USAGE,
    provider=st.sampled_from(["anthropic", "openai", "other", None]),
    model=_NAMES | st.none(),
    table=_TABLE | st.none(),
    cost_usd=st.none() | st.floats(min_value=0, max_value=10, allow_nan=False),
)
def test_run_usage_agrees_with_the_oracle(
    usage: dict[str, Any],
    provider: str | None,
    model: str | None,
    table: dict[str, dict[str, Any]] | None,
    cost_usd: float | None,
) -> None:
    run = _run(provider, model, token_usage=usage, cost_usd=cost_usd)
    found = run_usage(run, None if table is None else _table(table))
    assert found.tokens.model_dump() == usage_model.tokens(usage)
    expected = usage_model.cost(run.model_dump(), table)
    if expected is None:
        assert found.cost_usd is None
    else:
        assert found.cost_usd is not None
        assert math.isclose(found.cost_usd, expected, rel_tol=1e-9, abs_tol=1e-12)
