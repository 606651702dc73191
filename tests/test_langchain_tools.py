"""Tools through the LangChain provider (the real `ChatOpenAI.bind_tools`), against the fake OpenAI server."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_http import KeysFile
from fake_openai import FakeOpenAI
from genai_chatbot.models.providers.langchain import LangChainProvider
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice, ToolCall, ToolSpec
from test_langchain_provider import KEY, entry
from test_openai_tools import fake  # noqa: F401  (the fake upstream, answering with tool calls)

WEATHER = ToolSpec(
    "get_weather", "The weather in a city now.", {"type": "object", "properties": {"city": {"type": "string"}}}
)
TIME = ToolSpec("get_time", None, {"type": "object", "properties": {}})


@pytest.fixture
def provider(tmp_path: Path, fake: FakeOpenAI) -> LangChainProvider:  # noqa: F811
    keys = KeysFile(tmp_path / "keys.json", OPENAI_API_KEY=KEY)
    return LangChainProvider([entry(fake.url)], keys.keys, timeout_seconds=10)


async def test_a_class_with_bind_tools_is_listed_with_the_tools_feature(provider: LangChainProvider) -> None:
    [info] = await provider.list_models()
    assert "tools" in info.features


async def test_tools_are_bound_and_streamed_calls_come_back_whole(
    provider: LangChainProvider,
    fake: FakeOpenAI,  # noqa: F811
) -> None:
    request = ChatRequest(
        model="gpt-local",
        messages=(Message("user", "Weather in Paris, and the time?"),),
        tools=(WEATHER, TIME),
        tool_choice=NamedToolChoice("get_weather"),
        parallel_tool_calls=True,
    )
    result = await provider.complete(request)
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == (
        ToolCall("call_abc", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_def", "get_time", "{}"),
    )
    sent = fake.last("/chat/completions").body
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", "get_time"]
    assert sent["tools"][0]["function"]["parameters"] == dict(WEATHER.parameters)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is True


async def test_a_history_with_calls_and_results_reaches_the_model_as_langchain_messages(
    provider: LangChainProvider,
    fake: FakeOpenAI,  # noqa: F811
) -> None:
    history = (
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=(ToolCall("call_abc", "get_weather", '{"city": "Paris"}'),)),
        Message("tool", "21 °C", tool_call_id="call_abc"),
    )
    await provider.complete(ChatRequest(model="gpt-local", messages=history, tools=(WEATHER,)))
    sent = fake.last("/chat/completions").body["messages"]
    assert sent[1]["role"] == "assistant"
    assert [(c["id"], c["function"]["name"]) for c in sent[1]["tool_calls"]] == [("call_abc", "get_weather")]
    assert sent[2] == {"role": "tool", "tool_call_id": "call_abc", "content": "21 °C"}
