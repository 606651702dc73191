"""Bedrock's text embedding models through InvokeModel: Amazon Titan Text Embeddings and Cohere Embed.

Converse has no embeddings, so each family's own InvokeModel body is written here:

- Titan (`amazon.titan-embed-text-v2:0`, v1): one text per call, `{"inputText", "dimensions", "normalize"}`;
  v2 shortens vectors to 256, 512 or 1024 dimensions, v1 not at all. Tokens: `inputTextTokenCount`.
- Cohere (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`, `cohere.embed-v4:0`): up to 96 texts
  per call, `{"texts", "input_type": "search_document"}`; v4 takes `output_dimension`. Tokens: the
  `X-Amzn-Bedrock-Input-Token-Count` header Bedrock adds to every InvokeModel answer.

These functions block (boto3): the provider runs them on its thread pool.
"""

from __future__ import annotations

import json
from typing import Any

from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.providers.bedrock_models import BedrockModel
from genai_chatbot.models.types import EmbeddingRequest, EmbeddingResult, Usage

TITAN_TEXT = "amazon.titan-embed-text-"
COHERE_EMBED = "cohere.embed-"
_TITAN_V2_DIMENSIONS = (256, 512, 1024)
_COHERE_BATCH = 96
_TOKEN_HEADER = "x-amzn-bedrock-input-token-count"
_CONTEXT_WINDOWS = {TITAN_TEXT: 8_192, COHERE_EMBED: 512}


def embedding_catalog(summaries: list[dict[str, Any]]) -> list[BedrockModel]:
    """The text embedding models among Bedrock's summaries that this module can call, active and on demand."""
    return sorted(
        (
            BedrockModel(
                s["modelId"],
                s["modelId"],
                f"{s.get('providerName', '')} {s.get('modelName', s['modelId'])}".strip(),
                streaming=False,
                embeddings=True,
            )
            for s in summaries
            if "EMBEDDING" in s.get("outputModalities", [])
            and s["modelId"].startswith((TITAN_TEXT, COHERE_EMBED))
            and s.get("modelLifecycle", {}).get("status", "ACTIVE") == "ACTIVE"
            and "ON_DEMAND" in s.get("inferenceTypesSupported", [])
        ),
        key=lambda m: m.name,
    )


def context_window(model_id: str) -> int:
    return next((size for prefix, size in _CONTEXT_WINDOWS.items() if model_id.startswith(prefix)), 512)


def embed(runtime: Any, model: BedrockModel, request: EmbeddingRequest) -> EmbeddingResult:
    """The vectors of `request.inputs` from `model`, called with the bedrock-runtime client `runtime`."""
    if model.base_id.startswith(TITAN_TEXT):
        return _titan(runtime, model, request)
    if model.base_id.startswith(COHERE_EMBED):
        return _cohere(runtime, model, request)
    raise InvalidRequestError(f"Bedrock model {model.name} is no embedding model this server can call.", param="model")


def _invoke(runtime: Any, model_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    response = runtime.invoke_model(
        modelId=model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
    )
    reply: dict[str, Any] = json.loads(response["body"].read())
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(_TOKEN_HEADER, "")
    return reply, int(header) if str(header).isdigit() else None


def _titan(runtime: Any, model: BedrockModel, request: EmbeddingRequest) -> EmbeddingResult:
    body: dict[str, Any] = {}
    if request.dimensions is not None:
        if "v1" in model.base_id or request.dimensions not in _TITAN_V2_DIMENSIONS:
            raise InvalidRequestError(
                f"{model.name} takes dimensions {', '.join(map(str, _TITAN_V2_DIMENSIONS))} (Titan v2 only); "
                f"{request.dimensions} cannot be served. Leave dimensions out, or pick one of those.",
                param="dimensions",
            )
        body = {"dimensions": request.dimensions, "normalize": True}
    vectors, tokens = [], 0
    for text in request.inputs:
        reply, counted = _invoke(runtime, model.name, {"inputText": text, **body})
        vectors.append(tuple(float(x) for x in reply["embedding"]))
        tokens += int(reply.get("inputTextTokenCount") or counted or 0)
    return EmbeddingResult(tuple(vectors), Usage(tokens, 0))


def _cohere(runtime: Any, model: BedrockModel, request: EmbeddingRequest) -> EmbeddingResult:
    extra: dict[str, Any] = {}
    if request.dimensions is not None:
        if "v4" not in model.base_id:
            raise InvalidRequestError(
                f"{model.name} has fixed-size vectors; only Cohere Embed v4 takes dimensions. Leave dimensions out.",
                param="dimensions",
            )
        extra = {"output_dimension": request.dimensions, "embedding_types": ["float"]}
    vectors: list[tuple[float, ...]] = []
    tokens = 0
    for start in range(0, len(request.inputs), _COHERE_BATCH):
        texts = list(request.inputs[start : start + _COHERE_BATCH])
        body = {"texts": texts, "input_type": "search_document", "truncate": "END", **extra}
        reply, counted = _invoke(runtime, model.name, body)
        found = reply["embeddings"]
        if isinstance(found, dict):  # asked with embedding_types: {"float": [...]}
            found = found["float"]
        vectors.extend(tuple(float(x) for x in vector) for vector in found)
        tokens += counted or 0
    return EmbeddingResult(tuple(vectors), Usage(tokens, 0))
