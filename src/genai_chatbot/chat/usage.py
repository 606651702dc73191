"""Token counts for a reply whose provider reported none, so every answer has usage.

Some upstreams report no usage (an OpenAI-compatible server that knows no `stream_options`, a SageMaker
container, a LangChain model). Then the reply is counted with the model's tokenizer where the provider
has one (the embedded model: llama.cpp's), else estimated from its length by the same rule that trims
histories to the window (about three characters a token). The server log says which, once per model.
"""

from __future__ import annotations

import logging

from genai_chatbot.chat.requests import PreparedChat
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.types import Message, Usage

logger = logging.getLogger(__name__)

_said: set[str] = set()  # the models whose counting was logged: once each, not per reply


async def count_usage(prepared: PreparedChat, text: str) -> Usage:
    """The usage of `text` as the reply to `prepared`, counted or estimated (see the module)."""
    provider, request = prepared.provider, prepared.request
    prompt = await provider.count_tokens(request.model, request.system, request.messages)
    # A message's count includes the template's tokens around it; an empty message's count is just those.
    reply = await provider.count_tokens(request.model, None, [Message("assistant", text), Message("assistant", "")])
    if prepared.model.id not in _said:
        _said.add(prepared.model.id)
        exact = type(provider).count_tokens is not Provider.count_tokens
        how = "counted with its tokenizer" if exact else "estimated from the text's length (about 3 characters a token)"
        logger.info("%s reports no token usage; its usage is %s.", prepared.model.id, how)
    return Usage(sum(prompt), max(0, reply[1] - reply[2]))
