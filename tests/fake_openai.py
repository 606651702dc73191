"""A small real HTTP server on 127.0.0.1 that answers like OpenAI's API and records what clients send.

It implements only what the SDK and our providers send: `GET …/models`, `POST …/chat/completions`
(whole or streamed as server-sent events) and `POST …/embeddings` (vector i of text t is `[len(t), i]`).
Tests replace the answer of a route to script errors.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from served import Served

MODEL_IDS = [
    "gpt-4o",
    "gpt-4o-mini",
    "o3-mini",
    "chatgpt-4o-latest",
    "text-embedding-3-small",
    "whisper-1",
    "tts-1",
    "dall-e-3",
    "omni-moderation-latest",
    "gpt-4o-realtime-preview",
    "gpt-4o-transcribe",
    "gpt-4o-audio-preview",
    "gpt-image-1",
    "gpt-3.5-turbo-instruct",
]
REPLY = ["Hello", ",", " world"]


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    #: The body exactly as it arrived, to assert on what an upstream received byte for byte.
    raw: bytes = b""


@dataclass
class Reply:
    """An answer: a status, headers, and either a JSON body or SSE events (raw strings, sent as produced)."""

    status: int = 200
    json: Any = None
    events: Iterable[str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def sse(data: Any) -> str:
    return f"data: {json.dumps(data)}\n\n"


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def default_reply(request: Recorded) -> Reply:
    if request.path.endswith("/models"):
        return Reply(
            json={"object": "list", "data": [{"id": i, "object": "model", "owned_by": "x"} for i in MODEL_IDS]}
        )
    if request.path.endswith("/embeddings"):
        texts = request.body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), float(i)]} for i, t in enumerate(texts)
        ]
        # Listed in reverse: a client must order by `index`, not by position.
        counts = {"prompt_tokens": sum(map(len, texts)), "total_tokens": sum(map(len, texts))}
        return Reply(json={"object": "list", "data": data[::-1], "model": request.body["model"], "usage": counts})
    usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    if request.body.get("stream"):
        events = [sse(chunk(text)) for text in REPLY] + [sse(chunk(finish="stop"))]
        if request.body.get("stream_options", {}).get("include_usage"):
            events.append(sse({**chunk(), "choices": [], "usage": usage}))
        return Reply(events=[*events, "data: [DONE]\n\n"])
    return completion(request, {"role": "assistant", "content": "".join(REPLY)}, "stop", usage)


def completion(request: Recorded, message: dict[str, Any], finish: str, usage: dict[str, int]) -> Reply:
    """A whole chat completion of one `message`."""
    return Reply(
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": request.body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
    )


class FakeOpenAI:
    """The server; `answer` decides every reply (default: a healthy OpenAI), `requests` records them."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.answer: Callable[[Recorded], Reply] = default_reply
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self._serve(self.rfile.read(length))

            def _serve(self, raw: bytes) -> None:
                url = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = json.loads(raw) if raw else None
                recorded = Recorded(self.command, url.path, parse_qs(url.query), headers, body, raw)
                fake.requests.append(recorded)
                reply = fake.answer(recorded)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.events is None:
                    data = json.dumps(reply.json).encode()
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                # HTTP/1.0 without a length: the body ends when the connection closes, like a cut stream.
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for event in reply.events:
                    self.wfile.write(event.encode())
                    self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._served = Served(self._server)

    def serve_tls(self, context: ssl.SSLContext) -> None:
        """Answer over TLS from now on (call before the first request); the URL keeps its `http://`."""
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    def __enter__(self) -> FakeOpenAI:
        self._served.__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self._served.__exit__()

    def last(self, suffix: str) -> Recorded:
        """The latest request whose path ends with `suffix`."""
        return next(r for r in reversed(self.requests) if r.path.endswith(suffix))


def tool_call_reply(request: Recorded, calls: list[tuple[str, str, list[str]]]) -> Reply:
    """An answer that calls tools: `calls` are (id, name, argument fragments); streamed as OpenAI streams
    them (the first piece of a call names it, later pieces add argument text), else one whole message."""
    if request.path.endswith("/models"):
        return default_reply(request)
    usage = {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
    if not request.body.get("stream"):
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": id_, "type": "function", "function": {"name": name, "arguments": "".join(fragments)}}
                for id_, name, fragments in calls
            ],
        }
        return completion(request, message, "tool_calls", usage)

    def delta(tool_calls: list[dict[str, Any]]) -> str:
        event = chunk()
        event["choices"][0]["delta"] = {"tool_calls": tool_calls}
        return sse(event)

    events = [sse({**chunk(), "choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]})]
    for index, (id_, name, fragments) in enumerate(calls):
        first = {"index": index, "id": id_, "type": "function", "function": {"name": name, "arguments": ""}}
        events.append(delta([first]))
        events.extend(delta([{"index": index, "function": {"arguments": piece}}]) for piece in fragments)
    events.append(sse(chunk(finish="tool_calls")))
    if request.body.get("stream_options", {}).get("include_usage"):
        events.append(sse({**chunk(), "choices": [], "usage": usage}))
    return Reply(events=[*events, "data: [DONE]\n\n"])
