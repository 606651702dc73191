"""Messages in OpenAI's chat shape, content parts included.

Shared by every OpenAI-protocol provider (OpenAI, OpenAI-compatible endpoints, Azure OpenAI): a message
with images goes as OpenAI's content-part array, each image as an `image_url` data URL, so the upstream
needs to fetch nothing; a plain message stays a string.
"""

from __future__ import annotations

import base64
from typing import Any

from genai_chatbot.models.types import ImagePart, Message


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
