"""Structured output on Bedrock's Converse API, which has no `response_format`: the schema as a forced tool.

As LiteLLM and LangChain's Bedrock models do it, a `response_format` of `json_schema` (or `json_object`)
becomes one more tool, the *answer tool*: named after the schema (`json_response` for `json_object`), its
input schema the response's schema, and `toolChoice` makes the model call it. That call is the answer: its
input is passed on as the message's content (JSON text, streamed as content deltas) and the reply ends
with `stop`, not `tool_calls`; the client never sees the answer tool.

With the client's own tools, OpenAI's meaning is kept:
- `tool_choice` "auto" (or unset): the model is offered the client's tools and the answer tool and must
  call one of them (`any`). A client tool's call comes back as a tool call (`tool_calls`), the answer
  tool's as the answer.
- "required" or a named function: the client asked for a tool call in this turn, so the format does not
  apply to it: the answer tool is not offered.
- "none": only the answer tool.
A client tool with the answer tool's name is a 400 that names the clash.

Forcing: `toolChoice.tool` is taken by Claude (3 and later) and Nova, `any` also by Mistral Large (AWS's
ToolChoice reference). The other models that call tools (Llama, Command R, Jamba, Palmyra) are offered the
answer tool without forcing: one that answers in text instead has that text passed on as it came. Text a
model says before calling the answer tool is not part of the answer and is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.types import ChatChunk, ChatRequest, NamedToolChoice, ToolCallDelta, ToolChoice, ToolSpec

#: Base model id prefixes whose models take `toolChoice.tool` (and `any`).
_NAMED_CHOICE = (
    "anthropic.claude-3",
    "anthropic.claude-sonnet-4",
    "anthropic.claude-opus-4",
    "anthropic.claude-haiku-4",
    "amazon.nova",
)
#: Base model id prefixes whose models take `toolChoice.any` but not `tool`.
_ANY_CHOICE = ("mistral.mistral-large",)
_JSON_OBJECT_TOOL = "json_response"
_DESCRIPTION = "Give your answer by calling this tool: its input is the reply itself, as JSON that follows the schema."


def with_answer_tool(request: ChatRequest, base_id: str) -> tuple[ChatRequest, str | None]:
    """`request` with its `response_format` turned into the answer tool, and that tool's name. `None` for a
    request that asks for no JSON (returned unchanged) or for a tool call in this turn (returned without
    its `response_format`, which does not apply to a turn that must call the client's tool)."""
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return request, None
    plain = replace(request, response_format=None)
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice) or choice == "required":
        return plain, None
    if response_format.type == "json_schema" and response_format.schema is not None:
        name = response_format.name or _JSON_OBJECT_TOOL
        schema = dict(response_format.schema)
    else:
        name, schema = _JSON_OBJECT_TOOL, {"type": "object"}
    client_tools = () if choice == "none" else request.tools
    if any(tool.name == name for tool in client_tools):
        raise InvalidRequestError(
            f"The tool {name!r} has the name of the response_format schema; on Bedrock the schema is sent as a "
            "tool of that name. Rename the tool or the schema.",
            param="response_format",
        )
    answer = ToolSpec(name, response_format.description or _DESCRIPTION, schema)
    forced: ToolChoice | None = None
    if base_id.startswith(_NAMED_CHOICE):
        forced = "required" if client_tools else NamedToolChoice(name)
    elif base_id.startswith(_ANY_CHOICE):
        forced = "required"
    elif client_tools:
        forced = "auto"
    return replace(plain, tools=(*client_tools, answer), tool_choice=forced, parallel_tool_calls=None), name


class AnswerTool:
    """An `emit` for the chunks of a structured reply: the answer tool's call becomes content, the rest of the
    calls keep their place, renumbered 0, 1, … without it; the finish reason says what the client got."""

    def __init__(self, name: str, emit: Callable[[ChatChunk], None]) -> None:
        self._name = name
        self._emit = emit
        self._answer: int | None = None  # the call index of the answer tool's call
        self._ignored: set[int] = set()  # later calls of the answer tool: one answer only
        self._calls: dict[int, int] = {}  # upstream call index: the client's
        self._held: list[str] = []  # text said before (or instead of) the answer

    def __call__(self, chunk: ChatChunk) -> None:
        answer: list[str] = []
        calls: list[ToolCallDelta] = []
        for delta in chunk.tool_calls:
            if delta.index == self._answer:
                answer.append(delta.arguments)
            elif delta.index in self._ignored:
                continue
            elif delta.name == self._name and delta.index not in self._calls:
                if self._answer is None:
                    self._answer = delta.index
                    answer.append(delta.arguments)
                else:
                    self._ignored.add(delta.index)
            else:
                calls.append(replace(delta, index=self._calls.setdefault(delta.index, len(self._calls))))
        if chunk.text:
            self._held.append(chunk.text)
        text = "".join(answer)
        if text or calls:
            self._emit(ChatChunk(text=text, tool_calls=tuple(calls)))
        if chunk.finish_reason is not None:
            self._finish(chunk)

    def _finish(self, chunk: ChatChunk) -> None:
        if self._answer is None and self._held:  # the model answered in text: that is its answer
            self._emit(ChatChunk(text="".join(self._held)))
        finish = chunk.finish_reason
        if finish == "tool_calls" and not self._calls:
            finish = "stop"
        self._emit(replace(chunk, text="", tool_calls=(), finish_reason=finish))
