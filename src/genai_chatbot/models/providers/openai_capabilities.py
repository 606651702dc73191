"""What each model of an OpenAI-protocol provider takes and does: images in content parts, embeddings.

OpenAI's model list says neither, so it is known by family: the vision families read images (their
"-mini" reasoning siblings do not), and each vendor names its embedding models
(`OpenAIVendor.is_embedding_model`). Azure deployments are judged by their model or deployment name;
OpenAI-compatible endpoints say it in their settings.
"""

from __future__ import annotations

from typing import Any

from genai_chatbot.models.features import OPENAI_PROTOCOL
from genai_chatbot.models.inputs import EMBEDDINGS
from genai_chatbot.models.providers._catalog import model_info
from genai_chatbot.models.types import ModelInfo

_IMAGE_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
_TEXT_ONLY = ("o1-mini", "o1-preview", "o3-mini", "gpt-4o-audio", "gpt-4o-realtime", "gpt-4o-search")
EMBEDDING_CONTEXT_WINDOW = 8191


def takes_images(model: str) -> bool:
    """Whether an OpenAI model (or an Azure deployment of one, by its name) reads images."""
    return model.startswith(_IMAGE_PREFIXES) and not model.startswith(_TEXT_ONLY)


def openai_model_info(
    provider: str, model: str, display_name: str | None = None, *, embeddings: bool, images: bool, **fields: Any
) -> ModelInfo:
    """A model of an OpenAI-protocol provider, with what it takes (images) and does (embeddings)."""
    if embeddings:
        fields.setdefault("context_window", EMBEDDING_CONTEXT_WINDOW)
    # A chat model's fields are all forwarded: the upstream answers for what it lacks.
    chat_features = fields.pop("features", OPENAI_PROTOCOL)
    return model_info(
        provider,
        model,
        display_name,
        input_modalities=("text", "image") if images and not embeddings else ("text",),
        features=frozenset({EMBEDDINGS}) if embeddings else chat_features,
        **fields,
    )
