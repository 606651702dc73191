"""Structured output on Bedrock (`response_format` as a forced tool), through boto3's real code paths against
the local AWS wire server's Converse stream, and through `/v1` with the openai SDK and LangChain."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from pydantic import BaseModel

from aws_wire import AwsWire, Json, Stream, event, model_availability, wire_fixture  # noqa: F401  (`wire`)
from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.providers.bedrock import BedrockProvider
from genai_chatbot.models.types import ChatRequest, Message, NamedToolChoice, ResponseFormat, ToolSpec
from test_bedrock import HAIKU, PROFILES, REGION, SUMMARIES, TITAN, bedrock  # noqa: F401  (the `bedrock` fixture)
from test_bedrock_tools import WEATHER, tool_use_events

LLAMA = "meta.llama3-1-70b-instruct-v1:0"


class City(BaseModel):
    """A city and the country it is in."""

    city: str
    country: str


CITY_SCHEMA = ResponseFormat("json_schema", City.model_json_schema(), name="City", strict=True)


def answer_events(name: str = "City", preamble: str | None = None) -> list[bytes]:
    """A ConverseStream answer that calls the tool `name` with a city in three argument pieces."""
    said = [event("contentBlockDelta", {"delta": {"text": preamble}, "contentBlockIndex": 0})] if preamble else []
    pieces = ['{"city": ', '"Paris", "country"', ': "France"}']
    start = {"start": {"toolUse": {"toolUseId": "tooluse_a", "name": name}}, "contentBlockIndex": 1}
    return [
        event("messageStart", {"role": "assistant"}),
        *said,
        event("contentBlockStart", start),
        *(event("contentBlockDelta", {"delta": {"toolUse": {"input": p}}, "contentBlockIndex": 1}) for p in pieces),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "tool_use"}),
        event("metadata", {"usage": {"inputTokens": 40, "outputTokens": 9, "totalTokens": 49}, "metrics": {}}),
    ]  # fmt: skip


def ask(model: str = HAIKU, **fields: object) -> ChatRequest:
    fields.setdefault("response_format", CITY_SCHEMA)
    return ChatRequest(model, (Message("user", "The capital of France?"),), **fields)  # type: ignore[arg-type]


def sent_config(wire: AwsWire) -> dict[str, object]:
    config: dict[str, object] = wire.requests_to("converse-stream")[-1].json()["toolConfig"]
    return config


async def test_json_schema_is_a_forced_tool_whose_input_comes_back_as_streamed_content(
    bedrock: BedrockProvider,  # noqa: F811
    wire: AwsWire,
) -> None:
    wire.route("POST", r"/model/.+/converse-stream", Stream(answer_events(preamble="Sure, here it is.")))
    chunks = [chunk async for chunk in bedrock.stream(ask())]
    assert [c.text for c in chunks if c.text] == ['{"city": ', '"Paris", "country"', ': "France"}']
    assert not any(c.tool_calls for c in chunks)
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None
    [tool] = sent_config(wire)["tools"]  # type: ignore[misc]
    assert tool["toolSpec"]["name"] == "City"
    assert tool["toolSpec"]["inputSchema"] == {"json": City.model_json_schema()}
    assert sent_config(wire)["toolChoice"] == {"tool": {"name": "City"}}


async def test_json_object_is_a_forced_tool_taking_any_object(bedrock: BedrockProvider, wire: AwsWire) -> None:  # noqa: F811
    wire.route("POST", r"/model/.+/converse-stream", Stream(answer_events("json_response")))
    result = await bedrock.complete(ask(response_format=ResponseFormat("json_object")))
    assert json.loads(result.text) == {"city": "Paris", "country": "France"}
    assert (result.finish_reason, result.tool_calls) == ("stop", ())
    [tool] = sent_config(wire)["tools"]  # type: ignore[misc]
    assert tool["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}
    assert sent_config(wire)["toolChoice"] == {"tool": {"name": "json_response"}}


async def test_with_the_clients_tools_the_model_must_call_one_and_a_client_call_stays_a_tool_call(
    bedrock: BedrockProvider,  # noqa: F811
    wire: AwsWire,
) -> None:
    wire.route("POST", r"/model/.+/converse-stream", Stream(tool_use_events()))
    called = await bedrock.complete(ask(tools=(WEATHER,)))
    assert [t["toolSpec"]["name"] for t in sent_config(wire)["tools"]] == ["get_weather", "City"]  # type: ignore[attr-defined]
    assert sent_config(wire)["toolChoice"] == {"any": {}}
    assert called.finish_reason == "tool_calls"
    assert [(c.id, c.name) for c in called.tool_calls] == [("tooluse_1", "get_weather")]

    wire.route("POST", r"/model/.+/converse-stream", Stream(answer_events()))
    answered = await bedrock.complete(ask(tools=(WEATHER,)))
    assert (answered.finish_reason, answered.tool_calls) == ("stop", ())
    assert City.model_validate_json(answered.text) == City(city="Paris", country="France")


async def test_a_turn_that_must_call_a_client_tool_is_not_offered_the_schema_and_none_offers_only_it(
    bedrock: BedrockProvider,  # noqa: F811
    wire: AwsWire,
) -> None:
    wire.route("POST", r"/model/.+/converse-stream", Stream(tool_use_events()))
    await bedrock.complete(ask(tools=(WEATHER,), tool_choice=NamedToolChoice("get_weather")))
    assert sent_config(wire)["toolChoice"] == {"tool": {"name": "get_weather"}}
    assert [t["toolSpec"]["name"] for t in sent_config(wire)["tools"]] == ["get_weather"]  # type: ignore[attr-defined]
    wire.route("POST", r"/model/.+/converse-stream", Stream(answer_events()))
    await bedrock.complete(ask(tools=(WEATHER,), tool_choice="none"))
    assert [t["toolSpec"]["name"] for t in sent_config(wire)["tools"]] == ["City"]  # type: ignore[attr-defined]


async def test_a_client_tool_named_like_the_schema_is_a_400_naming_the_clash(bedrock: BedrockProvider) -> None:  # noqa: F811
    clash = ToolSpec("City", "Look a city up.", {"type": "object"})
    with pytest.raises(InvalidRequestError, match="'City' has the name of the response_format schema"):
        await bedrock.complete(ask(tools=(clash,)))


async def test_a_model_that_cannot_be_forced_is_asked_and_its_text_answer_is_passed_on(
    bedrock: BedrockProvider,  # noqa: F811
    wire: AwsWire,
) -> None:
    from aws_wire import converse_events

    wire.route("POST", r"/model/.+/converse-stream", Stream(converse_events('{"city": "Paris", "country": "France"}')))
    result = await bedrock.complete(ask(LLAMA))
    assert "toolChoice" not in sent_config(wire)
    assert json.loads(result.text) == {"city": "Paris", "country": "France"}
    assert result.finish_reason == "stop"


# Through /v1 -----------------------------------------------------------------------------------------


@pytest.fixture
def gateway(settings: Settings, wire: AwsWire) -> Iterator[str]:
    wire.route("GET", "/foundation-models", Json({"modelSummaries": SUMMARIES}))
    wire.route("GET", "/inference-profiles", Json({"inferenceProfileSummaries": PROFILES}))
    wire.route("GET", "/foundation-model-availability/.+", model_availability)
    wire.route("POST", r"/model/.+/converse-stream", Stream(answer_events()))
    service = make_service(settings, BedrockProvider(Settings(bedrock_region=REGION, request_timeout_seconds=20)))
    with LiveServer(create_app(settings, service=service, close_service=True)) as live:
        yield f"{live.url}/v1"


def test_the_openai_sdk_parses_and_streams_the_answer_as_content(gateway: str) -> None:
    with openai.OpenAI(base_url=gateway, api_key="unused", max_retries=0) as client:
        parsed = client.chat.completions.parse(
            model=f"bedrock/{HAIKU}",
            messages=[{"role": "user", "content": "The capital of France?"}],
            response_format=City,
        )
        with client.chat.completions.stream(
            model=f"bedrock/{HAIKU}",
            messages=[{"role": "user", "content": "The capital of France?"}],
            response_format=City,
        ) as stream:
            deltas = [e.delta for e in stream if e.type == "content.delta" and e.delta]
            streamed = stream.get_final_completion()
    assert parsed.choices[0].message.parsed == City(city="Paris", country="France")
    assert parsed.choices[0].finish_reason == "stop" and not parsed.choices[0].message.tool_calls
    assert deltas == ['{"city": ', '"Paris", "country"', ': "France"}']
    assert streamed.choices[0].message.parsed == City(city="Paris", country="France")


def test_langchain_with_structured_output_json_schema_gets_the_object(gateway: str, wire: AwsWire) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(base_url=gateway, api_key="unused", model=f"bedrock/{HAIKU}", max_retries=0)  # type: ignore[arg-type]
    answer = model.with_structured_output(City, method="json_schema").invoke("The capital of France?")
    assert answer == City(city="Paris", country="France")
    assert sent_config(wire)["toolChoice"] == {"tool": {"name": "City"}}


def test_a_bedrock_model_without_tools_refuses_response_format_naming_it_and_the_model(gateway: str) -> None:
    body = {
        "model": f"bedrock/{TITAN}",
        "messages": [{"role": "user", "content": "Hi"}],
        "response_format": {"type": "json_object"},
    }
    reply = httpx.post(f"{gateway}/chat/completions", json=body, timeout=30)
    assert reply.status_code == 400
    message = reply.json()["error"]["message"]
    assert "response_format 'json_object'" in message and f"bedrock/{TITAN}" in message
