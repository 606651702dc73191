"""The chat service: sessions, history, defaults and windowing, over the model interface.

It knows models only through the registry and the `Provider` contract, and storage only through
`HistoryStore`. A turn is stored when it starts — the user's message and the answer, status `streaming`,
in one transaction that also refuses a second turn of the same session — and the answer is finalised once
when it ends, fails or is cancelled (see `turns.py`). Nothing is written per streamed chunk.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from genai_chatbot.auth.principal import Principal
from genai_chatbot.chat.embedding import embed as embed_texts
from genai_chatbot.chat.errors import SHUTTING_DOWN, MessageNotFoundError, SessionNotFoundError, TurnInProgressError
from genai_chatbot.chat.fallbacks import (
    NO_FALLBACKS,
    Attempts,
    FallbackPlan,
    FallbackStream,
    complete_with_fallbacks,
    read_until_text,
    unavailable,
)
from genai_chatbot.chat.governed import governed_complete, governed_stream
from genai_chatbot.chat.records import RETRYABLE, Feedback, Rating, Session, StoredMessage, new_id, title_from
from genai_chatbot.chat.requests import DEFAULT_OPTIONS, GenerationOptions, PreparedChat, caller_of, retried_index
from genai_chatbot.chat.stopping import StoppableStream
from genai_chatbot.chat.store import HistoryStore, TurnStart
from genai_chatbot.chat.turns import Turn, TurnEnded, TurnEvent, TurnStarted
from genai_chatbot.chat.usage import count_usage
from genai_chatbot.chat.window import first_kept_index, trim_start_to_user_turn
from genai_chatbot.config import Settings
from genai_chatbot.governance.build import close_governor
from genai_chatbot.governance.errors import ModelNotAllowedError
from genai_chatbot.governance.gate import OPEN_GOVERNOR, Admission, Governor, Surface
from genai_chatbot.models.errors import InvalidRequestError, ProviderUnavailableError
from genai_chatbot.models.features import check_features
from genai_chatbot.models.inputs import check_chat_inputs
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.models.tool_calls import NO_TOOLS, ToolRequest
from genai_chatbot.models.types import ChatChunk, ChatResult, EmbeddingResult, Message, ModelInfo
from genai_chatbot.secrets import SourceStatus
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

logger = logging.getLogger(__name__)


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
        governor: Governor = OPEN_GOVERNOR,
        fallbacks: FallbackPlan = NO_FALLBACKS,
        tracing: Tracing | None = None,
        drop_unsupported_params: bool = False,
    ) -> None:
        self.registry = registry
        self.store = store
        self.governor = governor
        self.fallbacks = fallbacks
        #: Spans of model calls, when an OTLP endpoint is configured; the owner shuts it down (flushes).
        self.tracing = tracing
        self.default_model = default_model
        self.default_system_prompt = default_system_prompt
        self.default_max_tokens = default_max_tokens
        #: Drop (and log) request fields a model cannot honour instead of refusing the request.
        self.drop_unsupported_params = drop_unsupported_params
        self._turns: set[Turn] = set()
        self._streams: weakref.WeakSet[StoppableStream] = weakref.WeakSet()
        self._stopping = False

    def stop_turns(self) -> None:
        """The server is stopping: end every turn (stored `cancelled`) and stateless stream in flight, and
        refuse new turns.

        Safe to call from a signal handler: each turn and stream is stopped on its own event loop.
        """
        self._stopping = True
        for turn in list(self._turns):
            turn.stop()
        for stream in list(self._streams):
            stream.stop()

    async def stream(self, prepared: PreparedChat) -> StoppableStream:
        """The chunks of a stateless request (the OpenAI-compatible API), ended cleanly if the server stops.

        The governor admits the request first (it may refuse it). The caller iterates the stream and
        closes it (`aclose()`) however the response ends.
        """
        chunks = await self._admitted_chunks(prepared)
        # Wait for the model's first text: an error before it gets its HTTP status (429, 503, 502) instead
        # of an error event after a 200, and with fallbacks the answering model is known before the headers.
        read: list[ChatChunk] = []
        if isinstance(chunks, FallbackStream):
            await chunks.start()
        else:
            read = await read_until_text(chunks)
        model_id = chunks.model_id if isinstance(chunks, FallbackStream) else prepared.model.id
        stream = StoppableStream(chunks, model_id, read)
        self._streams.add(stream)
        if self._stopping:
            stream.stop()
        return stream

    async def complete(self, prepared: PreparedChat) -> ChatResult:
        """The whole reply of a stateless request, once the governor admitted it.

        With fallbacks, its `model_id` names the model that answered.
        """
        fallbacks = self.fallbacks.fallbacks.get(prepared.model.id)
        admission = await self._admit(prepared)
        if fallbacks is not None:
            result = await complete_with_fallbacks(self._attempts(prepared, admission, fallbacks))
        elif admission is None:
            result = await prepared.provider.complete(prepared.request)
        else:
            result = await governed_complete(prepared.provider.complete(prepared.request), admission, prepared.model.id)
        if result.usage is None:
            result = replace(result, usage=await count_usage(prepared, result.text))
        return result

    async def embed(
        self,
        model_id: str,
        inputs: Sequence[str],
        *,
        dimensions: int | None = None,
        user: str | None = None,
        caller: Principal | str = "default",
        surface: Surface = "v1",
    ) -> tuple[ModelInfo, EmbeddingResult]:
        """The vectors of `inputs` from the embedding model `model_id`, admitted by the governor like a chat
        request (see `chat/embedding.py`); and the model."""
        return await embed_texts(
            self.registry,
            self.governor,
            model_id,
            inputs,
            dimensions=dimensions,
            user=user,
            caller=caller_of(caller),
            surface=surface,
        )

    async def _admitted_chunks(self, prepared: PreparedChat) -> AsyncIterator[ChatChunk]:
        """The provider's chunks for `prepared`, once admitted; reported to the governor when they end.

        A model with fallbacks (or retries) gives a `FallbackStream`, which says which model answered.
        """
        fallbacks = self.fallbacks.fallbacks.get(prepared.model.id)
        admission = await self._admit(prepared)
        if fallbacks is not None:
            return FallbackStream(self._attempts(prepared, admission, fallbacks))
        chunks = prepared.provider.stream(prepared.request)
        if admission is None:  # nothing to admit, record or trace: no wrapper on the hot path
            return chunks
        return governed_stream(chunks, admission, prepared.model.id)

    async def _admit(self, prepared: PreparedChat) -> Admission | None:
        """The governor's admission of `prepared`, traced when tracing is on; `None` when nothing is to be
        reported (the open governor, no tracing)."""
        admission = None
        if self.governor is not OPEN_GOVERNOR:
            admission = await self.governor.admit(
                prepared.caller, prepared.model, prepared.surface, prepared.request.max_tokens or 0
            )
        if self.tracing is not None:
            return self.tracing.traced(prepared.model, prepared.request, prepared.surface, admission)
        return admission

    def _attempts(self, prepared: PreparedChat, admission: Admission | None, fallbacks: Sequence[str]) -> Attempts:
        """`prepared`, then its fallbacks, by the retry plan; each fallback prepared and admitted in its turn."""
        prepare = functools.partial(self._prepare_fallback, prepared)
        return Attempts(prepared, admission, fallbacks, self.fallbacks.retries, prepare, self._admit)

    async def _prepare_fallback(self, first: PreparedChat, model_id: str) -> PreparedChat:
        """`first`'s conversation and options prepared for `model_id`: its defaults, trimmed to its window."""
        request = first.request
        return await self.prepare(
            model_id,
            request.messages,
            system=request.system,
            options=first.options,
            caller=first.caller,
            surface=first.surface,
            tools=ToolRequest.of(request),
        )

    # Models and lifetime -------------------------------------------------------------------------

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

    async def read_keys(self) -> None:
        """Read every keys source now (a server does at start: it creates the keys file where people will
        look for it, and logs a malformed secret at once)."""
        await self.registry.keys.current()

    def redact(self, text: str) -> str:
        """`text` with every value of the keys secret (and URL credentials) masked: for logs and messages."""
        return self.registry.keys.redact(text)

    async def key_sources(self) -> tuple[SourceStatus, ...]:
        """Each keys source with the key names it holds or why it cannot be read (never a value)."""
        return (await self.registry.keys.current()).sources

    async def refresh_models(self) -> None:
        """Re-read the keys now and make every provider list its models afresh."""
        await self.registry.refresh()

    async def problems(self, models: Sequence[ModelInfo] | None = None) -> list[str]:
        """What hides models: unreadable key sources and provider plugins that failed; given the `models` a
        caller was shown, also the default model when it is not among them."""
        if models is None:
            return await self.registry.problems()
        return await self.registry.problems_with(list(models), self.default_model)

    async def model_info(self, model_id: str) -> ModelInfo:
        """The model `model_id` names, available or not; `ModelNotFoundError` lists the known ids."""
        return (await self.registry.resolve(model_id))[1]

    async def list_models(self, caller: Principal | str | None = None) -> list[ModelInfo]:
        """The models the caller may use (every model when `caller` is None: the server's own view)."""
        models = await self.registry.list_models()
        if caller is None or self.governor is OPEN_GOVERNOR:
            return models
        return await self.governor.visible_models(caller_of(caller), models)

    async def allowed_model(self, who: Principal | str, model_id: str | None) -> ModelInfo:
        """The chat model `model_id` names (the default when None); `ModelNotAllowedError` when `who` may not use
        it, `InvalidRequestError` for an embedding model."""
        _, info = await self.registry.resolve(model_id or self.default_model)
        if self.governor is not OPEN_GOVERNOR and not await self.governor.visible_models(caller_of(who), [info]):
            raise ModelNotAllowedError(info.id)
        check_chat_inputs(info, ())  # a session or terminal chat with an embedding model could never answer
        return info

    async def prepare(
        self,
        model_id: str | None,
        messages: Sequence[Message],
        *,
        system: str | None = None,
        options: GenerationOptions = DEFAULT_OPTIONS,
        caller: Principal | str = "default",
        surface: Surface = "v1",
        tools: ToolRequest = NO_TOOLS,
    ) -> PreparedChat:
        """Resolve the model, apply the defaults (system prompt, reply budget, the model's sampling), trim.

        Tools are refused (`InvalidRequestError`) for a model without the feature "tools".

        Raises `ModelError` subclasses for anything that makes the request unservable, before any work.
        """
        if not messages:
            raise InvalidRequestError("messages must contain at least one message.", param="messages")
        provider, info = await self.registry.resolve(model_id or self.default_model)
        check_chat_inputs(info, messages)  # images only to models that take them; no chat with embedding models
        if not info.available and info.id not in self.fallbacks.fallbacks:  # else its fallbacks answer
            raise ProviderUnavailableError(unavailable(info))
        if system is None:
            # A session without a prompt of its own gets the server's (`default_system_prompt`); `/v1` sends
            # the messages as the client sent them. A model that needs one still gets its own (its defaults).
            system = (self.default_system_prompt if surface != "v1" else None) or info.defaults.system_prompt
        max_tokens = options.max_tokens or min(self.default_max_tokens, info.context_window // 2)
        if max_tokens >= info.context_window:
            raise InvalidRequestError(
                f"max_tokens {max_tokens} does not fit the context window of {info.id} "
                f"({info.context_window} tokens, prompt included); ask for fewer.",
                param="max_tokens",
            )
        # An unavailable model (with fallbacks) is never called: estimate, without loading its tokenizer.
        count_tokens = provider.count_tokens if info.available else functools.partial(Provider.count_tokens, provider)
        counts = await count_tokens(info.name, system, messages)
        budget = info.context_window - max_tokens - counts[0]
        first = first_kept_index(counts[1:], budget)
        first = trim_start_to_user_turn(first, [m.role for m in messages])
        request = tools.applied_to(info, options.request(info, tuple(messages[first:]), system, max_tokens))
        request = check_features(info, request, self.drop_unsupported_params)
        return PreparedChat(provider, info, request, caller_of(caller), surface, options)

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
