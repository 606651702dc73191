"""The one point where governance meets the chat service: admit a request, then record how it ended.

Every surface — the page's session API, the terminal and the OpenAI-compatible API — reaches models
through `ChatService`, and the service asks its `Governor` twice per turn or request: `admit` before
anything is generated or stored (which may refuse it), and `Admission.finish` once when it has ended,
whatever way it ended. Model lists pass through `visible_models`. `OPEN_GOVERNOR` allows everything and
records nothing: the behaviour without governance settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from genai_chatbot.auth.principal import Principal
from genai_chatbot.models.types import ModelInfo

#: Which surface a turn or request came from: the page (session API), the terminal, or `/v1`.
Surface = Literal["page", "terminal", "v1"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one turn or request ended, reported once to `Admission.finish`.

    `model_id` is the model that answered (a fallback's, when one was used); token counts are `None`
    when neither the provider nor a tokenizer reported them.
    """

    model_id: str
    status: str  # "complete", "failed", "cancelled" or "interrupted"
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_seconds: float
    first_token_seconds: float | None = None
    #: Why it failed, when it did: the model error's `error_type` ("rate_limited", "provider_unavailable",
    #: "provider_error", ...); `None` for every other status.
    error_type: str | None = None


class Admission(Protocol):
    """A turn or request the governor let start; `finish` records how it ended (called exactly once)."""

    async def finish(self, outcome: Outcome) -> None: ...


class Governor(Protocol):
    """Model access, budgets and rate limits before a turn; usage and cost after it."""

    async def visible_models(self, caller: Principal, models: list[ModelInfo]) -> list[ModelInfo]:
        """The models of `models` the caller may use, in the same order."""
        ...

    async def admit(self, caller: Principal, model: ModelInfo, surface: Surface, max_tokens: int) -> Admission:
        """Let the turn start, or raise why not (model not allowed, budget exceeded, rate limited)."""
        ...


class _NothingToRecord:
    async def finish(self, outcome: Outcome) -> None:
        return None


#: The admission of a part that records nothing (the open governor, model access): the service leaves a
#: turn unobserved when every part admitted it with this, so no wrapper costs its stream anything.
NOTHING_TO_RECORD: Admission = _NothingToRecord()


class OpenGovernor:
    """Allows every model to everyone, without limits, and records nothing."""

    _admission = NOTHING_TO_RECORD

    async def visible_models(self, caller: Principal, models: list[ModelInfo]) -> list[ModelInfo]:
        return models

    async def admit(self, caller: Principal, model: ModelInfo, surface: Surface, max_tokens: int) -> Admission:
        return self._admission


OPEN_GOVERNOR: Governor = OpenGovernor()


def governor_waits(governor: Governor, user_id: str) -> bool:
    """Whether admitting the user's next request may wait on a store (budgets, rate limits): a governor, or
    one of its parts, whose `waits_for(user_id)` says so. Model access and metrics decide in memory."""
    parts = getattr(governor, "parts", (governor,))
    return any(part.waits_for(user_id) for part in parts if hasattr(part, "waits_for"))
