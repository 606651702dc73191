"""The OpenAI fields beyond plain chat, as an OpenAI-protocol upstream takes them (see `openai_wire.chat_body`).

Such an upstream gets every field the client sent: the ones the model interface models, put back in
OpenAI's shape, and the ones it does not (`ChatRequest.extra`) as they came. Content parts stay an array,
as the client sent them, so an upstream sees the message the client wrote.
"""

from __future__ import annotations

import base64
from typing import Any

from genai_chatbot.models.types import ChatRequest, ImagePart, Message, ResponseFormat

#: Fields forwarded under their own name when set.
_PLAIN = ("presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "user")


def openai_fields(request: ChatRequest) -> dict[str, Any]:
    """The fields of `request` past model, messages and sampling, as OpenAI's API names them; `{}` for
    plain chat (the common case costs a few attribute reads)."""
    fields: dict[str, Any] = dict(request.extra)
    for name in _PLAIN:
        value = getattr(request, name)
        if value is not None:
            fields[name] = value
    if request.logit_bias is not None:
        fields["logit_bias"] = dict(request.logit_bias)
    if request.response_format is not None:
        fields["response_format"] = response_format_body(request.response_format)
    return fields


def response_format_body(response_format: ResponseFormat) -> dict[str, Any]:
    """`response_format` as OpenAI takes it."""
    if response_format.type != "json_schema":
        return {"type": response_format.type}
    schema: dict[str, Any] = {"name": response_format.name or "response"}
    if response_format.description is not None:
        schema["description"] = response_format.description
    if response_format.schema is not None:
        schema["schema"] = dict(response_format.schema)
    if response_format.strict is not None:
        schema["strict"] = response_format.strict
    return {"type": "json_schema", "json_schema": schema}


def message_content(message: Message) -> str | list[dict[str, Any]]:
    """A message's content: its text, or its parts as the array the client sent."""
    if not message.parts:
        return message.content
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            url = f"data:{part.media_type};base64,{base64.b64encode(part.data).decode()}"
            image: dict[str, Any] = {"url": url} | ({"detail": part.detail} if part.detail else {})
            content.append({"type": "image_url", "image_url": image})
        else:
            content.append({"type": "text", "text": part.text})
    return content
