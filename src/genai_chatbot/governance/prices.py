"""What a turn costs: US dollars per million prompt and completion tokens, per model id.

The settings' `[prices."MODEL_ID"]` tables overlay `DEFAULT_PRICES`, a shipped table of well-known
OpenAI, Azure OpenAI and Amazon Bedrock models. The local (embedded) model costs nothing. A model in
neither table has no known price: its cost is `None` (shown as unknown), never a guess, so an admin sees
what to price rather than a wrong total.

`DEFAULT_PRICES` holds public list prices (on-demand, standard tier, text tokens, embedding models' input
tokens; Bedrock in us-east-1; Azure OpenAI's global standard deployments, keyed by the model's name as a
deployment name). They were written down on `PRICES_TAKEN` from the vendors' pricing pages as known at
that date, without network access when this table was made: check them against the vendors' pages, and
override any in settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from genai_chatbot.governance.settings import ModelPrice

#: When the shipped list prices were taken (see the module docstring).
PRICES_TAKEN = "2025-06-01"

#: Providers whose models run on this machine: their turns cost nothing.
FREE_PROVIDERS = frozenset({"local"})

_OPENAI: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-2024-11-20": (2.50, 10.00),
    "chatgpt-4o-latest": (5.00, 15.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o-mini-2024-07-18": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    # Embedding models: input tokens only.
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
}

_BEDROCK: dict[str, tuple[float, float]] = {
    "amazon.nova-micro-v1:0": (0.035, 0.14),
    "amazon.nova-lite-v1:0": (0.06, 0.24),
    "amazon.nova-pro-v1:0": (0.80, 3.20),
    "amazon.nova-premier-v1:0": (2.50, 12.50),
    "amazon.titan-text-express-v1": (0.20, 0.60),
    "amazon.titan-text-lite-v1": (0.15, 0.20),
    "anthropic.claude-3-haiku-20240307-v1:0": (0.25, 1.25),
    "anthropic.claude-3-5-haiku-20241022-v1:0": (0.80, 4.00),
    "anthropic.claude-3-5-sonnet-20240620-v1:0": (3.00, 15.00),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": (3.00, 15.00),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": (3.00, 15.00),
    "anthropic.claude-sonnet-4-20250514-v1:0": (3.00, 15.00),
    "anthropic.claude-3-opus-20240229-v1:0": (15.00, 75.00),
    "anthropic.claude-opus-4-20250514-v1:0": (15.00, 75.00),
    "meta.llama3-1-8b-instruct-v1:0": (0.22, 0.22),
    "meta.llama3-1-70b-instruct-v1:0": (0.72, 0.72),
    "meta.llama3-3-70b-instruct-v1:0": (0.72, 0.72),
    "mistral.mistral-7b-instruct-v0:2": (0.15, 0.20),
    "mistral.mixtral-8x7b-instruct-v0:1": (0.45, 0.70),
    "cohere.command-r-v1:0": (0.50, 1.50),
    "cohere.command-r-plus-v1:0": (3.00, 15.00),
    "amazon.titan-embed-text-v1": (0.10, 0.0),
    "amazon.titan-embed-text-v2:0": (0.02, 0.0),
    "cohere.embed-english-v3": (0.10, 0.0),
    "cohere.embed-multilingual-v3": (0.10, 0.0),
}

_AZURE_NAMES = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o3-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
_AZURE = {name: _OPENAI[name] for name in _AZURE_NAMES}


def _table() -> dict[str, ModelPrice]:
    prices: dict[str, ModelPrice] = {}
    for provider, models in (("openai", _OPENAI), ("bedrock", _BEDROCK), ("azure_openai", _AZURE)):
        for name, (prompt, completion) in models.items():
            prices[f"{provider}/{name}"] = ModelPrice(input_per_million=prompt, output_per_million=completion)
    return prices


#: The shipped list prices by model id, taken on `PRICES_TAKEN`.
DEFAULT_PRICES: Mapping[str, ModelPrice] = _table()

# A Bedrock cross-region inference profile ("us.", "eu.", "apac.", "us-gov.") is billed as its model.
_BEDROCK_PROFILE = re.compile(r"^bedrock/[a-z]{2,6}(?:-[a-z]+)?\.(?=[a-z0-9-]+\.)")


class PriceTable:
    """Prices by model id: the settings' `[prices]` over the shipped defaults."""

    def __init__(self, configured: Mapping[str, ModelPrice], defaults: Mapping[str, ModelPrice] = DEFAULT_PRICES):
        self._prices = {**defaults, **configured}

    def price(self, model_id: str) -> ModelPrice | None:
        """The model's price; a free model's is zero; `None` when nobody priced it."""
        found = self._prices.get(model_id) or self._prices.get(_BEDROCK_PROFILE.sub("bedrock/", model_id, count=1))
        if found is not None:
            return found
        if model_id.partition("/")[0] in FREE_PROVIDERS:
            return ModelPrice(input_per_million=0, output_per_million=0)
        return None

    def cost(self, model_id: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        """US dollars for this usage; `None` when the model has no price or the usage is not known."""
        price = self.price(model_id)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        return (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) / 1e6
