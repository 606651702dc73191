"""Cohere's embedding models through the SDK's v2 `embed`: `cohere/embed-v4.0`, `cohere/embed-english-v3.0`, ...

Texts go 96 to a call (Cohere's limit), as `search_document` inputs; `dimensions` becomes Cohere's
`output_dimension`, which Embed v4 takes (256, 512, 1024 or 1536). Usage is the billed input tokens.
"""

from __future__ import annotations

from typing import Any

from genai_chatbot.models.providers._catalog import CatalogModel
from genai_chatbot.models.types import EmbeddingRequest, EmbeddingResult, Usage

#: Cohere's current embedding models (docs.cohere.com/docs/cohere-embed).
EMBEDDING_MODELS: tuple[CatalogModel, ...] = (
    CatalogModel("embed-v4.0", "Embed v4", 128_000),
    CatalogModel("embed-english-v3.0", "Embed English v3", 512),
    CatalogModel("embed-multilingual-v3.0", "Embed Multilingual v3", 512),
    CatalogModel("embed-english-light-v3.0", "Embed English Light v3", 512),
    CatalogModel("embed-multilingual-light-v3.0", "Embed Multilingual Light v3", 512),
)
_BATCH = 96


async def embed(client: Any, request: EmbeddingRequest) -> EmbeddingResult:
    """The vectors of `request.inputs` from the SDK's async v2 `client`, in the order of the inputs."""
    vectors: list[tuple[float, ...]] = []
    tokens = 0
    options: dict[str, Any] = {} if request.dimensions is None else {"output_dimension": request.dimensions}
    for start in range(0, len(request.inputs), _BATCH):
        response = await client.embed(
            model=request.model,
            texts=list(request.inputs[start : start + _BATCH]),
            input_type="search_document",
            embedding_types=["float"],
            **options,
        )
        vectors.extend(tuple(float(x) for x in vector) for vector in response.embeddings.float_ or ())
        billed = response.meta.billed_units if response.meta is not None else None
        tokens += int(billed.input_tokens or 0) if billed is not None else 0
    return EmbeddingResult(tuple(vectors), Usage(tokens, 0))
