"""Server-sent events, written by hand: on the streaming path every microsecond per chunk counts.

`json.dumps` of the text delta is the only per-chunk work; the rest of each event is formatted once per
stream. No validation models are built per chunk.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import StreamingResponse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def event(data: Any, name: str | None = None) -> bytes:
    """One SSE event carrying `data` as JSON, optionally named."""
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {dumps(data)}\n\n".encode()


class TextEventTemplate:
    """Formats the per-chunk event of one stream: a fixed JSON envelope around the text delta."""

    def __init__(self, envelope: dict[str, Any], name: str | None = None, marker: str = "\x00TEXT\x00") -> None:
        rendered = dumps(envelope)
        head, _, tail = rendered.partition(dumps(marker))
        if not tail and not rendered.endswith(dumps(marker)):
            raise ValueError("The envelope must contain the marker exactly once.")
        prefix = f"event: {name}\n" if name else ""
        self._head = f"{prefix}data: {head}"
        self._tail = f"{tail}\n\n"

    def render(self, text: str) -> bytes:
        return (self._head + dumps(text) + self._tail).encode()


def sse_response(body: Any) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)
