"""A local AWS endpoint on 127.0.0.1 that speaks the wire protocols botocore parses, event streams included.

moto implements neither Bedrock Converse, ListFoundationModels, GetFoundationModelAvailability, nor any
response stream, nor SageMaker endpoints that are not InService, and botocore's Stubber cannot stub event
streams. This server answers Bedrock, Bedrock Runtime, SageMaker (JSON protocol, routed by `X-Amz-Target`),
SageMaker Runtime and STS AssumeRole with canned replies, writing `application/vnd.amazon.eventstream`
frames (prelude with lengths and CRC32, typed headers, payload, message CRC32, all big-endian) so
botocore's real parser and our real code paths run. It records every request so tests assert on what
boto3 actually sent.
"""

from __future__ import annotations

import json
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

# ---------------------------------------------------------------------------------------------- frames


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: string-typed (type 7) headers, payload, both CRCs."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """A JSON event, e.g. `event("contentBlockDelta", {"delta": {"text": "Hi"}, "contentBlockIndex": 0})`."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode())


def payload_part(data: bytes) -> bytes:
    """A SageMaker `PayloadPart` carrying raw bytes."""
    headers = {":event-type": "PayloadPart", ":content-type": "application/octet-stream", ":message-type": "event"}
    return frame(headers, data)


def exception(exception_type: str, message: str, **fields: Any) -> bytes:
    """A modelled exception in the stream, e.g. `exception("throttlingException", "Too many tokens")`."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message, "Message": message, **fields}).encode())


def converse_events(*texts: str, stop_reason: str = "end_turn", usage: tuple[int, int] = (11, 7)) -> list[bytes]:
    """A whole ConverseStream answer made of `texts`."""
    return [
        event("messageStart", {"role": "assistant"}),
        *(event("contentBlockDelta", {"delta": {"text": t}, "contentBlockIndex": 0}) for t in texts),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": stop_reason}),
        event(
            "metadata",
            {
                "usage": {"inputTokens": usage[0], "outputTokens": usage[1], "totalTokens": sum(usage)},
                "metrics": {"latencyMs": 5},
            },
        ),
    ]


# --------------------------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Json:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Error:
    """A rest-json error: `Error("AccessDeniedException", "You don't have access", 403)`."""

    code: str
    message: str
    status: int = 400
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stream:
    """An event stream written frame by frame; `frames` may be endless (the client must hang up)."""

    frames: Iterable[bytes]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Xml:
    body: str


Reply = Json | Error | Stream | Xml


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # unquoted, e.g. /model/anthropic.claude-3-haiku-20240307-v1:0/converse-stream
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class AwsWire:
    """The server: `route(method, path_regex, reply)`; a reply may be a function of the request."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.routes: list[tuple[str, re.Pattern[str], str | None, Reply | Callable[[Request], Reply]]] = []
        #: Set when a client hung up in the middle of a stream; `frames_sent` says after how many frames.
        self.hung_up = threading.Event()
        self.frames_sent = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval: `stop()` (each test's teardown) waits for one poll, half a second by default.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def route(
        self, method: str, path: str, reply: Reply | Callable[[Request], Reply], target: str | None = None
    ) -> None:
        """Answer `method` on paths matching `path`; JSON-protocol services also match `target` (X-Amz-Target)."""
        self.routes.insert(0, (method, re.compile(path), target, reply))  # later routes override earlier ones

    def requests_for(self, target: str) -> list[Request]:
        """The JSON-protocol requests for one operation, e.g. `SageMaker.DescribeEndpoint`."""
        return [r for r in self.requests if r.headers.get("x-amz-target") == target]

    def requests_to(self, path_pattern: str) -> list[Request]:
        return [r for r in self.requests if re.search(path_pattern, r.path)]

    def start(self) -> AwsWire:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _reply_for(self, request: Request) -> Reply:
        for method, pattern, target, reply in self.routes:
            if target is not None and request.headers.get("x-amz-target") != target:
                continue
            if method == request.method and pattern.fullmatch(request.path):
                return reply(request) if callable(reply) else reply
        return Error("UnknownOperationException", f"aws_wire has no route for {request.method} {request.path}", 404)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        wire = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                request = Request(
                    self.command,
                    unquote(url.path),
                    parse_qs(url.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                wire.requests.append(request)
                self._send(wire._reply_for(request))

            do_GET = do_POST = _handle

            def _send(self, reply: Reply) -> None:
                if isinstance(reply, Stream):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()  # no length: the stream ends when the connection closes (HTTP/1.0)
                    try:
                        for data in reply.frames:
                            self.wfile.write(data)
                            self.wfile.flush()
                            wire.frames_sent += 1
                    except (BrokenPipeError, ConnectionResetError):
                        wire.hung_up.set()
                    return
                if isinstance(reply, Error):
                    data = json.dumps({"__type": reply.code, "message": reply.message, **reply.fields}).encode()
                    status, content_type, extra = reply.status, "application/json", {"x-amzn-ErrorType": reply.code}
                elif isinstance(reply, Xml):
                    data, status, content_type, extra = reply.body.encode(), 200, "text/xml", {}
                else:
                    data, status, content_type = json.dumps(reply.body).encode(), reply.status, "application/json"
                    extra = reply.headers
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def assume_role_reply(access_key_id: str, expiration: str = "2099-01-01T00:00:00Z") -> Xml:
    """STS AssumeRole's XML answer with temporary credentials."""
    return Xml(
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>'
        f"<AccessKeyId>{access_key_id}</AccessKeyId><SecretAccessKey>wire-secret</SecretAccessKey>"
        f"<SessionToken>wire-token</SessionToken><Expiration>{expiration}</Expiration></Credentials>"
        "<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/chatbot/genai-chatbot</Arn>"
        "<AssumedRoleId>AROAWIRE:genai-chatbot</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>"
        "<ResponseMetadata><RequestId>wire</RequestId></ResponseMetadata></AssumeRoleResponse>"
    )


def model_availability(
    request: Request,
    *,
    authorization: str = "AUTHORIZED",
    entitlement: str = "AVAILABLE",
    agreement: str = "AVAILABLE",
    region: str = "AVAILABLE",
    agreement_error: str | None = None,
) -> Json:
    """Bedrock GetFoundationModelAvailability's answer for the model named in `request`'s path."""
    agreement_body: dict[str, str] = {"status": agreement}
    if agreement_error is not None:
        agreement_body["errorMessage"] = agreement_error
    return Json(
        {
            "modelId": request.path.rpartition("/")[2],
            "agreementAvailability": agreement_body,
            "authorizationStatus": authorization,
            "entitlementAvailability": entitlement,
            "regionAvailability": region,
        }
    )


def foundation_models(summaries: list[dict[str, Any]]) -> Callable[[Request], Reply]:
    """ListFoundationModels' answer: `summaries` filtered by `byOutputModality` as Bedrock filters them."""

    def answer(request: Request) -> Reply:
        wanted = request.query.get("byOutputModality")
        return Json({"modelSummaries": [s for s in summaries if not wanted or wanted[0] in s["outputModalities"]]})

    return answer


def endless(frames: Iterable[bytes], then: Callable[[int], bytes], limit: int = 200_000) -> Iterator[bytes]:
    """`frames`, then `then(i)` up to `limit` times: more than a consumer that stops early would ever read."""
    yield from frames
    for i in range(limit):
        yield then(i)


@pytest.fixture(name="wire")
def wire_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[AwsWire]:
    """A running `AwsWire`, with boto3 pointed at it through the standard endpoint variables."""
    server = AwsWire().start()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = {
        "AWS_ACCESS_KEY_ID": "AKIAWIRETEST",
        "AWS_SECRET_ACCESS_KEY": "wire-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_BEDROCK": server.url,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": server.url,
        "AWS_ENDPOINT_URL_SAGEMAKER": server.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url,
        "AWS_ENDPOINT_URL_STS": server.url,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()
