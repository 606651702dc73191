"""Request and response bodies of the HTTP API. These models are the API's documentation (see /docs)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genai_chatbot.api.openai_fields import OpenAIFields
from genai_chatbot.api.openai_tools import ToolCallIn, ToolFields
from genai_chatbot.chat.records import Feedback, Rating, Session, StoredMessage
from genai_chatbot.chat.service import GenerationOptions
from genai_chatbot.models.types import ModelInfo


class SamplingFields(BaseModel):
    """The sampling parameters shared by the OpenAI-compatible and the session APIs, with one set of limits."""

    temperature: float | None = Field(default=None, ge=0, le=2, description="0 is greedy; up to 2.")
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Upper bound on the reply's tokens; at most the setting limits.max_tokens_ceiling.",
    )
    stop: str | list[str] | None = Field(default=None, description="Up to 4 sequences that end the reply.")
    seed: int | None = None

    def options(self, max_tokens: int | None = None) -> GenerationOptions:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return GenerationOptions(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=max_tokens or self.max_tokens,
            stop=stop[:4],
            seed=self.seed,
        )


# OpenAI-compatible ------------------------------------------------------------------------------------


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    url: str = Field(
        description="A data URL (data:image/png;base64,...), or an http(s) URL when the setting fetch_image_urls is on."
    )
    detail: Literal["auto", "low", "high"] | None = None


class ImagePartIn(BaseModel):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPartIn = Annotated[TextPart | ImagePartIn, Field(discriminator="type")]


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPartIn] | None = None
    tool_calls: list[ToolCallIn] | None = Field(default=None, description="An assistant's calls of tools.")
    tool_call_id: str | None = Field(default=None, description="A tool message: the id of the call it answers.")

    def text(self) -> str:
        """The message's text: its text parts joined, images left out."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if isinstance(part, TextPart))
        return self.content or ""

    def images(self) -> list[ImagePartIn]:
        return (
            [part for part in self.content if isinstance(part, ImagePartIn)] if isinstance(self.content, list) else []
        )


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(ToolFields, OpenAIFields, SamplingFields):
    """The body of `POST /v1/chat/completions`, as OpenAI defines it; unknown fields are kept, to be
    forwarded to OpenAI-protocol upstreams (other models refuse them, see `models/features.py`)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="A model id from GET /v1/models, e.g. local/smollm2-135m-instruct.")
    messages: list[ChatMessageIn] = Field(min_length=1, description="At most the setting limits.max_messages.")
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice is supported.")


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class EmbeddingRequest(BaseModel):
    """The body of `POST /v1/embeddings`, as OpenAI defines it."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="An embedding model id from GET /v1/models, e.g. openai/text-embedding-3-small.")
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts (token arrays are refused); bounded by the settings "
        "limits.max_embedding_inputs and limits.max_embedding_chars."
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, description="Shorter vectors, where the model can.")
    user: str | None = None


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


# Sessions ----------------------------------------------------------------------------------------------


class GenerationDefaultsOut(BaseModel):
    """The sampling a model uses for each parameter a request leaves unset; null = the provider API's own."""

    temperature: float | None = Field(description="0 is greedy decoding.")
    top_p: float | None
    top_k: int | None
    repeat_penalty: float | None = Field(description="llama.cpp's penalty on repeated tokens; 1 is none.")
    system_prompt: str | None = Field(default=None, description="Used when a conversation has no system prompt.")


class ModelOut(BaseModel):
    """One model as the chat page and `genai-chatbot models` show it."""

    id: str
    provider: str
    display_name: str
    streaming: bool
    context_window: int
    input_modalities: list[str]
    available: bool
    unavailable_reason: str | None
    default: bool = Field(default=False, description="The server's default model, used when none is named.")
    defaults: GenerationDefaultsOut = Field(description="Sampling used when a request sets none.")

    @classmethod
    def of(cls, info: ModelInfo, default_model: str | None = None) -> ModelOut:
        return cls(
            default=info.id == default_model,
            id=info.id,
            provider=info.provider,
            display_name=info.display_name,
            streaming=info.streaming,
            context_window=info.context_window,
            input_modalities=list(info.input_modalities),
            available=info.available,
            unavailable_reason=info.unavailable_reason,
            defaults=GenerationDefaultsOut(**asdict(info.defaults)),
        )


class ModelList(BaseModel):
    """`GET /api/models`: the models, and what keeps others from being listed (an unreadable keys source)."""

    models: list[ModelOut]
    problems: list[str] = Field(
        default_factory=list,
        description="Why models may be missing, with the fix; for non-admins (with auth on) without details.",
    )


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="Model id; the server's default model when absent.")
    system_prompt: str | None = Field(
        default=None, description="Bounded by the setting limits.max_system_prompt_chars."
    )
    title: str = Field(default="", description="Bounded by the setting limits.max_title_chars (default 200).")


class SessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, description="Bounded by the setting limits.max_title_chars.")
    system_prompt: str | None = Field(
        default=None, description="Bounded by the setting limits.max_system_prompt_chars."
    )


class SessionOut(BaseModel):
    id: str
    title: str
    model: str
    system_prompt: str | None
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, session: Session) -> SessionOut:
        return cls(
            id=session.id,
            title=session.title,
            model=session.model_id,
            system_prompt=session.system_prompt,
            created_at=session.created_at,
            updated_at=session.updated_at,
        )


class FeedbackIn(BaseModel):
    """A person's verdict on an answer."""

    model_config = ConfigDict(extra="forbid")

    rating: Rating = Field(description='"up" or "down".')
    comment: str | None = Field(default=None, max_length=2000, description="Optional: what was good or wrong.")


class FeedbackOut(BaseModel):
    rating: Rating
    comment: str | None
    created_at: float

    @classmethod
    def of(cls, feedback: Feedback | None) -> FeedbackOut | None:
        if feedback is None:
            return None
        return cls(rating=feedback.rating, comment=feedback.comment, created_at=feedback.created_at)


class MessageOut(BaseModel):
    id: str
    role: str
    content: str
    status: str
    model: str | None
    params: dict[str, Any]
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None
    created_at: float
    feedback: FeedbackOut | None = None

    @classmethod
    def of(cls, message: StoredMessage) -> MessageOut:
        return cls(
            id=message.id,
            role=message.role,
            content=message.content,
            status=message.status,
            model=message.model_id,
            params=message.params,
            error=message.error,
            prompt_tokens=message.prompt_tokens,
            completion_tokens=message.completion_tokens,
            latency_ms=message.latency_ms,
            created_at=message.created_at,
            feedback=FeedbackOut.of(message.feedback),
        )


class SessionWithMessages(SessionOut):
    messages: list[MessageOut]


class MessageCreate(SamplingFields):
    """A new user message; the answer streams back as server-sent events unless `stream` is false."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, description="Bounded by the setting limits.max_content_chars.")
    model: str | None = Field(default=None, description="Switch the session to this model for this turn on.")
    stream: bool = True


class RetryCreate(SamplingFields):
    """Generate a failed or cancelled answer again; the answer streams back as server-sent events."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="Retry with this model; else the one that failed.")
    stream: bool = True


class TurnOut(BaseModel):
    user_message: MessageOut
    message: MessageOut
