"""Tools on Cohere's v2 chat API, through the `cohere` SDK's own types.

Cohere takes `tools` in OpenAI's function shape and a `tool_choice` of only "REQUIRED" or "NONE": "auto"
is its default (sent as nothing), and a choice naming one function is sent as that function alone with
"REQUIRED", which is what it means. An assistant's calls are `tool_calls` of its message, a result a
`tool` message. Streamed, `tool-call-start` names call `index` and `tool-call-delta` adds arguments; the
model's `tool-plan` (its reasoning before calling) is not part of the reply's content and is not passed on.

OpenAI's `strict` is per tool; Cohere's `strict_tools` is per request, all tools or none. So a request with
at least one strict tool is sent with `strict_tools=True`, which makes every tool strict: the guarantee the
client asked for is kept, and the other tools' calls are held to the schemas they declared anyway. (A schema
Cohere cannot make strict is then Cohere's 400, passed on, rather than a strict tool silently loosened.)
"""

from __future__ import annotations

from typing import Any

from genai_chatbot.models.tool_calls import TOOLS_FEATURE
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice, ToolCall, ToolCallDelta

#: Every current Cohere chat model (Command A, R+, R, R7B) calls tools.
COHERE_TOOL_FEATURES = frozenset({TOOLS_FEATURE})


def tool_arguments(request: ChatRequest) -> dict[str, Any]:
    """The `tools` and `tool_choice` arguments of `chat` / `chat_stream` for `request` (empty: none)."""
    import cohere

    if not request.tools:
        return {}
    choice = request.tool_choice
    tools = request.tools
    if isinstance(choice, NamedToolChoice):
        tools = tuple(t for t in tools if t.name == choice.name)
    arguments: dict[str, Any] = {
        "tools": [
            cohere.ToolV2(
                type="function",
                function=cohere.ToolV2Function(name=t.name, description=t.description, parameters=dict(t.parameters)),
            )
            for t in tools
        ]
    }
    if any(t.strict for t in tools):
        arguments["strict_tools"] = True
    if isinstance(choice, NamedToolChoice) or choice == "required":
        arguments["tool_choice"] = "REQUIRED"
    elif choice == "none":
        arguments["tool_choice"] = "NONE"
    return arguments


def tool_message(message: Message) -> Any:
    """A history message with tool calls or a tool result, as the SDK's message type."""
    import cohere

    if message.role == "tool":
        return cohere.ToolChatMessageV2(tool_call_id=message.tool_call_id or "", content=message.content)
    calls = [
        cohere.ToolCallV2(
            id=c.id, type="function", function=cohere.ToolCallV2Function(name=c.name, arguments=c.arguments)
        )
        for c in message.tool_calls
    ]
    if message.content:
        return cohere.AssistantChatMessageV2(tool_calls=calls, content=message.content)
    return cohere.AssistantChatMessageV2(tool_calls=calls)  # Cohere takes no null content


def stream_delta(event: Any) -> ToolCallDelta | None:
    """The tool-call piece of a `tool-call-start` or `tool-call-delta` stream event, else `None`."""
    if event.type not in ("tool-call-start", "tool-call-delta"):
        return None
    message = event.delta.message if event.delta is not None else None
    call = message.tool_calls if message is not None else None
    if call is None:
        return None
    function = call.function
    arguments = (function.arguments if function is not None else None) or ""
    if event.type == "tool-call-start":
        name = function.name if function is not None else None
        return ToolCallDelta(int(event.index or 0), call.id, name, arguments)
    return ToolCallDelta(int(event.index or 0), arguments=arguments)


def calls_of(message: Any) -> tuple[ToolCall, ...]:
    """A whole reply's tool calls."""
    return tuple(
        ToolCall(c.id or f"call_{i}", c.function.name or "", c.function.arguments or "")
        for i, c in enumerate(getattr(message, "tool_calls", None) or ())
        if c.function is not None
    )
