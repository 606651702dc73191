"""Streaming POSTs over aiohttp: the hot path of every OpenAI-style stream.

Why aiohttp here when the openai SDK (listing models, whole replies) runs on httpx: on the gateway
benchmark (bench/gateway.py: 64 concurrent streams of 20 chunks, 2 cores) httpx and httpcore took about
half of our server's CPU per request, building requests, checking every pooled connection for expiry on
each request, and iterating lines. Measured side by side on the server process: 2.0 ms of CPU per
streamed request through httpx (with its pool split in eight to blunt the expiry checks), 1.5 ms through
aiohttp; 410 against 460 streamed requests/s.

An aiohttp session belongs to the event loop it was made in, so each loop that streams gets its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from genai_chatbot.models.errors import ProviderError
from genai_chatbot.models.types import ChatChunk, FinishReason, Usage

if TYPE_CHECKING:
    import aiohttp

    from genai_chatbot.models.providers.openai_wire import ErrorContext


class StreamingHTTP:
    """Keep-alive connection pools for streamed POSTs, one per event loop."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def _session(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            for other in [known for known in self._sessions if known.is_closed()]:
                del self._sessions[other]  # loops that are gone (tests, CLI runs) take their pools along
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                # Between chunks, not for the whole reply: a long answer may stream for minutes.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout),
                auto_decompress=True,
            )
            self._sessions[loop] = session
        return session

    async def post(
        self, url: str, payload: dict[str, Any], headers: Mapping[str, str], ctx: ErrorContext
    ) -> aiohttp.ClientResponse:
        """Send the POST and return the response once its headers arrived; transport errors become ours."""
        import aiohttp

        try:
            return await self._session().post(
                url, data=json.dumps(payload).encode(), headers={**headers, "content-type": "application/json"}
            )
        except TimeoutError:
            raise ctx.timed_out() from None
        except aiohttp.ClientError as exc:
            raise ctx.unreachable(exc) from None

    async def aclose(self) -> None:
        """Close the pools of the running loop; pools of other, finished loops are dropped."""
        sessions, self._sessions = self._sessions, {}
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        await asyncio.gather(*(s.close() for owner, s in sessions.items() if owner is loop))


def _finish(reason: object) -> FinishReason:
    return "length" if reason == "length" else "stop"


async def parse_stream(response: aiohttp.ClientResponse, ctx: ErrorContext) -> AsyncIterator[ChatChunk]:
    """Text chunks of a chat-completion event stream, then one chunk with `finish_reason` and usage.

    The per-chunk work is one `json.loads` and a few dict lookups. The body is read to its end, past
    `data: [DONE]`: a response released unread loses its connection, and reconnecting for every stream
    doubles the upstream cost.
    """
    import aiohttp

    from genai_chatbot.models.providers.openai_wire import body_message

    loads = json.loads
    finish: FinishReason | None = None
    usage: Usage | None = None
    done = False
    try:
        async for raw in response.content:
            if not raw.startswith(b"data:"):
                continue  # blank separators, comments, `event:` lines
            data = raw[5:].strip()
            if data == b"[DONE]":
                done = True
                continue
            try:
                event = loads(data)
                choices = event.get("choices")
            except (ValueError, AttributeError):
                sample = ctx.scrub(data[:200].decode("utf-8", "replace"))
                raise ProviderError(f"{ctx.label} sent a malformed stream event: {sample}") from None
            if choices:
                choice = choices[0]
                delta = choice.get("delta")
                if delta:
                    text = delta.get("content")
                    if text:
                        yield ChatChunk(text=text)
                reason = choice.get("finish_reason")
                if reason:
                    finish = _finish(reason)
            counts = event.get("usage")
            if counts:
                usage = Usage(counts.get("prompt_tokens") or 0, counts.get("completion_tokens") or 0)
            if event.get("error"):
                message = ctx.scrub(body_message(event) or "unknown error")
                raise ProviderError(f"{ctx.label} failed in the middle of the reply: {message}")
    except TimeoutError:
        raise ctx.timed_out() from None
    except aiohttp.ClientError as exc:
        raise ProviderError(f"{ctx.label}: the connection broke in the middle of the reply: {exc}") from None
    if finish is None and not done:
        raise ProviderError(f"{ctx.label} ended the stream before the reply was finished; try again.")
    yield ChatChunk(finish_reason=finish or "stop", usage=usage)
