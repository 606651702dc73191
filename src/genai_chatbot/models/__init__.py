"""The model interface: one async contract over every provider."""

from genai_chatbot.models.errors import (
    InvalidRequestError,
    ModelError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.registry import ModelRegistry, build_registry
from genai_chatbot.models.types import ChatChunk, ChatRequest, ChatResult, Message, ModelInfo, Usage

__all__ = [
    "ChatChunk",
    "ChatRequest",
    "ChatResult",
    "InvalidRequestError",
    "Message",
    "ModelError",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelRegistry",
    "Provider",
    "ProviderError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "Usage",
    "build_registry",
]
