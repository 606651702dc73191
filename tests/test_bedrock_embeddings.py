"""Bedrock embeddings (Titan Text Embeddings v2, Cohere Embed) through boto3's InvokeModel, on the AWS wire server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aws_wire import (  # noqa: F401  (wire_fixture provides the `wire` fixture)
    AwsWire,
    Json,
    Request,
    foundation_models,
    model_availability,
    wire_fixture,
)
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.providers.bedrock import BedrockProvider
from genai_chatbot.models.types import EmbeddingRequest
from test_bedrock import HAIKU, REGION, TITAN_EMBED, summary

COHERE = "cohere.embed-english-v3"


@pytest.fixture
async def bedrock(wire: AwsWire) -> AsyncIterator[BedrockProvider]:
    summaries = [summary(HAIKU), summary(TITAN_EMBED, outputs=("EMBEDDING",)), summary(COHERE, outputs=("EMBEDDING",))]
    wire.route("GET", "/foundation-models", foundation_models(summaries))
    wire.route("GET", "/inference-profiles", Json({"inferenceProfileSummaries": []}))
    wire.route("GET", "/foundation-model-availability/.+", model_availability)
    provider = BedrockProvider(Settings(bedrock_region=REGION, request_timeout_seconds=20))
    yield provider
    await provider.aclose()


def titan(request: Request) -> Json:
    text = request.json()["inputText"]
    return Json({"embedding": [float(len(text)), 0.25], "inputTextTokenCount": len(text.split())})


def cohere(request: Request) -> Json:
    texts = request.json()["texts"]
    body = {
        "id": "e",
        "response_type": "embeddings_floats",
        "texts": texts,
        "embeddings": [[float(len(t))] for t in texts],
    }
    return Json(body, headers={"X-Amzn-Bedrock-Input-Token-Count": str(2 * len(texts))})


async def test_embedding_models_are_listed_with_the_feature_and_chat_models_without(bedrock: BedrockProvider) -> None:
    listed = {m.name: m for m in await bedrock.list_models()}
    assert listed[TITAN_EMBED].features == listed[COHERE].features == frozenset({"embeddings"})
    assert "embeddings" not in listed[HAIKU].features
    assert listed[TITAN_EMBED].context_window == 8192


async def test_titan_v2_gets_one_invoke_per_text_with_dimensions_and_counts_its_tokens(
    bedrock: BedrockProvider, wire: AwsWire
) -> None:
    wire.route("POST", f"/model/{TITAN_EMBED}/invoke", titan)
    result = await bedrock.embed(EmbeddingRequest(TITAN_EMBED, ("one two", "three"), dimensions=256))
    assert result.vectors == ((7.0, 0.25), (5.0, 0.25))
    assert result.usage is not None and result.usage.prompt_tokens == 3
    sent = [r.json() for r in wire.requests_to("/invoke$")]
    assert sent == [
        {"inputText": "one two", "dimensions": 256, "normalize": True},
        {"inputText": "three", "dimensions": 256, "normalize": True},
    ]
    with pytest.raises(InvalidRequestError, match="256, 512, 1024"):
        await bedrock.embed(EmbeddingRequest(TITAN_EMBED, ("x",), dimensions=300))


async def test_cohere_embed_gets_the_texts_in_batches_of_96_and_bedrocks_token_count(
    bedrock: BedrockProvider, wire: AwsWire
) -> None:
    wire.route("POST", f"/model/{COHERE}/invoke", cohere)
    texts = tuple("t" * (i % 5 + 1) for i in range(100))
    result = await bedrock.embed(EmbeddingRequest(COHERE, texts))
    assert [v[0] for v in result.vectors] == [float(len(t)) for t in texts]
    assert result.usage is not None and result.usage.prompt_tokens == 200
    batches = [r.json() for r in wire.requests_to("/invoke$")]
    assert [len(b["texts"]) for b in batches] == [96, 4]
    assert batches[0]["input_type"] == "search_document"
    with pytest.raises(InvalidRequestError, match="only Cohere Embed v4"):
        await bedrock.embed(EmbeddingRequest(COHERE, ("x",), dimensions=256))
