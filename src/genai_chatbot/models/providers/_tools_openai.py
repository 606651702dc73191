"""Tools on OpenAI's wire (OpenAI, Azure OpenAI, every OpenAI-compatible server): the model types as OpenAI's
JSON and back.

The request's tools, tool choice and tool messages are sent as OpenAI defines them; the reply's
`tool_calls` (whole, or streamed as `delta.tool_calls` pieces) come back as `ToolCall` / `ToolCallDelta`
with the upstream's own ids and indexes, so a client sees the upstream's calls as they were.
"""

from __future__ import annotations

from typing import Any

from genai_chatbot.models.tool_calls import TOOLS_FEATURE
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice, ToolCall, ToolCallDelta

#: What a model behind OpenAI's wire can do with tools: everything is forwarded, the upstream decides.
WIRE_TOOL_FEATURES = frozenset({TOOLS_FEATURE})


def message_json(message: Message) -> dict[str, Any]:
    """A history message with tool calls or a tool result, as OpenAI takes it."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    return {
        "role": message.role,
        "content": message.content or None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ],
    }


def add_tool_fields(body: dict[str, Any], request: ChatRequest) -> None:
    """Put the request's `tools`, `tool_choice` and `parallel_tool_calls` into `body`, when it has them."""
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description is not None else {}),
                    "parameters": dict(tool.parameters),
                    **({"strict": tool.strict} if tool.strict is not None else {}),
                },
            }
            for tool in request.tools
        ]
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice is not None:
        body["tool_choice"] = choice
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls


def deltas_of(calls: Any) -> tuple[ToolCallDelta, ...]:
    """A stream chunk's `delta.tool_calls` as our deltas; pieces without an index are taken as call 0."""
    deltas: list[ToolCallDelta] = []
    for position, call in enumerate(calls if isinstance(calls, list) else ()):
        function = call.get("function") or {}
        deltas.append(
            ToolCallDelta(
                index=int(call.get("index", position)),
                id=call.get("id") or None,
                name=function.get("name") or None,
                arguments=function.get("arguments") or "",
            )
        )
    return tuple(deltas)


def calls_of(calls: Any) -> tuple[ToolCall, ...]:
    """A whole reply's `message.tool_calls` as our calls."""
    return tuple(
        ToolCall(
            str(call.get("id") or f"call_{i}"),
            str((call.get("function") or {}).get("name") or ""),
            str((call.get("function") or {}).get("arguments") or ""),
        )
        for i, call in enumerate(calls if isinstance(calls, list) else ())
    )
