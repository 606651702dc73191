"""Tool use on Bedrock through boto3's real code paths, against the local AWS wire server's Converse stream."""

from __future__ import annotations

import pytest

from aws_wire import AwsWire, Json, Stream, event, model_availability, wire_fixture  # noqa: F401  (`wire`)
from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.providers.bedrock import BedrockProvider
from genai_chatbot.models.tool_calls import check_tool_request
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice, ToolCall, ToolSpec
from test_bedrock import HAIKU, PROFILES, REGION, SUMMARIES, TITAN, bedrock  # noqa: F401  (the `bedrock` fixture)

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city now.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def tool_use_events() -> list[bytes]:
    """A ConverseStream answer that says a sentence, then calls get_weather in two argument pieces."""
    return [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"delta": {"text": "Let me check."}, "contentBlockIndex": 0}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event(
            "contentBlockStart",
            {"start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}, "contentBlockIndex": 1},
        ),
        event("contentBlockDelta", {"delta": {"toolUse": {"input": '{"city":'}}, "contentBlockIndex": 1}),
        event("contentBlockDelta", {"delta": {"toolUse": {"input": ' "Paris"}'}}, "contentBlockIndex": 1}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "tool_use"}),
        event("metadata", {"usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42}, "metrics": {}}),
    ]


async def test_tool_use_round_trip_sends_tool_config_and_results_and_streams_the_call(
    bedrock: BedrockProvider,  # noqa: F811
    wire: AwsWire,
) -> None:
    wire.route("POST", r"/model/.+/converse-stream", Stream(tool_use_events()))
    asked = ChatRequest(
        model=HAIKU,
        messages=(Message("user", "Weather in Paris?"),),
        tools=(WEATHER,),
        tool_choice=NamedToolChoice("get_weather"),
    )
    chunks = [chunk async for chunk in bedrock.stream(asked)]
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0].id == "tooluse_1" and deltas[0].name == "get_weather" and deltas[0].index == 0
    assert all(d.index == 0 and d.id is None for d in deltas[1:])
    assert chunks[-1].finish_reason == "tool_calls"
    result = await bedrock.complete(asked)
    assert result.text == "Let me check."
    assert result.tool_calls == (ToolCall("tooluse_1", "get_weather", '{"city": "Paris"}'),)
    sent = wire.requests_to("converse-stream")[0].json()
    assert sent["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "The weather in a city now.",
                    "inputSchema": {"json": dict(WEATHER.parameters)},
                }
            }
        ],
        "toolChoice": {"tool": {"name": "get_weather"}},
    }

    # The client runs the tool and sends the result back with the history.
    wire.route("POST", r"/model/.+/converse-stream", Stream([*tool_use_events()[:1], *tool_use_events()[7:]]))
    answered = ChatRequest(
        model=HAIKU,
        messages=(
            Message("user", "Weather in Paris?"),
            Message("assistant", "Let me check.", tool_calls=result.tool_calls),
            Message("tool", '{"temp": 21}', tool_call_id="tooluse_1"),
            Message("user", "And in °F?"),
        ),
        tools=(WEATHER,),
        tool_choice="auto",
    )
    [chunk async for chunk in bedrock.stream(answered)]
    sent = wire.requests_to("converse-stream")[-1].json()
    assert sent["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Let me check."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": '{"temp": 21}'}]}},
                {"text": "And in °F?"},
            ],
        },
    ]
    assert sent["toolConfig"]["toolChoice"] == {"auto": {}}


async def test_required_is_any_and_none_sends_no_tools(bedrock: BedrockProvider, wire: AwsWire) -> None:  # noqa: F811
    wire.route("POST", r"/model/.+/converse-stream", Stream(tool_use_events()))
    base = ChatRequest(model=HAIKU, messages=(Message("user", "Hi"),), tools=(WEATHER,))
    for choice in ("required", "none"):
        [c async for c in bedrock.stream(ChatRequest(**{**_fields(base), "tool_choice": choice}))]
    required, none = (r.json() for r in wire.requests_to("converse-stream"))
    assert required["toolConfig"]["toolChoice"] == {"any": {}}
    assert "toolConfig" not in none


async def test_models_say_whether_they_call_tools_and_titan_refuses_them(
    bedrock: BedrockProvider,  # noqa: F811
) -> None:
    models = {m.name: m for m in await bedrock.list_models()}
    assert "tools" in models[HAIKU].features
    assert "tools" not in models[TITAN].features
    request = ChatRequest(model=TITAN, messages=(Message("user", "Hi"),), tools=(WEATHER,))
    with pytest.raises(InvalidRequestError, match=r"bedrock/amazon\.titan-text-express-v1 cannot call tools"):
        check_tool_request(models[TITAN], request)


def _fields(request: ChatRequest) -> dict[str, object]:
    return {name: getattr(request, name) for name in request.__dataclass_fields__}


def test_bedrock_tool_use_streams_through_v1_in_openais_chunk_format(settings: Settings, wire: AwsWire) -> None:
    import openai

    wire.route("GET", "/foundation-models", Json({"modelSummaries": SUMMARIES}))
    wire.route("GET", "/inference-profiles", Json({"inferenceProfileSummaries": PROFILES}))
    wire.route("GET", "/foundation-model-availability/.+", model_availability)
    wire.route("POST", r"/model/.+/converse-stream", Stream(tool_use_events()))
    service = make_service(settings, BedrockProvider(Settings(bedrock_region=REGION, request_timeout_seconds=20)))
    weather = {"type": "function", "function": {"name": WEATHER.name, "parameters": dict(WEATHER.parameters)}}
    with LiveServer(create_app(settings, service=service, close_service=True)) as live:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
        with client.chat.completions.stream(
            model=f"bedrock/{HAIKU}",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[weather],  # type: ignore[list-item]
            tool_choice="required",
        ) as stream:
            final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    [call] = choice.message.tool_calls or []
    assert (call.id, call.function.name, call.function.arguments) == (  # type: ignore[union-attr]
        "tooluse_1",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert wire.requests_to("converse-stream")[0].json()["toolConfig"]["toolChoice"] == {"any": {}}
