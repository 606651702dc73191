"""The chat service: sessions, history, defaults and windowing, over the model interface.

It knows models only through the registry and the `Provider` contract, and storage only through
`HistoryStore`. A turn's messages are written once each: the user's when generation starts, the answer
when it ends, fails or is cancelled. Nothing is written per streamed chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass

import anyio

from genai_chatbot.chat.records import Feedback, MessageStatus, Rating, Session, StoredMessage, new_id, title_from
from genai_chatbot.chat.store import HistoryStore
from genai_chatbot.chat.window import first_kept_index, trim_start_to_user_turn
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import InvalidRequestError, ModelError, ProviderUnavailableError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.models.types import ChatChunk, ChatRequest, Message, ModelInfo, Usage

logger = logging.getLogger(__name__)


class SessionNotFoundError(LookupError):
    """No session with this id belongs to this user (other users' sessions are reported the same way)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id!r} does not exist. List your sessions with GET /api/sessions.")
        self.message = str(self)


class MessageNotFoundError(LookupError):
    """The session has no message with this id (or no answer with it, where an answer is required)."""

    def __init__(self, session_id: str, message_id: str) -> None:
        super().__init__(
            f"Session {session_id!r} has no answer {message_id!r}. GET /api/sessions/{session_id} lists its messages."
        )
        self.message = str(self)


RETRYABLE: tuple[MessageStatus, ...] = ("failed", "cancelled")


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """Sampling parameters a caller may set; `None` means the provider's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def as_params(self) -> dict[str, object]:
        """The options that were set, for storing with the answer."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v not in (None, ())}


@dataclass(frozen=True, slots=True)
class PreparedChat:
    """A request resolved to its provider, with defaults applied and history trimmed to the window."""

    provider: Provider
    model: ModelInfo
    request: ChatRequest


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """The user's message is stored; the answer will be stored under `assistant_message_id`."""

    user_message: StoredMessage
    assistant_message_id: str


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The answer as stored: complete, failed (with `error`) or cancelled."""

    message: StoredMessage


TurnEvent = TurnStarted | ChatChunk | TurnEnded


class ChatService:
    """Everything the surfaces (API, CLI) do with models and sessions goes through here."""

    def __init__(
        self,
        registry: ModelRegistry,
        store: HistoryStore,
        *,
        default_model: str,
        default_system_prompt: str,
        default_max_tokens: int,
    ) -> None:
        self.registry = registry
        self.store = store
        self.default_model = default_model
        self.default_system_prompt = default_system_prompt
        self.default_max_tokens = default_max_tokens

    async def list_models(self) -> list[ModelInfo]:
        return await self.registry.list_models()

    async def prepare(
        self,
        model_id: str | None,
        messages: Sequence[Message],
        *,
        system: str | None = None,
        options: GenerationOptions = GenerationOptions(),
    ) -> PreparedChat:
        """Resolve the model, apply the default system prompt and reply budget, trim the history to fit.

        Raises `ModelError` subclasses for anything that makes the request unservable, before any work.
        """
        if not messages:
            raise InvalidRequestError("messages must contain at least one message.", param="messages")
        provider, info = await self.registry.resolve(model_id or self.default_model)
        if not info.available:
            raise ProviderUnavailableError(f"Model {info.id!r} is unavailable: {info.unavailable_reason}")
        if system is None:
            system = self.default_system_prompt or None
        max_tokens = options.max_tokens or min(self.default_max_tokens, info.context_window // 2)
        if max_tokens >= info.context_window:
            raise InvalidRequestError(
                f"max_tokens {max_tokens} does not fit the context window of {info.id} "
                f"({info.context_window} tokens, prompt included); ask for fewer.",
                param="max_tokens",
            )
        counts = await provider.count_tokens(info.name, system, messages)
        budget = info.context_window - max_tokens - counts[0]
        first = first_kept_index(counts[1:], budget)
        first = trim_start_to_user_turn(first, [m.role for m in messages])
        request = ChatRequest(
            model=info.name,
            messages=tuple(messages[first:]),
            system=system,
            temperature=options.temperature,
            top_p=options.top_p,
            max_tokens=max_tokens,
            stop=options.stop,
            seed=options.seed,
        )
        return PreparedChat(provider=provider, model=info, request=request)

    # Sessions -------------------------------------------------------------------------------------

    async def create_session(
        self, user_id: str, *, model_id: str | None = None, system_prompt: str | None = None, title: str = ""
    ) -> Session:
        """A new, empty session; the model must exist (it may be unavailable for now)."""
        _, info = await self.registry.resolve(model_id or self.default_model)
        session = Session(id=new_id(), user_id=user_id, title=title, model_id=info.id, system_prompt=system_prompt)
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
        user_id: str,
        session_id: str,
        content: str,
        *,
        model_id: str | None = None,
        options: GenerationOptions = GenerationOptions(),
    ) -> AsyncIterator[TurnEvent]:
        """Validate a new user message and return the stream of its turn's events.

        Everything that can be refused (unknown session or model, message too long) raises here, before
        anything is stored. Iterating the result stores the user's message, streams the answer and stores
        it once at its end; closing the iterator early stores the partial answer as cancelled.
        """
        if not content.strip():
            raise InvalidRequestError("content must not be empty.", param="content")
        session, history = await self.session_messages(user_id, session_id)
        past = [Message(m.role, m.content) for m in history if m.status == "complete"]
        prepared = await self.prepare(
            model_id or session.model_id,
            [*past, Message("user", content)],
            system=session.system_prompt,
            options=options,
        )
        user_message = StoredMessage(id=new_id(), session_id=session.id, role="user", content=content)
        return self._run_turn(session, user_message, prepared, options)

    async def retry_turn(
        self,
        user_id: str,
        session_id: str,
        message_id: str,
        *,
        model_id: str | None = None,
        options: GenerationOptions = GenerationOptions(),
    ) -> AsyncIterator[TurnEvent]:
        """Generate again the session's last answer when it failed or was cancelled; same events as a turn.

        The new answer is generated from the history before the retried one, and when it ends (complete,
        failed or cancelled) it replaces the retried answer in the stored history, under a new id: the user's
        message is never stored twice, and a retry that does not start loses nothing. Only the last answer
        may be retried, so that no later turn was generated from a history that no longer exists.
        """
        session, history = await self.session_messages(user_id, session_id)
        index = next((i for i, m in enumerate(history) if m.id == message_id and m.role == "assistant"), None)
        if index is None:
            raise MessageNotFoundError(session_id, message_id)
        retried = history[index]
        if retried.status not in RETRYABLE:
            raise InvalidRequestError(
                f"Answer {message_id!r} is {retried.status}; only a failed or cancelled answer can be retried.",
                param="message_id",
            )
        if index != len(history) - 1 or index == 0 or history[index - 1].role != "user":
            raise InvalidRequestError(
                f"Answer {message_id!r} is not the session's last answer; only that one can be retried, "
                "since later turns were generated after it. Send a new message instead.",
                param="message_id",
            )
        user_message = history[index - 1]
        past = [Message(m.role, m.content) for m in history[:index] if m.status == "complete"]
        prepared = await self.prepare(
            model_id or retried.model_id or session.model_id, past, system=session.system_prompt, options=options
        )
        return self._run_turn(session, user_message, prepared, options, replaces=retried.id)

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

    async def _run_turn(
        self,
        session: Session,
        user_message: StoredMessage,
        prepared: PreparedChat,
        options: GenerationOptions,
        replaces: str | None = None,
    ) -> AsyncIterator[TurnEvent]:
        if not session.title:
            session.title = title_from(user_message.content)
        session.model_id = prepared.model.id
        session.updated_at = time.time()
        await self.store.update_session(session)
        if replaces is None:
            await self.store.add_message(user_message)

        async def store_answer(message: StoredMessage) -> None:
            if replaces is None:
                await self.store.add_message(message)
            else:
                await self.store.replace_message(replaces, message)

        answer_id = new_id()
        yield TurnStarted(user_message, answer_id)

        parts: list[str] = []
        usage: Usage | None = None
        started = time.perf_counter()

        def answer(status: MessageStatus, error: str | None = None) -> StoredMessage:
            return StoredMessage(
                id=answer_id,
                session_id=session.id,
                role="assistant",
                content="".join(parts),
                status=status,
                model_id=prepared.model.id,
                params=options.as_params(),
                error=error,
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage else None,
                latency_ms=round((time.perf_counter() - started) * 1000, 1),
            )

        error: str | None = None
        try:
            async for chunk in prepared.provider.stream(prepared.request):
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.text:
                    parts.append(chunk.text)
                yield chunk
        except ModelError as exc:
            error = exc.message
        except Exception:
            logger.exception("Turn in session %s failed", session.id)
            error = "Internal error while generating the answer; the server log has the details."
        except BaseException:
            # The consumer went away (client disconnected, Stop pressed): keep what was generated.
            with anyio.CancelScope(shield=True):
                await store_answer(answer("cancelled", "Cancelled before the answer was complete."))
            raise
        message = answer("failed" if error else "complete", error)
        await store_answer(message)
        yield TurnEnded(message)


def build_chat_service(settings: Settings) -> ChatService:
    """The service for these settings: registry of enabled providers and the SQLite history store."""
    from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore
    from genai_chatbot.models.registry import build_registry

    return ChatService(
        build_registry(settings),
        SQLiteHistoryStore(settings.database_path),
        default_model=settings.default_model,
        default_system_prompt=settings.default_system_prompt,
        default_max_tokens=settings.default_max_tokens,
    )
