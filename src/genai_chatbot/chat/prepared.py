"""A chat request as the service resolved it: the caller's options, and the request ready for a provider.

Its own module so that the parts the service delegates to (fallbacks, governance) can name it without
importing the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from genai_chatbot.auth.principal import Principal
from genai_chatbot.governance.gate import Surface
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.types import ChatRequest, ModelInfo, ResponseFormat


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """Sampling parameters a caller may set; `None` means the model's default (`ModelInfo.defaults`)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    #: OpenAI's other fields (the OpenAI-compatible API takes them), as `ChatRequest` has them.
    response_format: ResponseFormat | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Mapping[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    user: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_params(self) -> dict[str, object]:
        """The options that were set, for storing with the answer."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v not in (None, (), {})}


@dataclass(frozen=True, slots=True)
class PreparedChat:
    """A request resolved to its provider, with defaults applied and history trimmed to the window."""

    provider: Provider
    model: ModelInfo
    request: ChatRequest
    #: Who asks, and from where: what the governor admits and records the request under.
    caller: Principal = field(default_factory=lambda: Principal("default", "user"))
    surface: Surface = "v1"
    #: The options as the caller gave them, to prepare the same request for a fallback model.
    options: GenerationOptions = field(default_factory=GenerationOptions)


#: The options of a caller who set none.
NO_OPTIONS = GenerationOptions()
