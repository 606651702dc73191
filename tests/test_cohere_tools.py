"""Tools through the Cohere provider and the real `cohere` SDK, against a local server speaking Cohere's v2 API."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from fake_http import FakeAPI, Received, sse
from genai_chatbot.models.providers.cohere import CohereProvider
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice, ToolCall, ToolSpec
from test_cohere_provider import MODEL, fake_api, keys_file, provider  # noqa: F401  (fixtures)

WEATHER = ToolSpec(
    "get_weather", "The weather in a city now.", {"type": "object", "properties": {"city": {"type": "string"}}}
)
TIME = ToolSpec("get_time", "The time now.", {"type": "object", "properties": {}})


def tool_call_stream(_: Received) -> Response:
    def call_event(kind: str, index: int, call: dict[str, object]) -> dict[str, object]:
        return {"type": kind, "index": index, "delta": {"message": {"tool_calls": call}}}

    return sse(
        [
            {"type": "message-start", "id": "m1", "delta": {"message": {"role": "assistant"}}},
            {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look up the weather."}}},
            call_event(
                "tool-call-start",
                0,
                {"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
            ),
            call_event("tool-call-delta", 0, {"function": {"arguments": '{"city": '}}),
            call_event("tool-call-delta", 0, {"function": {"arguments": '"Paris"}'}}),
            {"type": "tool-call-end", "index": 0},
            {"type": "message-end", "id": "m1", "delta": {"finish_reason": "TOOL_CALL"}},
        ],
        named=True,
    )


async def test_tools_are_sent_and_streamed_calls_come_back(
    provider: CohereProvider,  # noqa: F811
    fake_api: FakeAPI,  # noqa: F811
) -> None:
    fake_api.on("POST", "/v2/chat", tool_call_stream)
    request = ChatRequest(
        model=MODEL,
        messages=(Message("user", "Weather in Paris?"),),
        tools=(WEATHER, TIME),
        tool_choice=NamedToolChoice("get_weather"),
    )
    chunks = [c async for c in provider.stream(request)]
    assert not [c.text for c in chunks if c.text]  # the tool plan is not content
    deltas = [d for c in chunks for d in c.tool_calls]
    assert (deltas[0].id, deltas[0].name) == ("get_weather_1", "get_weather")
    assert "".join(d.arguments for d in deltas) == '{"city": "Paris"}'
    assert chunks[-1].finish_reason == "tool_calls"
    sent = fake_api.received[-1].body
    # Cohere has no named choice: the named function alone, required.
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER.description,
                "parameters": dict(WEATHER.parameters),
            },
        }
    ]
    assert sent["tool_choice"] == "REQUIRED"


async def test_history_with_calls_and_results_and_whole_replies_with_calls(
    provider: CohereProvider,  # noqa: F811
    fake_api: FakeAPI,  # noqa: F811
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    fake_api.on(
        "POST",
        "/v2/chat",
        lambda _: JSONResponse(
            {
                "id": "r1",
                "finish_reason": "TOOL_CALL",
                "message": {"role": "assistant", "tool_plan": "Check the time.", "tool_calls": [call]},
            }
        ),
    )
    history = (
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=(ToolCall("w1", "get_weather", '{"city": "Paris"}'),)),
        Message("tool", "21 °C", tool_call_id="w1"),
        Message("user", "And the time?"),
    )
    result = await provider.complete(ChatRequest(model=MODEL, messages=history, tools=(WEATHER, TIME)))
    assert result.tool_calls == (ToolCall("c1", "get_time", "{}"),)
    assert result.finish_reason == "tool_calls"
    sent = fake_api.received[-1].body
    assert sent["messages"][1] == {
        "role": "assistant",
        "tool_calls": [
            {"id": "w1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "w1", "content": "21 °C"}
    assert "tool_choice" not in sent  # auto is Cohere's default
    [info] = [m for m in await provider.list_models() if m.name == MODEL]
    assert "tools" in info.features
