"""OpenAI's embeddings call (`POST embeddings`), for every OpenAI-protocol provider: OpenAI, OpenAI-compatible
endpoints and Azure OpenAI deployments. Vectors are asked for as floats and returned in input order.
"""

from __future__ import annotations

import json
from typing import Any

from genai_chatbot.models.errors import ProviderError
from genai_chatbot.models.providers.openai_wire import OpenAIWire
from genai_chatbot.models.types import EmbeddingRequest, EmbeddingResult, Usage


async def embed_over(wire: OpenAIWire, path: str, model: str, request: EmbeddingRequest) -> EmbeddingResult:
    """`POST {path}` (OpenAI's embeddings) on `wire` for `model`; vectors in the order of the inputs."""
    body: dict[str, Any] = {"model": model, "input": list(request.inputs), "encoding_format": "float"}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user is not None:
        body["user"] = request.user
    raw = await wire.post(path, body)
    try:
        reply = json.loads(raw)
        items = sorted(reply["data"], key=lambda item: int(item.get("index", 0)))
        vectors = tuple(tuple(float(x) for x in item["embedding"]) for item in items)
        counts = reply.get("usage") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ProviderError(f"{wire.ctx.label} answered the embeddings request with something unreadable.") from None
    return EmbeddingResult(vectors, Usage(int(counts.get("prompt_tokens") or 0), 0))
