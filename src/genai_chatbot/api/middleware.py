"""The server's outer layers, pure ASGI so that they cost a few function calls per request, not a task.

Outermost first: `RequestContextMiddleware` (a request id on every response and in the log, a JSON 500
for anything unexpected, security headers on HTML, each response counted for `/metrics`), then the `Host`
check, then the body limit, then the routes. `install_middleware` puts them in that order.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genai_chatbot.api.errors import internal_error_body
from genai_chatbot.api.host_check import AllowedHosts, HostCheckMiddleware
from genai_chatbot.api.limits import install_limits
from genai_chatbot.api.web_routes import PAGE_HEADERS
from genai_chatbot.config import Settings
from genai_chatbot.governance.metrics import Metrics

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# A request id a proxy in front already gave the request is kept, when it cannot corrupt a log line.
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
_HTML_HEADERS = [(name.lower().encode(), value.encode()) for name, value in PAGE_HEADERS.items()]
_NOSNIFF = (b"x-content-type-options", b"nosniff")
# Request ids: unique per process start (the prefix) and cheap (a counter); they need not be unguessable.
_ID_PREFIX = secrets.token_hex(4)
_id_counter = itertools.count(1)


def new_request_id() -> bytes:
    return f"{_ID_PREFIX}{next(_id_counter):08x}".encode()


def _with_headers(headers: list[tuple[bytes, bytes]], request_id: bytes) -> list[tuple[bytes, bytes]]:
    """The response headers plus the request id, `nosniff`, and for HTML the page's security headers."""
    html = nosniff = False
    for name, value in headers:  # Starlette writes header names in lower case
        if name == b"content-type":
            html = value.startswith(b"text/html")
        elif name == b"x-content-type-options":
            nosniff = True
    added = [*headers, (b"x-request-id", request_id)]
    if not nosniff:
        added.append(_NOSNIFF)
    if html:
        present = {name for name, _ in headers}
        added.extend(h for h in _HTML_HEADERS if h[0] not in present and h != _NOSNIFF)
    return added


class RequestContextMiddleware:
    """Gives each request an id, answers unexpected exceptions in the JSON error shape, secures HTML.

    The id is the `X-Request-ID` header of every response, `request.state.request_id` for the routes,
    and is logged with the traceback of an unexpected exception, whose 500 body quotes it: a person can
    report the id, and whoever reads the log finds the traceback by it.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        """With `metrics`, each response is counted by route template, method and status as it starts (routing
        is done by then), so that counting adds nothing per streamed chunk."""
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value if _VALID_REQUEST_ID.match(value) else b""
                break
        request_id = request_id or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        started = False
        metrics = self._metrics

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": _with_headers(list(message.get("headers", ())), request_id)}
                if metrics is not None:
                    route = scope.get("route")
                    metrics.http_request(getattr(route, "path", ""), scope["method"], message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            shown = request_id.decode()
            logger.exception("Unexpected error answering %s %s (request id %s)", scope["method"], scope["path"], shown)
            if started:  # the status is sent: all that is left is to end the response, which returning does
                return
            body = json.dumps(internal_error_body(shown)).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send_with_headers({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})


def install_middleware(app: FastAPI, settings: Settings, metrics: Metrics | None = None) -> None:
    """Add the outer layers to `app`; call it after every other `add_middleware`, so that these stay outermost.

    `metrics` count every response, those of the outer layers (400, 413, 500) included.
    """
    install_limits(app, settings.limits.max_body_bytes)
    app.add_middleware(HostCheckMiddleware, allowed=AllowedHosts(settings))
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
