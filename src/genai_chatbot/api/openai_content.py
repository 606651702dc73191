"""`/v1` content parts as the model interface's `Message.parts`: text kept in order, images read to bytes.

A message whose content is a string, or a list of text parts only, gets no parts (its `content` says it
all, and the hot path of plain chat stays as it was); one with an image gets every part, in order.
"""

from __future__ import annotations

from collections.abc import Sequence

from genai_chatbot.api.images import ImageReader
from genai_chatbot.api.schemas import ChatMessageIn, ImagePartIn
from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.types import ContentPart, ImagePart, TextPart


def check_image_roles(messages: Sequence[ChatMessageIn]) -> None:
    """Refuse images anywhere but in user messages (as OpenAI does), rather than drop them unseen."""
    for index, message in enumerate(messages):
        if message.role != "user" and message.images():
            raise InvalidRequestError(
                f"messages[{index}] is a {message.role} message with an image; only user messages may hold images.",
                param=f"messages[{index}].content",
            )


async def content_parts(message: ChatMessageIn, index: int, images: ImageReader) -> tuple[ContentPart, ...]:
    """The parts of `messages[index]` as the client sent them (images read and checked), or `()` for a plain
    string: an upstream that takes parts gets the array the client wrote."""
    content = message.content
    if not isinstance(content, list):
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
