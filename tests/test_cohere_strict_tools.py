"""OpenAI's per-tool `strict` on Cohere, whose `strict_tools` is all tools or none, as the fake Cohere v2 API
received it through the real `cohere` SDK."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fake_http import FakeAPI
from genai_chatbot.models.providers.cohere import CohereProvider
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice
from test_cohere_provider import MODEL, fake_api, keys_file, provider  # noqa: F401  (fixtures)
from test_cohere_tools import TIME, WEATHER, tool_call_stream


@pytest.mark.parametrize(
    ("strict", "sent"),
    [
        ((True, True), True),  # every tool strict: strict_tools
        ((True, None), True),  # one strict tool makes the request strict: its guarantee is kept
        ((False, None), None),  # none strict: the field is not sent
    ],
)
async def test_strict_tools_is_sent_when_any_offered_tool_is_strict(
    provider: CohereProvider,  # noqa: F811
    fake_api: FakeAPI,  # noqa: F811
    strict: tuple[bool | None, bool | None],
    sent: bool | None,
) -> None:
    fake_api.on("POST", "/v2/chat", tool_call_stream)
    tools = (replace(WEATHER, strict=strict[0]), replace(TIME, strict=strict[1]))
    request = ChatRequest(model=MODEL, messages=(Message("user", "Weather in Paris?"),), tools=tools)
    [c async for c in provider.stream(request)]
    assert fake_api.received[-1].body.get("strict_tools") is sent


async def test_only_the_tools_sent_decide_strictness(provider: CohereProvider, fake_api: FakeAPI) -> None:  # noqa: F811
    """A named choice sends that tool alone, so a strict tool left out does not make the request strict."""
    fake_api.on("POST", "/v2/chat", tool_call_stream)
    tools = (WEATHER, replace(TIME, strict=True))
    request = ChatRequest(
        model=MODEL, messages=(Message("user", "Hi"),), tools=tools, tool_choice=NamedToolChoice("get_weather")
    )
    [c async for c in provider.stream(request)]
    body = fake_api.received[-1].body
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert "strict_tools" not in body
