"""Tool calls on the embedded model: a forced call answered with arguments constrained by llama.cpp's grammar.

A small local model cannot be trusted to decide whether to call a tool, but it can fill in arguments when
told which function to call: with `tool_choice` naming a function (or "required" with one tool) its JSON
schema becomes a llama.cpp grammar (`LlamaGrammar.from_json_schema`), so the reply always parses as JSON
the schema allows, and it streams as the call's argument pieces. "required" with several tools constrains
the reply to `{"name": <one of them>, "arguments": <its schema>}` and yields the call once it is whole.
`tool_choice` "auto" (or unset) is refused before generation (the model's features say "forced_tools", not
"tools"); "none" answers text.

In the history, calls and results are written as plain text turns (an assistant line naming the call, a
user turn with the result), since chat templates differ in what they do with tool roles.
"""

from __future__ import annotations

import functools
import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from genai_chatbot.models.errors import InvalidRequestError, ProviderError
from genai_chatbot.models.tool_calls import FORCED_TOOLS_FEATURE
from genai_chatbot.models.types import (
    ChatRequest,
    FinishReason,
    Message,
    NamedToolChoice,
    ToolCallDelta,
    ToolSpec,
)

#: The embedded model calls a tool when told which (or told to call one), never of its own accord.
LOCAL_TOOL_FEATURES = frozenset({FORCED_TOOLS_FEATURE})


@functools.lru_cache(maxsize=64)
def _grammar(schema_json: str) -> Any:
    """The compiled grammar of a JSON schema; agents send the same tools with every turn, so it is kept."""
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_json, verbose=False)


def _plain(message: Message) -> Message:
    if message.role == "tool":
        return Message("user", f"Result of the function call {message.tool_call_id}: {message.content}")
    if message.tool_calls:
        calls = "\n".join(f"Called {c.name} ({c.id}) with {c.arguments}" for c in message.tool_calls)
        return Message("assistant", f"{message.content}\n{calls}".strip())
    return message


def plain_history(request: ChatRequest) -> ChatRequest:
    """`request` with tool calls and results in its history written as text turns."""
    if not any(m.tool_calls or m.role == "tool" for m in request.messages):
        return request
    return replace(request, messages=tuple(_plain(m) for m in request.messages))


def _describe(tool: ToolSpec) -> str:
    about = f": {tool.description}" if tool.description else ""
    return f"- {tool.name}{about}. Arguments (JSON schema): {json.dumps(tool.parameters)}"


@dataclass
class ForcedCall:
    """One forced tool call: the grammar its reply follows, and the deltas made of the generated text."""

    request: ChatRequest
    grammar: Any
    #: The tool when its name is known up front (then arguments stream); `None`: the reply names it.
    tool: ToolSpec | None
    id: str = field(default_factory=lambda: f"call_{secrets.token_hex(12)}")
    _text: list[str] = field(default_factory=list)
    _started: bool = False

    def feed(self, text: str) -> tuple[ToolCallDelta, ...]:
        """The deltas for a piece of generated text (none while a "required" choice is still being written)."""
        if self.tool is None:
            self._text.append(text)
            return ()
        if not self._started:
            self._started = True
            return (ToolCallDelta(0, self.id, self.tool.name, text),)
        return (ToolCallDelta(0, arguments=text),)

    def finish(self, finish: FinishReason) -> tuple[tuple[ToolCallDelta, ...], FinishReason]:
        """The last deltas and the finish reason: `tool_calls` when the call is whole."""
        if finish != "stop":
            return (), finish
        if self.tool is not None:
            opened = () if self._started else (ToolCallDelta(0, self.id, self.tool.name, ""),)
            return opened, "tool_calls"
        try:
            chosen = json.loads("".join(self._text))
            name, arguments = str(chosen["name"]), json.dumps(chosen["arguments"])
        except (ValueError, KeyError, TypeError):
            raise ProviderError("The local model's tool call did not parse, though a grammar bound it.") from None
        return (ToolCallDelta(0, self.id, name, arguments),), "tool_calls"


def forced_call(request: ChatRequest) -> ForcedCall | None:
    """The forced call `request` asks for (a named or "required" `tool_choice`), or `None`: answer text."""
    choice = request.tool_choice
    if not request.tools or not (isinstance(choice, NamedToolChoice) or choice == "required"):
        return None
    tools = request.tools
    if isinstance(choice, NamedToolChoice):
        tools = tuple(t for t in request.tools if t.name == choice.name)
    if len(tools) == 1:
        (tool,) = tools
        schema: dict[str, Any] = dict(tool.parameters)
        instruction = (
            f"Call the function {tool.name} now.\n{_describe(tool)}\nReply with only its arguments, as one JSON object."
        )
    else:
        tool = None
        schema = {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"name": {"const": t.name}, "arguments": dict(t.parameters)},
                    "required": ["name", "arguments"],
                }
                for t in tools
            ]
        }
        instruction = (
            "Call one of these functions now:\n"
            + "\n".join(_describe(t) for t in tools)
            + '\nReply with only a JSON object {"name": the function, "arguments": its arguments}.'
        )
    try:
        grammar = _grammar(json.dumps(schema, sort_keys=True))
    except Exception as exc:  # llama.cpp's converter raises ValueError/KeyError/… on schemas it cannot take
        raise InvalidRequestError(
            f"The local model cannot follow the parameters schema of {[t.name for t in tools]}: {exc}; simplify "
            "the schema (llama.cpp's JSON-schema grammar subset).",
            param="tools",
        ) from None
    system = f"{request.system}\n\n{instruction}" if request.system else instruction
    return ForcedCall(replace(request, system=system), grammar, tool)
