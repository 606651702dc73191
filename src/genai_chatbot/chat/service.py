"""The chat service: sessions and their stored turns, on the completion service (completions.py).

It knows models only through the completion service (registry, defaults, windowing, governor, fallbacks),
and storage only through `HistoryStore`. A turn is stored when it starts — the user's message and the
answer, status `streaming`, in one transaction that also refuses a second turn of the same session — and
the answer is finalised once when it ends, fails or is cancelled (see `turns.py`). Nothing is written per
streamed chunk.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from genai_chatbot.auth.principal import Principal
from genai_chatbot.chat.completions import CompletionService
from genai_chatbot.chat.errors import SHUTTING_DOWN, MessageNotFoundError, SessionNotFoundError, TurnInProgressError
from genai_chatbot.chat.fallbacks import (
    NO_FALLBACKS,
    FallbackPlan,
    FallbackStream,
)
from genai_chatbot.chat.records import RETRYABLE, Feedback, Rating, Session, StoredMessage, new_id, title_from
from genai_chatbot.chat.requests import DEFAULT_OPTIONS, GenerationOptions, PreparedChat, caller_of, retried_index
from genai_chatbot.chat.store import HistoryStore, TurnStart
from genai_chatbot.chat.turns import Turn, TurnEnded, TurnEvent, TurnStarted
from genai_chatbot.chat.usage import count_usage
from genai_chatbot.config import Settings
from genai_chatbot.governance.build import close_governor
from genai_chatbot.governance.gate import OPEN_GOVERNOR, Governor, Surface
from genai_chatbot.models.errors import InvalidRequestError, ProviderUnavailableError
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.models.types import ChatChunk, Message
from genai_chatbot.stores import open_store

if TYPE_CHECKING:
    from genai_chatbot.governance.metrics import Metrics
    from genai_chatbot.governance.tracing import Tracing

__all__ = [
    "RETRYABLE",
    "ChatService",
    "GenerationOptions",
    "MessageNotFoundError",
    "PreparedChat",
    "SessionNotFoundError",
    "Turn",
    "TurnEnded",
    "TurnEvent",
    "TurnInProgressError",
    "TurnStarted",
    "build_chat_service",
    "caller_of",
]


class ChatService(CompletionService):
    """Everything the surfaces (API, CLI) do with models and sessions goes through here: the completion
    service, plus sessions and their stored turns."""

    def __init__(
        self,
        registry: ModelRegistry,
        store: HistoryStore,
        *,
        default_model: str,
        default_system_prompt: str,
        default_max_tokens: int,
        governor: Governor = OPEN_GOVERNOR,
        fallbacks: FallbackPlan = NO_FALLBACKS,
        tracing: Tracing | None = None,
        drop_unsupported_params: bool = False,
    ) -> None:
        super().__init__(
            registry,
            default_model=default_model,
            default_system_prompt=default_system_prompt,
            default_max_tokens=default_max_tokens,
            governor=governor,
            fallbacks=fallbacks,
            tracing=tracing,
            drop_unsupported_params=drop_unsupported_params,
        )
        self.store = store
        self._turns: set[Turn] = set()

    def stop_turns(self) -> None:
        """The server is stopping: end every turn (stored `cancelled`) and stateless stream in flight, and
        refuse new turns.

        Safe to call from a signal handler: each turn and stream is stopped on its own event loop.
        """
        self.stop_streams()
        for turn in list(self._turns):
            turn.stop()

    # Lifetime -----------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the history store now: an unreachable database, or a schema newer than this code, raises here
        with the fix instead of failing the first request."""
        await open_store(self.store)

    async def aclose(self) -> None:
        """Release what the service holds: the governor's store, the providers' clients and loaded models, the
        history store, and the spans still buffered for export."""
        await close_governor(self.governor)
        await self.registry.aclose()
        await self.store.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)

    # Sessions -------------------------------------------------------------------------------------

    async def create_session(
        self, who: Principal | str, *, model_id: str | None = None, system_prompt: str | None = None, title: str = ""
    ) -> Session:
        """A new, empty session; the model must exist (it may be unavailable for now) and be allowed to `who`."""
        caller = caller_of(who)
        info = await self.allowed_model(caller, model_id)
        session = Session(
            id=new_id(), user_id=caller.user_id, title=title, model_id=info.id, system_prompt=system_prompt
        )
        await self.store.create_session(session)
        return session

    async def get_session(self, user_id: str, session_id: str) -> Session:
        session = await self.store.get_session(user_id, session_id)
        if session is None:
            raise SessionNotFoundError(session_id)
        return session

    async def list_sessions(self, user_id: str, limit: int = 100) -> list[Session]:
        return await self.store.list_sessions(user_id, limit)

    async def session_messages(self, user_id: str, session_id: str) -> tuple[Session, list[StoredMessage]]:
        session = await self.get_session(user_id, session_id)
        return session, await self.store.list_messages(session.id)

    async def update_session(
        self, user_id: str, session_id: str, *, title: str | None = None, system_prompt: str | None = None
    ) -> Session:
        session = await self.get_session(user_id, session_id)
        if title is not None:
            session.title = title
        if system_prompt is not None:
            session.system_prompt = system_prompt or None
        session.updated_at = time.time()
        await self.store.update_session(session)
        return session

    async def delete_session(self, user_id: str, session_id: str) -> None:
        if not await self.store.delete_session(user_id, session_id):
            raise SessionNotFoundError(session_id)

    # Turns ----------------------------------------------------------------------------------------

    async def start_turn(
        self,
        who: Principal | str,
        session_id: str,
        content: str,
        *,
        model_id: str | None = None,
        options: GenerationOptions = DEFAULT_OPTIONS,
        surface: Surface = "page",
    ) -> Turn:
        """Store a new user message with its answer (`streaming`) and return the turn, ready to stream.

        Everything that can be refused raises here, before anything is stored: an unknown session or
        model, a message too long, and `TurnInProgressError` while another turn of the session runs.
        Iterating the result streams the answer and stores it once at its end; `aclose()` before the end
        stores the partial answer as cancelled. `who` is the caller (a bare user id is a user of no group).
        """
        if not content.strip():
            raise InvalidRequestError("content must not be empty.", param="content")
        caller = caller_of(who)
        session, history = await self.session_messages(caller.user_id, session_id)
        past = [Message(m.role, m.content) for m in history if m.status == "complete"]
        prepared = await self.prepare(
            model_id or session.model_id,
            [*past, Message("user", content)],
            system=session.system_prompt,
            options=options,
            caller=caller,
            surface=surface,
        )
        user_message = StoredMessage(id=new_id(), session_id=session.id, role="user", content=content)
        return await self._begin(session, user_message, prepared, options)

    async def retry_turn(
        self,
        who: Principal | str,
        session_id: str,
        message_id: str,
        *,
        model_id: str | None = None,
        options: GenerationOptions = DEFAULT_OPTIONS,
        surface: Surface = "page",
    ) -> Turn:
        """Generate again the session's last answer when it failed, was cancelled or interrupted.

        The new answer is generated from the history before the retried one. When it starts, the retried
        answer is replaced, in one transaction, by the new one (`streaming`, under a new id): the user's
        message is never stored twice, and of concurrent retries of one answer exactly one starts (the
        others get `TurnInProgressError`, or `MessageNotFoundError` once it has been replaced). A retry
        refused before it starts changes nothing. Only the last answer may be retried, so that no later
        turn was generated from a history that no longer exists.
        """
        caller = caller_of(who)
        session, history = await self.session_messages(caller.user_id, session_id)
        index = retried_index(history, session_id, message_id)
        retried = history[index]
        user_message = history[index - 1]
        past = [Message(m.role, m.content) for m in history[:index] if m.status == "complete"]
        prepared = await self.prepare(
            # The model the session asked for, which is the retried answer's unless a fallback gave it.
            model_id or session.model_id,
            past,
            system=session.system_prompt,
            options=options,
            caller=caller,
            surface=surface,
        )
        return await self._begin(session, user_message, prepared, options, replaces=retried.id)

    async def set_feedback(
        self, user_id: str, session_id: str, message_id: str, rating: Rating | None, comment: str | None = None
    ) -> StoredMessage:
        """Record (or with `rating=None` remove) a person's feedback on an answer; returns the answer."""
        session, history = await self.session_messages(user_id, session_id)
        message = next((m for m in history if m.id == message_id and m.role == "assistant"), None)
        if message is None:
            raise MessageNotFoundError(session_id, message_id)
        message.feedback = Feedback(rating, (comment or "").strip() or None) if rating else None
        if not await self.store.set_feedback(session.id, message_id, message.feedback):
            raise MessageNotFoundError(session_id, message_id)
        return message

    async def _begin(
        self,
        session: Session,
        user_message: StoredMessage,
        prepared: PreparedChat,
        options: GenerationOptions,
        replaces: str | None = None,
    ) -> Turn:
        """Store the turn's start in one transaction, or raise why it cannot start (nothing stored)."""
        if self._stopping:
            raise ProviderUnavailableError(SHUTTING_DOWN)
        if not session.title:
            session.title = title_from(user_message.content)
        session.model_id = prepared.model.id
        session.updated_at = time.time()
        answer = StoredMessage(
            id=new_id(),
            session_id=session.id,
            role="assistant",
            content="",
            status="streaming",
            model_id=prepared.model.id,
            params=options.as_params(),
        )
        chunks = await self._admitted_chunks(prepared)  # the governor may refuse it: nothing stored yet
        try:
            outcome = await self.store.begin_turn(session, None if replaces else user_message, answer, replaces)
        except BaseException:
            await _close(chunks)
            raise
        if outcome is not TurnStart.STARTED:
            await _close(chunks)  # reported to the governor as never started (cancelled, nothing used)
        if outcome is TurnStart.BUSY:
            raise TurnInProgressError(session.id)
        if outcome is TurnStart.NO_SESSION:
            raise SessionNotFoundError(session.id)
        if outcome is TurnStart.NO_MESSAGE:
            raise MessageNotFoundError(session.id, replaces or "")
        if outcome is TurnStart.NOT_RETRYABLE:
            raise InvalidRequestError(
                f"Answer {replaces!r} is no longer the session's last failed, cancelled or interrupted answer; "
                "open the session again to see where it is now.",
                param="message_id",
            )
        turn = Turn(
            self.store,
            TurnStarted(user_message, answer.id),
            answer,
            chunks,
            self._turns.discard,
            # The stored answer names the model that gave it: a fallback's, when one answered.
            answered_by=(lambda: chunks.model_id) if isinstance(chunks, FallbackStream) else None,
            count_usage=functools.partial(count_usage, prepared),
        )
        self._turns.add(turn)
        if self._stopping:  # stop_turns() ran while the start was being stored
            turn.stop()
        return turn


async def _close(chunks: AsyncIterator[ChatChunk]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def build_chat_service(
    settings: Settings, governor: Governor | None = None, *, metrics: Metrics | None = None
) -> ChatService:
    """The service for these settings: registry of enabled providers and the history store `database_url` names.

    `governor` replaces the one built from the settings (the terminal acting as a named user asks for
    model access even where the server would not need it); `metrics` are the server's, counted by the governor.
    """
    from genai_chatbot.governance.build import build_governor
    from genai_chatbot.governance.tracing import build_tracing
    from genai_chatbot.models.registry import build_registry
    from genai_chatbot.stores import select_store

    return ChatService(
        build_registry(settings),
        select_store(settings).history_store(),
        default_model=settings.default_model,
        default_system_prompt=settings.default_system_prompt,
        default_max_tokens=settings.default_max_tokens,
        governor=governor or build_governor(settings, metrics),
        fallbacks=FallbackPlan.from_settings(settings.models, settings.retries),
        tracing=build_tracing(settings),
        drop_unsupported_params=settings.drop_unsupported_params,
    )
