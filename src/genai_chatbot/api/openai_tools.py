"""Tools in the OpenAI-compatible API: the JSON shapes OpenAI defines, and their conversion to the model types.

In: `tools`, `tool_choice`, assistant messages with `tool_calls` and `tool` messages (validated here, then
turned into `ToolSpec`, `ToolChoice` and `Message`). Out: a whole reply's `message.tool_calls`, and the
`delta.tool_calls` of a streamed reply, exactly as OpenAI streams them: the first piece of each call carries
`index`, `id`, `type` and the function's name, later pieces only `index` and argument text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.types import (
    ContentPart,
    Message,
    NamedToolChoice,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)

#: OpenAI's rule for function names.
FunctionName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
#: OpenAI's own limit on the number of tools in one request.
MAX_TOOLS = 128


class FunctionIn(BaseModel):
    """A function the model may call; `parameters` is a JSON schema (its size is bounded by the body limit)."""

    model_config = ConfigDict(extra="ignore")

    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(BaseModel):
    type: Literal["function"] = Field(description='Only "function" tools exist.')
    function: FunctionIn

    def spec(self) -> ToolSpec:
        f = self.function
        return ToolSpec(f.name, f.description, f.parameters or {"type": "object", "properties": {}}, f.strict)


class FunctionNameIn(BaseModel):
    name: FunctionName


class NamedToolChoiceIn(BaseModel):
    type: Literal["function"]
    function: FunctionNameIn


ToolChoiceIn = Literal["auto", "none", "required"] | NamedToolChoiceIn


class FunctionCallIn(BaseModel):
    name: FunctionName
    arguments: str = Field(description="The arguments as JSON text, as the model produced them.")


class ToolCallIn(BaseModel):
    """A call the assistant made, in the history the client sends back."""

    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ToolFields(BaseModel):
    """The tool fields of `POST /v1/chat/completions`."""

    tools: list[ToolIn] | None = Field(default=None, max_length=MAX_TOOLS, description="At most 128 functions.")
    tool_choice: ToolChoiceIn | None = Field(
        default=None, description='"auto", "none", "required", or {"type": "function", "function": {"name": …}}.'
    )
    parallel_tool_calls: bool | None = None

    def tool_specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec() for tool in self.tools or ())

    def tool_choice_value(self) -> ToolChoice | None:
        choice = self.tool_choice
        if isinstance(choice, NamedToolChoiceIn):
            return NamedToolChoice(choice.function.name)
        return choice


def tool_calls_of(calls: list[ToolCallIn] | None) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in calls or ())


def tool_calls_json(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    """A whole reply's `message.tool_calls`."""
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def tool_call_deltas_json(deltas: tuple[ToolCallDelta, ...]) -> list[dict[str, Any]]:
    """A streamed chunk's `delta.tool_calls`: a call's first piece (the one with its id) names it in full."""
    out: list[dict[str, Any]] = []
    for delta in deltas:
        function: dict[str, str] = {"arguments": delta.arguments}
        item: dict[str, Any] = {"index": delta.index}
        if delta.id is not None:
            item["id"] = delta.id
            item["type"] = "function"
            function = {"name": delta.name or "", "arguments": delta.arguments}
        elif delta.name:
            function = {"name": delta.name, "arguments": delta.arguments}
        item["function"] = function
        out.append(item)
    return out


def turn_of(
    role: str,
    text: str,
    tool_calls: list[ToolCallIn] | None,
    tool_call_id: str | None,
    parts: tuple[ContentPart, ...] = (),
) -> Message:
    """One non-system message of the history as the model interface takes it, with its content `parts` when
    the client sent parts.

    Raises `InvalidRequestError` (400, as OpenAI answers) for a tool message without the id of the call it
    answers, and for tool calls on anything but an assistant message.
    """
    if role == "tool":
        if not tool_call_id:
            raise InvalidRequestError(
                "A message with role 'tool' needs the tool_call_id of the call it answers.", param="messages"
            )
        return Message("tool", text, tool_call_id=tool_call_id)
    if tool_calls and role != "assistant":
        raise InvalidRequestError("Only assistant messages may carry tool_calls.", param="messages")
    if role == "assistant":
        return Message("assistant", text, parts, tool_calls=tool_calls_of(tool_calls))
    return Message("user", text, parts)
