"""A provider that plays a script, for the failure paths no real model produces on demand.

Real models are used everywhere else; this one exists because "fail after two chunks" and "hang until
cancelled" cannot be asked of llama.cpp.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from genai_chatbot.models.errors import ModelError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.types import ChatChunk, ChatRequest, ModelInfo, Usage

Step = str | ModelError | None  # text to send, an error to raise, or None: wait until cancelled


class ScriptedProvider(Provider):
    name = "scripted"

    def __init__(self, script: Sequence[Step], context_window: int = 4096, first: Sequence[Step] | None = None) -> None:
        """Play `script` on every call; the first call plays `first` instead when given (fail, then recover)."""
        self.script = list(script)
        self.first = list(first) if first is not None else None
        self.context_window = context_window
        self.requests: list[ChatRequest] = []

    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id="scripted/echo",
                provider=self.name,
                name="echo",
                display_name="Scripted",
                context_window=self.context_window,
            )
        ]

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        self.requests.append(request)
        script = self.first if self.first is not None and len(self.requests) == 1 else self.script
        for step in script:
            if step is None:
                await asyncio.Event().wait()
            elif isinstance(step, ModelError):
                raise step
            else:
                yield ChatChunk(text=step)
        yield ChatChunk(finish_reason="stop", usage=Usage(3, len(script)))
