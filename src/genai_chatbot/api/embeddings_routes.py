"""`POST /v1/embeddings`, as OpenAI defines it, through the chat service (admitted by the governor).

Inputs are texts: one string or a list of them. Token arrays (lists of integers) are refused, since no
provider here takes them through one interface. `encoding_format: "base64"` is what the openai SDK asks
for by default: each vector as the base64 of its little-endian float32 values, as OpenAI sends it.
"""

from __future__ import annotations

import array
import base64
import sys
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from genai_chatbot.api.deps import Caller, Service
from genai_chatbot.api.limits import LimitExceededError, Limits
from genai_chatbot.api.schemas import EmbeddingRequest
from genai_chatbot.config import LimitSettings
from genai_chatbot.models.errors import InvalidRequestError

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


def texts_of(body: EmbeddingRequest, limits: LimitSettings) -> list[str]:
    """The texts to embed, within `limits.max_embedding_inputs` and `limits.max_embedding_chars`."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not all(isinstance(text, str) for text in texts):
        raise InvalidRequestError(
            "input holds token arrays, which this server does not take; send the text itself (a string or a "
            "list of strings).",
            param="input",
        )
    strings: list[str] = texts  # type: ignore[assignment]  # checked just above
    if not strings or any(not text for text in strings):
        raise InvalidRequestError("input must be a non-empty text or a list of non-empty texts.", param="input")
    if len(strings) > limits.max_embedding_inputs:
        raise LimitExceededError(
            f"input has {len(strings)} texts; the limit is {limits.max_embedding_inputs}. Send them in several "
            "requests, or raise the setting limits.max_embedding_inputs (GENAI_CHATBOT_LIMITS__MAX_EMBEDDING_INPUTS).",
            "input",
        )
    total = sum(len(text) for text in strings)
    if total > limits.max_embedding_chars:
        raise LimitExceededError(
            f"input is {total} characters long together; the limit is {limits.max_embedding_chars}. Send less per "
            "request, or raise the setting limits.max_embedding_chars (GENAI_CHATBOT_LIMITS__MAX_EMBEDDING_CHARS).",
            "input",
        )
    return strings


def encoded(vector: tuple[float, ...], encoding: str) -> list[float] | str:
    """`vector` as OpenAI sends it: a list of floats, or base64 of little-endian float32 values."""
    if encoding == "float":
        return list(vector)
    values = array.array("f", vector)
    if sys.byteorder != "little":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


@router.post("/embeddings", response_model=None)
async def embeddings(body: EmbeddingRequest, service: Service, caller: Caller, limits: Limits) -> JSONResponse:
    """Embed a text or a list of texts with an embedding model (one that GET /v1/models lists)."""
    texts = texts_of(body, limits)
    _, result = await service.embed(body.model, texts, dimensions=body.dimensions, user=body.user, caller=caller)
    prompt_tokens = result.usage.prompt_tokens if result.usage else 0
    data: list[dict[str, Any]] = [
        {"object": "embedding", "index": i, "embedding": encoded(vector, body.encoding_format)}
        for i, vector in enumerate(result.vectors)
    ]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": body.model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )
