"""What a turn costs: settings' prices over the shipped table, free local models, and no guessed prices."""

from __future__ import annotations

import pytest

from genai_chatbot.governance.prices import DEFAULT_PRICES, PRICES_TAKEN, PriceTable
from genai_chatbot.governance.settings import ModelPrice


def test_the_shipped_table_prices_well_known_models_of_each_vendor_and_is_dated() -> None:
    assert PRICES_TAKEN == "2025-06-01"
    for model in ("openai/gpt-4o-mini", "azure_openai/gpt-4o", "bedrock/amazon.nova-lite-v1:0"):
        assert model in DEFAULT_PRICES
    assert PriceTable({}).cost("openai/gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)


def test_settings_override_the_shipped_price_and_add_their_own() -> None:
    table = PriceTable({"openai/gpt-4o-mini": ModelPrice(input_per_million=1, output_per_million=2)})
    assert table.cost("openai/gpt-4o-mini", 500_000, 250_000) == pytest.approx(1.0)


def test_a_bedrock_inference_profile_costs_what_its_model_costs() -> None:
    table = PriceTable({})
    profile = table.cost("bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0", 1_000_000, 0)
    assert profile == table.cost("bedrock/anthropic.claude-3-5-haiku-20241022-v1:0", 1_000_000, 0) == 0.80


def test_the_local_model_is_free_and_an_unpriced_model_or_unknown_usage_has_no_cost() -> None:
    table = PriceTable({})
    assert table.cost("local/smollm2-135m-instruct", 1000, 1000) == 0
    assert table.cost("vllm/my-model", 1000, 1000) is None
    assert table.cost("openai/gpt-4o", None, 10) is None
