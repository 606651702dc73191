"""What a model takes: images only where `ModelInfo.input_modalities` says so, chat only on chat models.

The chat service checks every request here before any provider is called, so a model that cannot read an
image is refused by name (HTTP 400) instead of receiving the text alone, and an embedding model is never
asked to chat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.features import EMBEDDINGS  # the feature an embedding model lists; it does not chat
from genai_chatbot.models.types import ImagePart, Message, ModelInfo

__all__ = ["EMBEDDINGS", "chat_models", "check_chat_inputs", "check_embeddings", "is_embedding_model"]


def is_embedding_model(info: ModelInfo) -> bool:
    """Whether `info` is an embedding model: served by the embeddings API, never offered for chat."""
    return EMBEDDINGS in info.features


def chat_models(models: Sequence[ModelInfo]) -> list[ModelInfo]:
    """The models of `models` one can chat with, in order: what the page's picker and the terminal offer.

    Embedding models are left out; `GET /v1/models` still lists them, as OpenAI's does.
    """
    return [model for model in models if not is_embedding_model(model)]


def check_chat_inputs(info: ModelInfo, messages: Iterable[Message]) -> None:
    """Refuse a chat with `info` that it cannot take: it embeds only, or it reads no images and some are sent."""
    if is_embedding_model(info):
        raise InvalidRequestError(
            f"Model {info.id} is an embedding model; it does not chat. Send its input to the embeddings API, "
            "or pick a chat model from the model list.",
            param="model",
        )
    if "image" in info.input_modalities:
        return
    if any(isinstance(part, ImagePart) for message in messages for part in message.parts):
        raise InvalidRequestError(
            f"Model {info.id} does not take images (its inputs: {', '.join(info.input_modalities)}); send text "
            "only, or pick a model whose input_modalities include image (the model list shows them).",
            param="messages",
        )


def check_embeddings(info: ModelInfo) -> None:
    """Refuse an embeddings request for a model that does not list the feature `embeddings`."""
    if not is_embedding_model(info):
        raise InvalidRequestError(
            f"Model {info.id} does not do embeddings (feature 'embeddings'); it is a chat model. Pick an "
            "embedding model from the model list (one of the providers' embedding models, or the local "
            "embedding model set with local.embedding_model_path).",
            param="model",
        )
