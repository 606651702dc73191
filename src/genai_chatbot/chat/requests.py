"""What a caller asks of the chat service: the caller, the sampling options, the prepared request, and
which answer a retry may generate again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from genai_chatbot.auth.principal import Principal
from genai_chatbot.chat.errors import MessageNotFoundError, TurnInProgressError
from genai_chatbot.chat.records import RETRYABLE, StoredMessage
from genai_chatbot.governance.gate import Surface
from genai_chatbot.models.errors import InvalidRequestError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.types import ChatRequest, Message, ModelInfo, ResponseFormat


def caller_of(who: Principal | str) -> Principal:
    """`who` as a principal: a bare user id (scripts, tests) is a user of no group."""
    return who if isinstance(who, Principal) else Principal(who, "user")


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

    def request(
        self, info: ModelInfo, messages: tuple[Message, ...], system: str | None, max_tokens: int
    ) -> ChatRequest:
        """The request to `info` with these options, and the model's own sampling for every option left unset."""
        defaults = info.defaults
        return ChatRequest(
            model=info.name,
            messages=messages,
            system=system,
            temperature=defaults.temperature if self.temperature is None else self.temperature,
            top_p=defaults.top_p if self.top_p is None else self.top_p,
            max_tokens=max_tokens,
            stop=self.stop,
            seed=self.seed,
            top_k=defaults.top_k,
            repeat_penalty=defaults.repeat_penalty,
            response_format=self.response_format,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            logit_bias=self.logit_bias,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs,
            user=self.user,
            extra=self.extra,
        )


#: No option set: the model's defaults for everything.
DEFAULT_OPTIONS = GenerationOptions()


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
    options: GenerationOptions = DEFAULT_OPTIONS


def retried_index(history: Sequence[StoredMessage], session_id: str, message_id: str) -> int:
    """Where in `history` the answer `message_id` is, when it may be retried; else why not.

    Only the session's last answer, when it failed, was cancelled or interrupted, may be generated again:
    no later turn was then generated from a history that would no longer exist.
    """
    index = next((i for i, m in enumerate(history) if m.id == message_id and m.role == "assistant"), None)
    if index is None:
        raise MessageNotFoundError(session_id, message_id)
    retried = history[index]
    if retried.status == "streaming":
        raise TurnInProgressError(session_id)
    if retried.status not in RETRYABLE:
        raise InvalidRequestError(
            f"Answer {message_id!r} is {retried.status}; only a failed, cancelled or interrupted answer "
            "can be retried.",
            param="message_id",
        )
    if index != len(history) - 1 or index == 0 or history[index - 1].role != "user":
        raise InvalidRequestError(
            f"Answer {message_id!r} is not the session's last answer; only that one can be retried, "
            "since later turns were generated after it. Send a new message instead.",
            param="message_id",
        )
    return index
