"""Tool calls across the model interface: streamed pieces gathered into whole calls, and who may ask for them.

A provider streams `ToolCallDelta`s the way OpenAI does (the first piece of call `index` names it, later
pieces add argument text); `ToolCallGatherer` turns them back into `ToolCall`s for a whole reply.
`check_tool_request` refuses a request with tools for a model that cannot call them, naming the feature
and the model, rather than dropping the tools without a word.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.types import (
    ChatRequest,
    ModelInfo,
    NamedToolChoice,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)

#: The name `ModelInfo.features` gives a model that takes `tools`.
TOOLS_FEATURE = "tools"
#: A model that calls a tool only when `tool_choice` names one or is "required" (the embedded model).
FORCED_TOOLS_FEATURE = "forced_tools"


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """The tools a caller offers the model, and whether and how it must call one (OpenAI's fields)."""

    tools: tuple[ToolSpec, ...] = ()
    choice: ToolChoice | None = None
    parallel_calls: bool | None = None

    @classmethod
    def of(cls, request: ChatRequest) -> ToolRequest:
        return cls(request.tools, request.tool_choice, request.parallel_tool_calls)

    def applied_to(self, info: ModelInfo, request: ChatRequest) -> ChatRequest:
        """`request` with these tools, as `info`'s model can take them (see `check_tool_request`)."""
        if self == NO_TOOLS and not any(m.tool_calls or m.role == "tool" for m in request.messages):
            return request
        tooled = replace(request, tools=self.tools, tool_choice=self.choice, parallel_tool_calls=self.parallel_calls)
        return check_tool_request(info, tooled)


NO_TOOLS = ToolRequest()


class ToolCallGatherer:
    """Whole tool calls from their streamed pieces, in `index` order."""

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}
        self._names: dict[int, str] = {}
        self._arguments: dict[int, list[str]] = {}

    def add(self, deltas: Iterable[ToolCallDelta]) -> None:
        for delta in deltas:
            if delta.id:
                self._ids[delta.index] = delta.id
            if delta.name:
                self._names[delta.index] = self._names.get(delta.index, "") + delta.name
            self._arguments.setdefault(delta.index, []).append(delta.arguments)

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(self._ids.get(index, f"call_{index}"), self._names.get(index, ""), "".join(pieces))
            for index, pieces in sorted(self._arguments.items())
        )


def parsed_arguments(call: ToolCall) -> Any:
    """A history call's arguments parsed, for APIs that take them as a JSON document rather than text."""
    try:
        return json.loads(call.arguments or "{}")
    except ValueError:
        raise InvalidRequestError(
            f"The arguments of tool call {call.id!r} in the history are not JSON; send them as the model "
            "produced them.",
            param="messages",
        ) from None


def check_tool_request(info: ModelInfo, request: ChatRequest) -> ChatRequest:
    """`request` as `info`'s model can take it: refused (400) when it has tools the model cannot call.

    So is a history with tool calls or results for such a model. `tool_choice: "none"` asks for no call,
    so for such a model the tools are dropped and the request answered as text.
    A `tool_choice` naming a function must name one of `tools`.
    """
    choice = request.tool_choice
    takes_tools = TOOLS_FEATURE in info.features or FORCED_TOOLS_FEATURE in info.features
    if not takes_tools and any(m.tool_calls or m.role == "tool" for m in request.messages):
        raise InvalidRequestError(
            f"The model {info.id} cannot call tools (the feature 'tools'), and the history holds tool calls or "
            "tool results; choose a model that can call tools.",
            param="messages",
        )
    if not request.tools:
        if isinstance(choice, NamedToolChoice) or choice == "required":
            raise InvalidRequestError(
                "tool_choice asks for a tool call but the request has no tools; send `tools` as well, or drop "
                "tool_choice.",
                param="tool_choice",
            )
        return request
    if isinstance(choice, NamedToolChoice) and choice.name not in {tool.name for tool in request.tools}:
        raise InvalidRequestError(
            f"tool_choice names the function {choice.name!r}, which is not among the request's tools; name one "
            "of them.",
            param="tool_choice",
        )
    if TOOLS_FEATURE in info.features:
        return request
    forced = isinstance(choice, NamedToolChoice) or choice == "required"
    if FORCED_TOOLS_FEATURE in info.features and (forced or choice == "none"):
        return request
    if choice == "none":
        return replace(request, tools=(), tool_choice=None, parallel_tool_calls=None)
    if FORCED_TOOLS_FEATURE in info.features:
        raise InvalidRequestError(
            f"The model {info.id} calls tools only when told which: tool_choice 'auto' (the default with tools) "
            "is not supported (the feature 'tools'); set tool_choice to a named function or 'required'.",
            param="tool_choice",
        )
    raise InvalidRequestError(
        f"The model {info.id} cannot call tools (the feature 'tools'); choose a model that can, or send the "
        "request without tools.",
        param="tools",
    )
