"""A local GGUF embedding model (`local.embedding_model_path`), run by llama.cpp: `local/<name>` for /v1/embeddings.

It is its own `Llama` (opened with `embedding=True`), loaded on first use, on its own worker thread: an
embeddings request never queues behind a chat generation of the chat model. Vectors are L2-normalised, as
OpenAI's are, so a cosine similarity is a dot product. A GGUF without a pooling layer (a chat model used
for embeddings) gives one vector per token; those are averaged into one vector per text.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from genai_chatbot.config import LocalModelSettings
from genai_chatbot.models.errors import InvalidRequestError, ModelError, ProviderError, ProviderUnavailableError
from genai_chatbot.models.inputs import EMBEDDINGS
from genai_chatbot.models.providers._catalog import model_info
from genai_chatbot.models.types import EmbeddingRequest, EmbeddingResult, ModelInfo, Usage

logger = logging.getLogger(__name__)


class LocalEmbeddingModel:
    """The configured embedding GGUF: listed, loaded on first use, and asked on one worker thread."""

    def __init__(self, settings: LocalModelSettings, path: Path) -> None:
        self._settings = settings
        self.path = path
        self.name = settings.embedding_model_name or path.stem.lower()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp-embed")
        self._llm: Any = None
        self._lock = threading.Lock()

    def info(self, provider: str, llama_missing: str | None) -> ModelInfo:
        reason = llama_missing
        if reason is None and not self.path.is_file():
            reason = f"the GGUF file {self.path} does not exist; fix local.embedding_model_path"
        return model_info(
            provider,
            self.name,
            f"{self.name} (local embeddings)",
            context_window=self._settings.context_size,
            unavailable_reason=reason,
            streaming=False,
            features=frozenset({EMBEDDINGS}),
        )

    def _load(self) -> Any:
        with self._lock:
            if self._llm is None:
                from llama_cpp import Llama

                started = time.perf_counter()
                try:
                    self._llm = Llama(
                        model_path=str(self.path),
                        embedding=True,
                        n_ctx=self._settings.context_size,
                        n_batch=self._settings.context_size,
                        n_ubatch=self._settings.context_size,
                        n_threads=self._settings.threads or os.cpu_count() or 1,
                        verbose=False,
                    )
                except Exception as exc:  # llama.cpp reports a bad file as ValueError/RuntimeError
                    raise ProviderUnavailableError(f"Cannot load the embedding model {self.path}: {exc}") from exc
                logger.info("Loaded embedding model %s in %.2f s", self.path.name, time.perf_counter() - started)
            return self._llm

    def _embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        llm = self._load()
        vectors: list[tuple[float, ...]] = []
        tokens = 0
        for text in request.inputs:  # one at a time: llama.cpp's batch must hold each whole text
            count = len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
            if count > self._settings.context_size:
                raise InvalidRequestError(
                    f"A text of {count} tokens exceeds the local embedding model's context of "
                    f"{self._settings.context_size} tokens; split it, or raise local.context_size.",
                    param="input",
                )
            raw = llm.embed(text, normalize=False)
            vectors.append(_normalised(_pooled(raw)))
            tokens += count
        if request.dimensions is not None:
            if request.dimensions > len(vectors[0]):
                raise InvalidRequestError(
                    f"dimensions {request.dimensions} is more than the model's {len(vectors[0])}.", param="dimensions"
                )
            vectors = [_normalised(list(v[: request.dimensions])) for v in vectors]
        return EmbeddingResult(tuple(vectors), Usage(tokens, 0))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._embed, request)
        except ModelError:
            raise
        except Exception as exc:
            logger.exception("llama.cpp embedding failed")
            raise ProviderError(f"The local embedding model failed: {exc}") from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _pooled(raw: Any) -> list[float]:
    """One vector: `raw` itself, or the mean of its per-token vectors when the GGUF has no pooling."""
    if raw and isinstance(raw[0], list):
        width = len(raw[0])
        return [sum(row[i] for row in raw) / len(raw) for i in range(width)]
    return [float(x) for x in raw]


def _normalised(vector: list[float]) -> tuple[float, ...]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return tuple(x / norm for x in vector)
