"""Real HTTP servers on 127.0.0.1 that answer like a vendor's API and record what the SDK sent.

Only the requests an SDK actually makes are answered (one handler per method and path); anything else
gets a 404, which is also what a real API says about an endpoint it lacks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conftest import LiveServer
from genai_chatbot.secrets import FileKeySource, ProviderKeys


@dataclass
class Received:
    """One request as the server saw it; header names are lower case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


Handler = Callable[[Received], Response]


class FakeAPI:
    """A Starlette app dispatching on (method, path) to handlers set by the test, recording every request."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.url = ""
        self.app = Starlette(routes=[Route("/{path:path}", self._dispatch, methods=["GET", "POST"])])

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.handlers[(method, path)] = handler

    async def _dispatch(self, request: Request) -> Response:
        raw = await request.body()
        received = Received(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=json.loads(raw) if raw else None,
        )
        self.received.append(received)
        handler = self.handlers.get((request.method, request.url.path))
        if handler is None:
            response: Response = JSONResponse({"message": f"no route {request.method} {request.url.path}"}, 404)
        else:
            response = handler(received)
        # No keep-alive: SDKs that cache HTTP clients per URL (langchain-openai) would otherwise keep a
        # connection bound to a finished test's event loop, and warn about it when collected.
        response.headers["connection"] = "close"
        return response


def sse(events: Iterable[dict[str, Any] | str], named: bool = False) -> StreamingResponse:
    """A server-sent-event stream of JSON payloads (strings are sent as they are, e.g. "[DONE]").

    `named` adds an `event:` line carrying the payload's `type`, as Cohere's API does.
    """

    def frames() -> Iterator[str]:
        for event in events:
            data = event if isinstance(event, str) else json.dumps(event)
            prefix = f"event: {event['type']}\n" if named and isinstance(event, dict) else ""
            yield f"{prefix}data: {data}\n\n"

    return StreamingResponse(frames(), media_type="text/event-stream")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


@contextmanager
def serving() -> Iterator[FakeAPI]:
    """A `FakeAPI` served on a free port of 127.0.0.1 for the duration of the block; `url` is set."""
    api = FakeAPI()
    with LiveServer(api.app, scan=False) as live:  # type: ignore[arg-type]  # any ASGI app serves
        api.url = live.url
        yield api


class KeysFile:
    """A keys file read through `ProviderKeys` with TTL 0, so every change is seen by the next call."""

    def __init__(self, path: Path, **keys: str) -> None:
        self.path = path
        self.write(**keys)
        self.keys = ProviderKeys([FileKeySource(path)], ttl_seconds=0)

    def write(self, **keys: str) -> None:
        self.path.write_text(json.dumps(keys), encoding="utf-8")
