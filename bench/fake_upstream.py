"""A fast fake OpenAI-compatible upstream for gateway benchmarks: raw asyncio, no framework.

`POST /v1/chat/completions` answers with 20 streamed content chunks (or one JSON body when not streaming),
`GET /v1/models` lists one model. It does no work per request beyond writing canned bytes, so whatever a
gateway in front of it costs shows up in the numbers.

Usage: python bench/fake_upstream.py PORT [CHUNKS]
"""

from __future__ import annotations

import asyncio
import json
import sys

MODEL = "fake-model"


def _stream_body(chunks: int) -> bytes:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": MODEL}
    events = []
    for index in range(chunks):
        delta = {"content": f"tok{index} "} if index else {"role": "assistant", "content": "tok0 "}
        events.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 10, "completion_tokens": chunks, "total_tokens": 10 + chunks}
    events.append({**base, "choices": [], "usage": usage})
    payload = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    return payload


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def build_responses(chunks: int) -> dict[str, bytes]:
    whole = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "tok " * chunks}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": chunks, "total_tokens": 10 + chunks},
    }
    models = {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "bench"}]}
    return {
        "stream": _response("200 OK", "text/event-stream", _stream_body(chunks)),
        "whole": _response("200 OK", "application/json", json.dumps(whole).encode()),
        "models": _response("200 OK", "application/json", json.dumps(models).encode()),
        "missing": _response("404 Not Found", "application/json", b'{"error": {"message": "not found"}}'),
    }


async def serve(port: int, chunks: int) -> None:
    responses = build_responses(chunks)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, _, header_block = head.partition(b"\r\n")
                length = 0
                for line in header_block.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                path = request_line.split(b" ")[1]
                if path.endswith(b"/chat/completions"):
                    streaming = b'"stream":true' in body.replace(b" ", b"")
                    writer.write(responses["stream" if streaming else "whole"])
                elif path.endswith(b"/models"):
                    writer.write(responses["models"])
                else:
                    writer.write(responses["missing"])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 20))
