"""`/v1` content parts as the model interface's `Message.parts`: text kept in order, images read to bytes.

A message whose content is a string, or a list of text parts only, gets no parts (its `content` says it
all, and the hot path of plain chat stays as it was); one with an image gets every part, in order.
"""

from __future__ import annotations

from genai_chatbot.api.images import ImageReader
from genai_chatbot.api.schemas import ChatMessageIn, ImagePartIn
from genai_chatbot.models.types import ContentPart, ImagePart, TextPart


async def content_parts(message: ChatMessageIn, index: int, images: ImageReader) -> tuple[ContentPart, ...]:
    """The parts of `messages[index]`, or `()` when it holds text only."""
    content = message.content
    if not isinstance(content, list) or not any(isinstance(part, ImagePartIn) for part in content):
        return ()
    parts: list[ContentPart] = []
    for number, part in enumerate(content):
        if isinstance(part, ImagePartIn):
            param = f"messages[{index}].content[{number}].image_url"
            media_type, data = await images.read(part.image_url.url, param)
            parts.append(ImagePart(media_type, data, part.image_url.detail))
        else:
            parts.append(TextPart(part.text))
    return tuple(parts)
