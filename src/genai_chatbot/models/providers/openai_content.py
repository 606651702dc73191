"""Messages in OpenAI's chat shape, content parts included, and OpenAI's embeddings call.

Shared by every OpenAI-protocol provider (OpenAI, OpenAI-compatible endpoints, Azure OpenAI): a message
with images goes as OpenAI's content-part array, each image as an `image_url` data URL, so the upstream
needs to fetch nothing; a plain message stays a string.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from genai_chatbot.models.errors import ProviderError
from genai_chatbot.models.types import EmbeddingRequest, EmbeddingResult, ImagePart, Message, Usage

if TYPE_CHECKING:
    from genai_chatbot.models.providers.openai_wire import OpenAIWire


def openai_content(message: Message) -> str | list[dict[str, Any]]:
    """`message`'s content as OpenAI takes it: its text, or its parts when it has any."""
    if not message.parts:
        return message.content
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            image: dict[str, Any] = {"url": f"data:{part.media_type};base64,{base64.b64encode(part.data).decode()}"}
            if part.detail is not None:
                image["detail"] = part.detail
            parts.append({"type": "image_url", "image_url": image})
        else:
            parts.append({"type": "text", "text": part.text})
    return parts


async def embed_over(wire: OpenAIWire, path: str, model: str, request: EmbeddingRequest) -> EmbeddingResult:
    """`POST {path}` (OpenAI's embeddings) on `wire` for `model`; vectors in the order of the inputs."""
    body: dict[str, Any] = {"model": model, "input": list(request.inputs), "encoding_format": "float"}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user is not None:
        body["user"] = request.user
    response = await wire.http.send("POST", wire.base + path + wire.query, wire.headers, json.dumps(body).encode())
    if response.status >= 400:
        raise (await wire._error(response))[0]
    raw = await wire.http.read(response)
    try:
        reply = json.loads(raw)
        items = sorted(reply["data"], key=lambda item: int(item.get("index", 0)))
        vectors = tuple(tuple(float(x) for x in item["embedding"]) for item in items)
        counts = reply.get("usage") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ProviderError(f"{wire.ctx.label} answered the embeddings request with something unreadable.") from None
    return EmbeddingResult(vectors, Usage(int(counts.get("prompt_tokens") or 0), 0))
