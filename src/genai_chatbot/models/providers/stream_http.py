"""Provider HTTP over aiohttp: the one HTTP client for every provider call we make ourselves.

Why aiohttp (and not httpx, which the vendor SDKs bring): on the gateway benchmark (bench/gateway.py: 64
concurrent streams of 20 chunks, 2 cores) httpx and httpcore took about half of our server's CPU per
request, building requests, checking every pooled connection for expiry on each request, and iterating
lines. Measured side by side on the server process: 2.0 ms of CPU per streamed request through httpx
(with its pool split in eight to blunt the expiry checks), 1.5 ms through aiohttp; 410 against 460 streamed
requests/s. Model listings and whole replies take the same path, so one library serves all three.

Proxies: the environment's `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` (either case) are honoured, and `NO_PROXY`
exempts hosts, as curl, httpx and the SDKs do. aiohttp's own `trust_env=True` would do that by hopping to
a worker thread twice per request (once for the proxy, once for `.netrc`), which costs the hot path its
speed; so the proxy of a client's one base URL is looked up once, when the client is made.

An aiohttp session belongs to the event loop it was made in, so each loop that calls gets its own.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from genai_chatbot.models.errors import ProviderError
from genai_chatbot.models.providers._http_errors import ErrorContext
from genai_chatbot.per_loop import PerLoop

if TYPE_CHECKING:
    import aiohttp


def split_credentials(url: str) -> tuple[str, str | None]:
    """`url` without the `user:password@` written into it, and those as a Basic authorization value."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return urlunsplit(parts._replace(netloc=netloc)), "Basic " + base64.b64encode(credentials).decode()


def proxy_for(url: str) -> tuple[str | None, dict[str, str] | None]:
    """The proxy the environment names for `url`, and its credentials as a header; (None, None) for none.

    `NO_PROXY` (hosts, domains, `*`) exempts a host, as in urllib; credentials written into the proxy URL
    travel as `Proxy-Authorization`, never in a logged URL.
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # public, not in typeshed
    if not proxy or (parts.hostname and bypass(parts.hostname, proxies)):
        return None, None
    if "://" not in proxy:
        proxy = f"http://{proxy}"  # `HTTPS_PROXY=proxy:3128`, as curl accepts it
    bare, authorization = split_credentials(proxy)
    return bare, {"Proxy-Authorization": authorization} if authorization else None


class HTTPClient:
    """Keep-alive connection pools to one base URL (one per event loop), through its proxy if any.

    Failures to connect, time-outs and broken bodies are translated into our errors with `ctx`.
    """

    def __init__(self, base_url: str, timeout_seconds: float, ctx: ErrorContext) -> None:
        self._timeout = timeout_seconds
        self._ctx = ctx
        self.proxy, proxy_headers = proxy_for(base_url)
        # Through CONNECT (https) the proxy reads its credentials from the CONNECT request; plain http is
        # forwarded as is, so they ride on each request (and the proxy strips them).
        tunnelled = urlsplit(base_url).scheme == "https"
        self._proxy_headers = proxy_headers if tunnelled else None
        self._forwarded_headers = proxy_headers if not tunnelled else None
        self._sessions: PerLoop[aiohttp.ClientSession] = PerLoop(self._new_session)

    def _between_chunks(self) -> aiohttp.ClientTimeout:
        import aiohttp

        # Between chunks, not for the whole reply: a long answer may stream for minutes.
        return aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)

    def _new_session(self) -> aiohttp.ClientSession:
        import aiohttp

        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            timeout=self._between_chunks(),
            auto_decompress=True,
        )

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        total_seconds: float | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the response once its headers arrived (release it when done).

        `total_seconds` bounds the whole exchange (model listings); streams are bounded between chunks.
        """
        import aiohttp

        session = self._sessions.get()
        if session.closed:
            session = self._sessions.replace()
        if self._forwarded_headers:
            headers = {**headers, **self._forwarded_headers}
        timeout = aiohttp.ClientTimeout(total=total_seconds) if total_seconds is not None else self._between_chunks()
        try:
            return await session.request(
                method,
                url,
                data=body,
                headers=headers,
                proxy=self.proxy,
                proxy_headers=self._proxy_headers,
                timeout=timeout,
            )
        except TimeoutError:
            raise self._ctx.timed_out(total_seconds) from None
        except aiohttp.ClientError as exc:
            raise self._ctx.unreachable(exc) from None

    async def read(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, then the connection back to the pool."""
        import aiohttp

        try:
            return await response.read()
        except TimeoutError:
            raise self._ctx.timed_out() from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{self._ctx.label}: the connection broke while reading the answer: {exc}") from None
        finally:
            response.release()

    async def pieces(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """The body as it arrives, in pieces cut anywhere; a broken connection or a stall is our error."""
        import aiohttp

        try:
            async for piece in response.content.iter_any():
                yield piece
        except TimeoutError:
            raise self._ctx.timed_out() from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{self._ctx.label}: the connection broke in the middle of the reply: {exc}") from None

    async def aclose(self) -> None:
        """Close the pools of the running loop; pools of other, finished loops are dropped."""
        mine, _ = self._sessions.take_all()
        if mine is not None:
            await mine.close()
