"""Embeddings through the chat service: resolved, checked and admitted by the governor like a chat request.

An embeddings request is stateless and has no reply text: the governor admits it (model access, budgets,
rate limits) with a reply budget of 0 tokens, and is told once how it ended, with the inputs' tokens as
its prompt tokens, so usage and cost are counted the same way as for chat.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

from genai_chatbot.auth.principal import Principal
from genai_chatbot.chat.fallbacks import unavailable
from genai_chatbot.chat.governed import report
from genai_chatbot.governance.gate import OPEN_GOVERNOR, Governor, Surface
from genai_chatbot.models.errors import InvalidRequestError, ModelError, ProviderError, ProviderUnavailableError
from genai_chatbot.models.inputs import check_embeddings
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.models.types import EmbeddingRequest, EmbeddingResult, ModelInfo, Usage

logger = logging.getLogger(__name__)
#: English text averages about four characters a token: the estimate when a provider counts none.
_CHARS_PER_TOKEN = 4


async def embed(
    registry: ModelRegistry,
    governor: Governor,
    model_id: str,
    inputs: Sequence[str],
    *,
    dimensions: int | None,
    user: str | None,
    caller: Principal,
    surface: Surface,
) -> tuple[ModelInfo, EmbeddingResult]:
    """The model `model_id` names and the vectors of `inputs`, one per input, in order.

    Raises `ModelError` subclasses: 400 for a model that does not embed, 503 for one unavailable now; and
    the governor's refusals.
    """
    if not inputs:
        raise InvalidRequestError("input must hold at least one text.", param="input")
    provider, info = await registry.resolve(model_id)
    check_embeddings(info)
    if not info.available:
        raise ProviderUnavailableError(unavailable(info))
    request = EmbeddingRequest(info.name, tuple(inputs), dimensions, user)
    if governor is OPEN_GOVERNOR:
        return info, _checked(await provider.embed(request), request, info)
    admission = await governor.admit(caller, info, surface, 0)
    clock = time.perf_counter()
    status, usage, error_type = "cancelled", None, None
    try:
        result = _checked(await provider.embed(request), request, info)
        status, usage = "complete", result.usage
        return info, result
    except ModelError as exc:
        status, error_type = "failed", exc.kind
        raise
    finally:
        await report(admission, info.id, status, usage, time.perf_counter() - clock, None, error_type)


def _checked(result: EmbeddingResult, request: EmbeddingRequest, info: ModelInfo) -> EmbeddingResult:
    """`result`, once it holds one vector per input (a provider that lost some must not shift the rest), with
    its usage estimated from the texts' length when the provider counted none."""
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
