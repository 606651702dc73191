"""Stateless completion over the model interface: the model list, preparing a request, and running it.

`CompletionService` is what the OpenAI-compatible API needs and what the chat service builds its turns on:
it resolves a model and applies its defaults and window (`prepare`), asks the governor before a request and
reports to it after (model access, budgets, usage, metrics), retries and falls back, and streams or
completes. `ChatService` adds sessions and stored turns on top (service.py).
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from genai_chatbot.auth.principal import Principal
from genai_chatbot.chat.early_admission import EarlyAdmission
from genai_chatbot.chat.embedding import embed_checked, embedding_request
from genai_chatbot.chat.fallbacks import (
    NO_FALLBACKS,
    Attempts,
    FallbackPlan,
    FallbackStream,
    complete_with_fallbacks,
    read_until_text,
    unavailable,
)
from genai_chatbot.chat.governed import GovernedStream, governed_complete, governed_stream
from genai_chatbot.chat.requests import DEFAULT_OPTIONS, GenerationOptions, PreparedChat, caller_of
from genai_chatbot.chat.stopping import StoppableStream
from genai_chatbot.chat.usage import count_usage
from genai_chatbot.chat.window import first_kept_index, trim_start_to_user_turn
from genai_chatbot.governance.errors import ModelNotAllowedError
from genai_chatbot.governance.gate import (
    NOTHING_TO_RECORD,
    OPEN_GOVERNOR,
    Admission,
    Governor,
    Surface,
    governor_waits,
)
from genai_chatbot.models.errors import InvalidRequestError, ProviderUnavailableError
from genai_chatbot.models.features import check_features
from genai_chatbot.models.inputs import check_chat_inputs
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.models.tool_calls import NO_TOOLS, ToolRequest
from genai_chatbot.models.types import ChatChunk, ChatRequest, ChatResult, EmbeddingResult, Message, ModelInfo
from genai_chatbot.secrets import SourceStatus

if TYPE_CHECKING:
    from genai_chatbot.governance.tracing import Tracing


class CompletionService:
    """Models, and requests to them that keep no history: the part of the service every surface shares."""

    def __init__(
        self,
        registry: ModelRegistry,
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
        self.governor = governor
        self.fallbacks = fallbacks
        #: Spans of model calls, when an OTLP endpoint is configured; the owner shuts it down (flushes).
        self.tracing = tracing
        self.default_model = default_model
        self.default_system_prompt = default_system_prompt
        self.default_max_tokens = default_max_tokens
        #: Drop (and log) request fields a model cannot honour instead of refusing the request.
        self.drop_unsupported_params = drop_unsupported_params
        self._streams: weakref.WeakSet[StoppableStream] = weakref.WeakSet()
        self._opening = 0  # stateless requests between their start and their first text
        self._stopping = False
        self._early = EarlyAdmission()

    def stop_streams(self) -> None:
        """The server is stopping: end every stateless stream in flight (each ends as finished), and refuse
        new turns. Safe to call from a signal handler: each stream is stopped on its own event loop."""
        self._stopping = True
        for stream in list(self._streams):
            stream.stop()

    async def stream(self, prepared: PreparedChat) -> StoppableStream:
        """The chunks of a stateless request (the OpenAI-compatible API), ended cleanly if the server stops.

        The governor admits the request first (it may refuse it). The caller iterates the stream and
        closes it (`aclose()`) however the response ends.
        """
        self._opening += 1  # in flight already: a burst of requests must not each see few streams
        try:
            if await self._overlaps_admission(prepared):
                chunks = await self._opened_early(prepared)
            else:
                chunks = await self._admitted_chunks(prepared)
            # Wait for the model's first text: an error before it gets its HTTP status (429, 503, 502) instead
            # of an error event after a 200, and with fallbacks the answering model is known before the headers.
            read: list[ChatChunk] = []
            if isinstance(chunks, FallbackStream):
                await chunks.start()
            else:
                read = await read_until_text(chunks)
        finally:
            self._opening -= 1
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
        """The vectors of `inputs` from the embedding model `model_id`, and the model: admitted, recorded and
        traced like a chat request (see `chat/embedding.py`)."""
        provider, info, request = await embedding_request(self.registry, model_id, inputs, dimensions, user)
        admission = await self._admit_call(caller_of(caller), info, surface, 0, None, "embeddings")
        vectors = embed_checked(provider, request, info)
        if admission is None:
            return info, await vectors
        return info, await governed_complete(vectors, admission, info.id, generates=False)

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

    async def _overlaps_admission(self, prepared: PreparedChat) -> bool:
        """Whether to open the model while the governor admits the request (chat/early_admission.py): its
        admission waits on a store, the caller may use the model, and few streams are in flight."""
        return (
            governor_waits(self.governor, prepared.caller.user_id)
            and prepared.model.id not in self.fallbacks.fallbacks
            and self._early.allows(prepared.caller.user_id, len(self._streams) + self._opening - 1)
            and bool(await self.governor.visible_models(prepared.caller, [prepared.model]))
        )

    async def _opened_early(self, prepared: PreparedChat) -> AsyncIterator[ChatChunk]:
        """The model's stream, opened while the governor admits the request; reported to it when it ends."""
        started = time.perf_counter()
        chunks = prepared.provider.stream(prepared.request)
        admission, chunks = await self._early.open(
            prepared.caller.user_id, prepared.model.id, chunks, self._admit(prepared)
        )
        if admission is None:
            return chunks
        return GovernedStream(chunks, admission, prepared.model.id, started=started)

    async def _admit(self, prepared: PreparedChat) -> Admission | None:
        """The governor's admission of `prepared`, traced when tracing is on; `None` when nothing is to be
        reported (the open governor, no tracing)."""
        if self.governor is OPEN_GOVERNOR and self.tracing is None:  # the plain path: no call at all
            return None
        request = prepared.request
        return await self._admit_call(
            prepared.caller, prepared.model, prepared.surface, request.max_tokens or 0, request
        )

    async def _admit_call(
        self,
        caller: Principal,
        model: ModelInfo,
        surface: Surface,
        max_tokens: int,
        request: ChatRequest | None,
        operation: str = "chat",
    ) -> Admission | None:
        """The one admission of every model call, chat or embeddings: the governor's, traced as `operation`
        when tracing is on; `None` when nothing is to be reported (the open governor, no tracing)."""
        admission = None
        if self.governor is not OPEN_GOVERNOR:
            admitted = await self.governor.admit(caller, model, surface, max_tokens)
            admission = None if admitted is NOTHING_TO_RECORD else admitted
        if self.tracing is not None:
            return self.tracing.traced(model, request, surface, admission, operation)
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

    # Models -----------------------------------------------------------------------------------------

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
