"""Tools on Bedrock's Converse API: `toolConfig`, `toolUse` / `toolResult` content blocks, streamed `toolUse`.

The request's tools become `toolConfig.tools[].toolSpec` (the parameters schema as `inputSchema.json`),
its choice `toolChoice` (`auto`, `any` for "required", `tool` for a named one). In the history an
assistant's calls are `toolUse` blocks (their arguments parsed: Converse takes a JSON document) and a tool
message is a `toolResult` block of a user turn; results of parallel calls share one user turn, as
Converse wants. A streamed `contentBlockStart.start.toolUse` opens call number n (counted in order,
whatever the content block index), its `contentBlockDelta.delta.toolUse.input` pieces add arguments.

Which models call tools: AWS's "supported models and model features" table for Converse.
"""

from __future__ import annotations

from typing import Any

from genai_chatbot.models.features import JSON_OBJECT, JSON_SCHEMA
from genai_chatbot.models.tool_calls import TOOLS_FEATURE, parsed_arguments
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice, ToolCallDelta

#: Base model id prefixes whose models take `toolConfig` in Converse (and ConverseStream).
_TOOL_MODELS = (
    "anthropic.claude-3",
    "anthropic.claude-sonnet-4",
    "anthropic.claude-opus-4",
    "anthropic.claude-haiku-4",
    "amazon.nova",
    "meta.llama3-1",
    "meta.llama3-2-11b",
    "meta.llama3-2-90b",
    "meta.llama3-3",
    "meta.llama4",
    "mistral.mistral-large",
    "mistral.mistral-small",
    "mistral.pixtral",
    "cohere.command-r",
    "ai21.jamba",
    "writer.palmyra",
)


#: What a model that calls tools can do: structured output rides on a tool (see `bedrock_structured`).
_TOOL_FEATURES = frozenset({TOOLS_FEATURE, JSON_OBJECT, JSON_SCHEMA})


def tool_features(base_id: str) -> frozenset[str]:
    """The tool features of a Bedrock model, by its base model id: tools and structured output, or none."""
    return _TOOL_FEATURES if base_id.startswith(_TOOL_MODELS) else frozenset()


def has_tool_parts(message: Message) -> bool:
    return bool(message.tool_calls) or message.role == "tool"


def tool_config(request: ChatRequest, history_has_tools: bool) -> dict[str, Any] | None:
    """`toolConfig` for `request`, or `None` when it offers no tools.

    Converse has no "none" choice: such a request is sent without tools, unless the history holds tool
    blocks (Converse then insists on a `toolConfig`), when the model is left to choose.
    """
    if not request.tools or (request.tool_choice == "none" and not history_has_tools):
        return None
    config: dict[str, Any] = {
        "tools": [
            {
                "toolSpec": {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description else {}),
                    "inputSchema": {"json": dict(tool.parameters)},
                }
            }
            for tool in request.tools
        ]
    }
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        config["toolChoice"] = {"tool": {"name": choice.name}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def tool_blocks(message: Message) -> list[dict[str, Any]]:
    """A message with tool calls, or a tool result, as Converse content blocks."""
    if message.role == "tool":
        result = {"toolUseId": message.tool_call_id, "content": [{"text": message.content}]}
        return [{"toolResult": result}]
    blocks: list[dict[str, Any]] = [{"text": message.content}] if message.content else []
    for call in message.tool_calls:
        arguments = parsed_arguments(call)
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": arguments}})
    return blocks


class ToolUseStream:
    """Turns ConverseStream's tool-use events into `ToolCallDelta`s numbered 0, 1, … in the order calls start."""

    def __init__(self) -> None:
        self._calls: dict[int, int] = {}  # content block index: call index

    def start(self, event: dict[str, Any]) -> ToolCallDelta | None:
        """The first piece of a call, for a `contentBlockStart` that opens one."""
        tool_use = (event.get("start") or {}).get("toolUse")
        if not tool_use:
            return None
        index = self._calls.setdefault(int(event.get("contentBlockIndex", len(self._calls))), len(self._calls))
        return ToolCallDelta(index, tool_use.get("toolUseId"), tool_use.get("name"), "")

    def delta(self, event: dict[str, Any]) -> ToolCallDelta | None:
        """More arguments, for a `contentBlockDelta` that carries `toolUse.input`."""
        tool_use = (event.get("delta") or {}).get("toolUse")
        if not tool_use:
            return None
        block = int(event.get("contentBlockIndex", 0))
        index = self._calls.setdefault(block, len(self._calls))
        return ToolCallDelta(index, arguments=tool_use.get("input") or "")
