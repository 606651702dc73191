"""Tools and structured output through Azure OpenAI: forwarded to the deployment as sent, streamed calls back
whole, against a real local HTTP server configured with the documented keys."""

from __future__ import annotations

import functools

from fake_openai import FakeOpenAI, tool_call_reply
from genai_chatbot.models.providers.azure_openai import AzureOpenAIProvider
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice, ResponseFormat, ToolCall, ToolSpec
from test_azure_openai import DEPLOYMENT_PATH, fake, keys_file, provider  # noqa: F401  (fixtures)

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city now.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    strict=True,
)


async def test_tools_reach_the_deployment_as_sent_and_streamed_calls_come_back_whole(
    provider: AzureOpenAIProvider,  # noqa: F811
    fake: FakeOpenAI,  # noqa: F811
) -> None:
    fake.answer = functools.partial(tool_call_reply, calls=[("call_1", "get_weather", ['{"city": ', '"Paris"}'])])
    request = ChatRequest(
        model="Model1",
        messages=(Message("user", "Weather in Paris?"),),
        tools=(WEATHER,),
        tool_choice=NamedToolChoice("get_weather"),
        parallel_tool_calls=False,
    )
    result = await provider.complete(request)
    assert (result.finish_reason, result.tool_calls) == (
        "tool_calls",
        (ToolCall("call_1", "get_weather", '{"city": "Paris"}'),),
    )
    sent = fake.last(DEPLOYMENT_PATH).body
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER.description,
                "parameters": dict(WEATHER.parameters),
                "strict": True,
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False


async def test_response_format_reaches_the_deployment_as_openais_json_schema(
    provider: AzureOpenAIProvider,  # noqa: F811
    fake: FakeOpenAI,  # noqa: F811
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    request = ChatRequest(
        model="Model1",
        messages=(Message("user", "The capital of France?"),),
        response_format=ResponseFormat("json_schema", schema, name="City", strict=True),
    )
    await provider.complete(request)
    assert fake.last(DEPLOYMENT_PATH).body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "City", "schema": schema, "strict": True},
    }
