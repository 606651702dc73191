"""Tools on LangChain chat models: `bind_tools`, `AIMessage.tool_calls` / `ToolMessage` in the history, and the
streamed `tool_call_chunks` as our deltas.

A class calls tools when it overrides `BaseChatModel.bind_tools` (the base raises NotImplementedError).
Tools are bound in OpenAI's dict form, which every integration's `bind_tools` accepts; `tool_choice` goes
as LangChain spells it (a function's name, or "auto" / "required" / "none"), and `parallel_tool_calls`
only to a `bind_tools` that declares it. Integrations number streamed calls differently (OpenAI by call,
Anthropic by content block), so calls are renumbered 0, 1, … in the order they start.
"""

from __future__ import annotations

import inspect
from typing import Any

from genai_chatbot.models.tool_calls import TOOLS_FEATURE, parsed_arguments
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice, ToolCallDelta


def tool_features(cls: type[Any]) -> frozenset[str]:
    """The feature "tools" for a chat model class whose `bind_tools` is its own."""
    try:
        from langchain_core.language_models import BaseChatModel
    except ImportError:
        return frozenset()
    own = getattr(cls, "bind_tools", None)
    return frozenset({TOOLS_FEATURE}) if own is not None and own is not BaseChatModel.bind_tools else frozenset()


def with_tools(model: Any, request: ChatRequest) -> Any:
    """`model` bound to the request's tools, or `model` itself when it offers none."""
    if not request.tools:
        return model
    tools = [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                **({"description": tool.description} if tool.description else {}),
                "parameters": dict(tool.parameters),
            },
        }
        for tool in request.tools
    ]
    kwargs: dict[str, Any] = {}
    choice = request.tool_choice
    if choice is not None:
        kwargs["tool_choice"] = choice.name if isinstance(choice, NamedToolChoice) else choice
    accepted = inspect.signature(model.bind_tools).parameters
    if request.parallel_tool_calls is not None and "parallel_tool_calls" in accepted:
        kwargs["parallel_tool_calls"] = request.parallel_tool_calls
    return model.bind_tools(tools, **kwargs)


def tool_message(message: Message) -> Any:
    """A history message with tool calls or a tool result as LangChain's `AIMessage` / `ToolMessage`."""
    from langchain_core.messages import AIMessage, ToolMessage

    if message.role == "tool":
        return ToolMessage(content=message.content, tool_call_id=message.tool_call_id or "")
    calls = [{"name": c.name, "args": parsed_arguments(c), "id": c.id, "type": "tool_call"} for c in message.tool_calls]
    return AIMessage(content=message.content, tool_calls=calls)


class ToolCallChunks:
    """`AIMessageChunk.tool_call_chunks` as our deltas, calls numbered in the order they start."""

    def __init__(self) -> None:
        self._indexes: dict[Any, int] = {}

    def deltas(self, chunks: Any) -> tuple[ToolCallDelta, ...]:
        out = []
        for position, piece in enumerate(chunks or ()):
            key = piece.get("index")
            if key is None:
                key = ("position", position)
            index = self._indexes.setdefault(key, len(self._indexes))
            name, arguments = piece.get("name") or None, piece.get("args") or ""
            out.append(ToolCallDelta(index, piece.get("id") or None, name, arguments))
        return tuple(out)
