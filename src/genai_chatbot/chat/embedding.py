"""Embeddings requests: resolved and checked before anything runs, and their result checked after.

The chat service admits an embeddings request through the same seam as a chat request (`CompletionService`'s
admission, then `governed_complete`): model access, budgets and rate limits before, usage, cost, metrics and
a span (`gen_ai.operation.name` "embeddings") after. It has no reply: it is admitted with a reply budget of 0
tokens and reported with the inputs' tokens as its prompt tokens.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from genai_chatbot.chat.fallbacks import unavailable
from genai_chatbot.models.errors import InvalidRequestError, ProviderError, ProviderUnavailableError
from genai_chatbot.models.inputs import check_embeddings
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.models.types import EmbeddingRequest, EmbeddingResult, ModelInfo, Usage

logger = logging.getLogger(__name__)
#: English text averages about four characters a token: the estimate when a provider counts none.
_CHARS_PER_TOKEN = 4


async def embedding_request(
    registry: ModelRegistry, model_id: str, inputs: Sequence[str], dimensions: int | None, user: str | None
) -> tuple[Provider, ModelInfo, EmbeddingRequest]:
    """The provider and model `model_id` names and the request for `inputs`.

    Raises `ModelError` subclasses: 404 for an unknown model, 400 for one that does not embed or no input,
    503 for one unavailable now.
    """
    if not inputs:
        raise InvalidRequestError("input must hold at least one text.", param="input")
    provider, info = await registry.resolve(model_id)
    check_embeddings(info)
    if not info.available:
        raise ProviderUnavailableError(unavailable(info))
    return provider, info, EmbeddingRequest(info.name, tuple(inputs), dimensions, user)


async def embed_checked(provider: Provider, request: EmbeddingRequest, info: ModelInfo) -> EmbeddingResult:
    """The provider's vectors, once they are one per input (a provider that lost some must not shift the
    rest), with their usage estimated from the texts' length when the provider counted none."""
    result = await provider.embed(request)
    count = len(request.inputs)
    if len(result.vectors) != count:
        raise ProviderError(
            f"{info.id} returned {len(result.vectors)} embeddings for {count} inputs; retry the request."
        )
    if result.usage is not None and result.usage.prompt_tokens:
        return result
    estimate = sum(len(text) // _CHARS_PER_TOKEN + 1 for text in request.inputs)
    logger.info("%s reported no token count for an embeddings request; estimated %d tokens", info.id, estimate)
    return dataclasses.replace(result, usage=Usage(estimate, 0))
