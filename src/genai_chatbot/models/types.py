"""The data that crosses the model interface: what a caller asks for and what comes back.

These are plain dataclasses rather than pydantic models on purpose: a `ChatChunk` is built once per
streamed token, and validation there would cost more than the rest of our streaming path together.
Validation of untrusted input happens once, at the API boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
#: OpenAI's finish reasons, kept as they are (see `providers/_finish.py`), and ours: `cancelled` (the consumer
#: stopped reading) and `error` (the provider reported a failure in the stream).
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "function_call", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text within a message's content parts."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image within a message's content parts, as bytes: the API decodes data URLs (and fetches remote
    URLs where the settings allow) before a provider sees it."""

    media_type: str  # e.g. "image/png"
    data: bytes = field(repr=False)
    detail: str | None = None  # OpenAI's "low" / "high" / "auto", for providers that take it


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call of a tool by the model: `arguments` is the JSON text the model produced, kept as it was."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call, as OpenAI streams them: the first piece of call `index` carries its
    `id` and `name`, later pieces more `arguments` text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation.

    `content` is always the message's text. `parts` is set when the client sent the content as parts
    (an array: text, images), in order, so that OpenAI-protocol upstreams get the array as it was sent.
    An assistant message may carry `tool_calls`; a `tool` message is the result of the call `tool_call_id`.
    """

    role: Role
    content: str
    parts: tuple[ContentPart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: its name, what it does, and its parameters as a JSON schema."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class NamedToolChoice:
    """`tool_choice` naming one function: the model must call it."""

    name: str


#: "auto" (the model decides), "none" (no call), "required" (some call), or one named function.
ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """`response_format`: free text, any JSON object, or JSON following `schema`."""

    type: Literal["text", "json_object", "json_schema"]
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything a provider needs to generate one reply.

    `model` is the provider's own model name (the part after `provider/`); `system` is applied before
    `messages` by the provider in whatever way its API wants. `None` parameters mean "provider default".
    """

    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    #: Sampling knobs the public APIs do not take; they come from the model's `GenerationDefaults`, and
    #: providers whose API has no such parameter ignore them.
    top_k: int | None = None
    repeat_penalty: float | None = None
    #: Tools and structured output (OpenAI's shapes, see above); empty / `None` when the caller sent none.
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    #: The other OpenAI sampling and reporting fields; `None` when the caller did not send them.
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Mapping[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    user: str | None = None
    #: Fields the caller sent that the model interface does not model, forwarded as they are to
    #: OpenAI-compatible upstreams (and refused by other providers unless `drop_unsupported_params`).
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """Embed `inputs` (texts) with an embedding model; `dimensions` shortens the vectors where the model can."""

    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """One vector per input, in the order of the inputs; `usage.prompt_tokens` counts the inputs' tokens."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class GenerationDefaults:
    """The sampling a model uses when a request sets none; `None` leaves a parameter to the provider's API.

    A model's defaults are part of what it is: the same temperature that suits a 70B model makes a 135M one
    answer "12 + 7 = 9". So each provider declares them per model, and the chat service fills every
    parameter a request leaves unset from them. `temperature` 0 is greedy decoding (then `top_p` and
    `top_k` have no effect); `repeat_penalty` (llama.cpp) > 1 discourages repeating recent tokens.
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None
    #: The system prompt of a conversation that has none: a model that answers badly without one (the
    #: embedded 135M model) declares it, on every surface, `/v1` included.
    system_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one reply, as the provider reported or counted them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """A piece of a streamed reply.

    Every chunk but the last carries text; the last carries `finish_reason` and, when known, `usage`.
    """

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    #: OpenAI-format log probabilities of this chunk's tokens (`{"content": [...]}`), when asked for.
    logprobs: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A whole reply, as `Provider.complete` returns it."""

    text: str
    finish_reason: FinishReason
    usage: Usage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: Mapping[str, Any] | None = None
    #: The public id of the model that produced it, when the chat service answered with a fallback model;
    #: providers leave it `None`.
    model_id: str | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the model list shows about one model.

    `id` is the public id `provider/name`. A model that is configured but cannot be used right now (no key,
    access not granted, endpoint down) is listed with `available=False` and a reason a person can act on.
    """

    id: str
    provider: str
    name: str
    display_name: str
    streaming: bool = True
    context_window: int = 4096
    input_modalities: tuple[str, ...] = ("text",)
    #: What the model can do beyond plain chat, by the names `models/features.py` checks requests against:
    #: "tools", "json_object", "json_schema", "logprobs", "penalties", "logit_bias", "seed", "embeddings",
    #: "forced_tools" for a model that calls a tool only when `tool_choice` names one or is "required", and
    #: "extra_fields" (fields the interface does not model, `ChatRequest.extra`, are forwarded as they are).
    features: frozenset[str] = frozenset()
    available: bool = True
    unavailable_reason: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    defaults: GenerationDefaults = GenerationDefaults()


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One line of `genai-chatbot doctor`: a component, how it is, and what to do when it is not fine."""

    component: str
    status: Literal["ok", "warning", "error", "off"]
    detail: str
    fix: str | None = None


def split_model_id(model_id: str) -> tuple[str, str]:
    """Split `provider/name` at its first slash; names may contain slashes themselves."""
    provider, sep, name = model_id.partition("/")
    if not sep or not provider or not name:
        from genai_chatbot.models.errors import InvalidRequestError

        raise InvalidRequestError(
            f"Model id {model_id!r} is not of the form 'provider/model', e.g. 'local/smollm2-135m-instruct'.",
            param="model",
        )
    return provider, name
