"""Amazon Bedrock through boto3's real code paths, against the local AWS wire server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aws_wire import (  # noqa: F401  (wire_fixture provides the `wire` fixture)
    AwsWire,
    Error,
    Json,
    Stream,
    assume_role_reply,
    converse_events,
    endless,
    event,
    exception,
    foundation_models,
    model_availability,
    wire_fixture,
)
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import InvalidRequestError, ProviderUnavailableError, RateLimitedError
from genai_chatbot.models.providers.bedrock import BedrockProvider
from genai_chatbot.models.registry import build_registry
from genai_chatbot.models.types import ChatChunk, ChatRequest, Message

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET_4 = "anthropic.claude-sonnet-4-20250514-v1:0"
SONNET_4_PROFILE = f"us.{SONNET_4}"
TITAN = "amazon.titan-text-express-v1"
JURASSIC = "ai21.j2-mid-v1"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
REGION = "us-east-1"


def summary(model_id: str, *, types: tuple[str, ...] = ("ON_DEMAND",), outputs: tuple[str, ...] = ("TEXT",),
            status: str = "ACTIVE", streaming: bool = True) -> dict[str, object]:  # fmt: skip
    provider, _, name = model_id.partition(".")
    return {
        "modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{model_id}",
        "modelId": model_id,
        "modelName": name,
        "providerName": provider.capitalize(),
        "inputModalities": ["TEXT"],
        "outputModalities": list(outputs),
        "responseStreamingSupported": streaming,
        "customizationsSupported": [],
        "inferenceTypesSupported": list(types),
        "modelLifecycle": {"status": status},
    }


SUMMARIES = [
    summary(HAIKU),
    summary(SONNET_4, types=("INFERENCE_PROFILE",)),
    summary(TITAN),
    summary(JURASSIC, streaming=False),
    summary(TITAN_EMBED, outputs=("EMBEDDING",)),
    summary("anthropic.claude-v2:1", status="LEGACY"),
    summary(f"{HAIKU}:48k", types=("PROVISIONED",)),
]
PROFILES = [
    {
        "inferenceProfileName": "US Anthropic Claude Sonnet 4",
        "inferenceProfileId": SONNET_4_PROFILE,
        "inferenceProfileArn": f"arn:aws:bedrock:{REGION}:123456789012:inference-profile/{SONNET_4_PROFILE}",
        "models": [
            {"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{SONNET_4}"}
            for region in ("us-east-1", "us-east-2", "us-west-2")
        ],
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    }
]


@pytest.fixture
async def bedrock(wire: AwsWire) -> AsyncIterator[BedrockProvider]:
    wire.route("GET", "/foundation-models", foundation_models(SUMMARIES))
    wire.route("GET", "/inference-profiles", Json({"inferenceProfileSummaries": PROFILES}))
    wire.route("GET", "/foundation-model-availability/.+", model_availability)
    provider = BedrockProvider(Settings(bedrock_region=REGION, request_timeout_seconds=20))
    yield provider
    await provider.aclose()


def ask(model: str, **params: object) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=(Message("user", "Say hello."),),
        system="You are terse.",
        **params,  # type: ignore[arg-type]
    )


async def collect(provider: BedrockProvider, request: ChatRequest) -> list[ChatChunk]:
    return [chunk async for chunk in provider.stream(request)]


async def test_streams_text_then_finish_reason_and_usage_from_metadata(bedrock: BedrockProvider, wire: AwsWire) -> None:
    wire.route("POST", r"/model/.+/converse-stream", Stream(converse_events("Hel", "lo!", stop_reason="max_tokens")))
    chunks = await collect(bedrock, ask(HAIKU, temperature=0.2, top_p=0.9, max_tokens=50, stop=("END",)))
    assert [c.text for c in chunks[:-1]] == ["Hel", "lo!"]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 7)
    [sent] = wire.requests_to("converse-stream")
    assert sent.path == f"/model/{HAIKU}/converse-stream"
    body = sent.json()
    assert body["system"] == [{"text": "You are terse."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "Say hello."}]}]
    assert body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}


async def test_throttling_mid_stream_is_rate_limited_after_partial_text(
    bedrock: BedrockProvider, wire: AwsWire
) -> None:
    frames = [*converse_events("Partial ", "text")[:3], exception("throttlingException", "Too many tokens, slow down")]
    wire.route("POST", r"/model/.+/converse-stream", Stream(frames))
    received: list[str] = []

    async def read() -> None:
        async for chunk in bedrock.stream(ask(HAIKU)):
            received.append(chunk.text)

    with pytest.raises(RateLimitedError, match="Too many tokens") as caught:
        await read()
    assert received == ["Partial ", "text"]
    assert "AKIAWIRETEST" not in caught.value.message and "wire-test-secret" not in caught.value.message


async def test_access_denied_when_listing_shows_bedrock_unavailable_with_access_hint(wire: AwsWire) -> None:
    wire.route("GET", "/foundation-models", Error("AccessDeniedException", "not authorized", 403))
    provider = BedrockProvider(Settings(bedrock_region="eu-central-1"))
    try:
        [placeholder] = await provider.list_models()
    finally:
        await provider.aclose()
    assert not placeholder.available
    assert placeholder.unavailable_reason is not None
    assert "request model access in the Bedrock console for region eu-central-1" in placeholder.unavailable_reason
    assert "several minutes" in placeholder.unavailable_reason


async def test_access_denied_when_invoking_marks_the_model_unavailable_with_access_hint(
    bedrock: BedrockProvider,
    wire: AwsWire,
) -> None:
    wire.route(
        "POST", r"/model/.+/converse-stream", Error("AccessDeniedException", "You don't have access to the model", 403)
    )
    with pytest.raises(ProviderUnavailableError, match="request model access in the Bedrock console for region"):
        await collect(bedrock, ask(HAIKU))
    for _ in range(2):  # stays unavailable, without asking Bedrock again, until the next refresh
        haiku = next(m for m in await bedrock.list_models() if m.name == HAIKU)
        assert not haiku.available
        assert haiku.unavailable_reason is not None and "several minutes to appear" in haiku.unavailable_reason
    assert len(wire.requests_to("converse-stream")) == 1
    await bedrock.refresh()
    assert next(m for m in await bedrock.list_models() if m.name == HAIKU).available


async def test_model_list_keeps_active_text_models_and_offers_profile_only_models_by_profile(
    bedrock: BedrockProvider,
    wire: AwsWire,
) -> None:
    models = {m.name: m for m in await bedrock.list_models() if "embeddings" not in m.features}
    assert sorted(models) == sorted([HAIKU, SONNET_4_PROFILE, TITAN, JURASSIC])
    assert models[SONNET_4_PROFILE].display_name == "US Anthropic Claude Sonnet 4"
    assert models[SONNET_4_PROFILE].id == f"bedrock/{SONNET_4_PROFILE}"
    assert models[HAIKU].context_window == 200_000
    assert not models[JURASSIC].streaming
    await bedrock.list_models()
    listings = wire.requests_to("^/foundation-models$")
    assert len(listings) == 2, "the list is cached"
    assert [listing.query["byOutputModality"] for listing in listings] == [["TEXT"], ["EMBEDDING"]]
    assert wire.requests_to("^/inference-profiles$")[0].query["type"] == ["SYSTEM_DEFINED"]
    await bedrock.refresh()
    await bedrock.list_models()
    assert len(wire.requests_to("^/foundation-models$")) == 4, "refresh() forgets the list"


async def test_titan_gets_the_system_prompt_folded_into_the_first_user_turn(
    bedrock: BedrockProvider,
    wire: AwsWire,
) -> None:
    wire.route("POST", r"/model/.+/converse-stream", Stream(converse_events("Hi")))
    await collect(bedrock, ask(TITAN))
    body = wire.requests_to("converse-stream")[0].json()
    assert "system" not in body
    assert body["messages"][0]["content"][0]["text"] == "You are terse.\n\nSay hello."


async def test_claude_4_sends_only_temperature_when_temperature_and_top_p_are_set(
    bedrock: BedrockProvider,
    wire: AwsWire,
) -> None:
    wire.route("POST", r"/model/.+/converse-stream", Stream(converse_events("Hi")))
    await collect(bedrock, ask(SONNET_4_PROFILE, temperature=0.5, top_p=0.9))
    await collect(bedrock, ask(SONNET_4_PROFILE, top_p=0.9))
    first, second = (r.json() for r in wire.requests_to("converse-stream"))
    assert wire.requests_to("converse-stream")[0].path == f"/model/{SONNET_4_PROFILE}/converse-stream"
    assert first["inferenceConfig"] == {"temperature": 0.5}
    assert second["inferenceConfig"] == {"topP": 0.9}


async def test_model_without_streaming_is_served_by_converse_as_one_chunk(
    bedrock: BedrockProvider,
    wire: AwsWire,
) -> None:
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello there."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 9, "outputTokens": 3, "totalTokens": 12},
        "metrics": {"latencyMs": 3},
    }
    wire.route("POST", r"/model/.+/converse", Json(answer))
    chunks = await collect(bedrock, ask(JURASSIC))
    assert [c.text for c in chunks] == ["Hello there.", ""]
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert [r.path for r in wire.requests if "/model/" in r.path] == [f"/model/{JURASSIC}/converse"]


async def test_consumer_closing_the_stream_early_stops_reading(bedrock: BedrockProvider, wire: AwsWire) -> None:
    def delta(i: int) -> bytes:
        return event("contentBlockDelta", {"delta": {"text": f"word{i} "}, "contentBlockIndex": 0})

    frames = endless([event("messageStart", {"role": "assistant"})], delta)
    wire.route("POST", r"/model/.+/converse-stream", Stream(frames))
    stream = bedrock.stream(ask(HAIKU))
    received = [await anext(stream) for _ in range(2)]
    await stream.aclose()  # type: ignore[attr-defined]
    assert [c.text for c in received] == ["word0 ", "word1 "]
    assert await asyncio.to_thread(wire.hung_up.wait, 20), "the connection was not closed"
    assert wire.frames_sent < 100_000


async def test_validation_exception_is_an_invalid_request(bedrock: BedrockProvider, wire: AwsWire) -> None:
    wire.route("POST", r"/model/.+/converse-stream", Error("ValidationException", "maxTokens exceeds 4096", 400))
    with pytest.raises(InvalidRequestError, match="maxTokens exceeds 4096"):
        await collect(bedrock, ask(HAIKU, max_tokens=100_000))


async def test_role_is_assumed_once_and_its_credentials_sign_bedrock_calls(wire: AwsWire) -> None:
    role = "arn:aws:iam::123456789012:role/chatbot"
    wire.route("POST", "/", assume_role_reply("ASIAASSUMEDWIRE"))
    wire.route("GET", "/foundation-models", foundation_models(SUMMARIES))
    wire.route("GET", "/inference-profiles", Json({"inferenceProfileSummaries": PROFILES}))
    wire.route("POST", r"/model/.+/converse-stream", Stream(converse_events("Hi")))
    provider = BedrockProvider(Settings(bedrock_region=REGION, bedrock_role_arn=role))
    try:
        await provider.list_models()
        await collect(provider, ask(HAIKU))
    finally:
        await provider.aclose()
    [assume] = [r for r in wire.requests if r.path == "/"]
    assert f"RoleArn={role.replace(':', '%3A').replace('/', '%2F')}" in assume.body.decode()
    for signed in [*wire.requests_to("^/foundation-models$"), *wire.requests_to("converse-stream")]:
        assert "Credential=ASIAASSUMEDWIRE/" in signed.headers["authorization"]
        assert signed.headers["x-amz-security-token"] == "wire-token"


def test_registry_offers_bedrock_only_when_a_region_is_set() -> None:
    assert "bedrock" not in build_registry(Settings(local={"enabled": False})).providers
    registry = build_registry(Settings(local={"enabled": False}, bedrock_region=REGION))  # type: ignore[arg-type]
    assert isinstance(registry.providers["bedrock"], BedrockProvider)
