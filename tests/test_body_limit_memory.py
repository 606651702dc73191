"""A 100 MB request body is refused by a real server without its memory growing by more than the limit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aws_local import free_port
from leak_scan import scan_text

# A `serve` subprocess sent 200 MB, to watch its memory; test_limits.py checks the 413s in-process.
pytestmark = pytest.mark.slow

HUNDRED_MB = 100 * 1024 * 1024
LIMIT = 4 * 1024 * 1024  # the default limits.max_body_bytes
PIECE = b"x" * (1024 * 1024)


def kib(pid: int, field: str) -> int:
    """A memory figure of a process from /proc, in KiB: VmRSS (now) or VmHWM (its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {field}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    config = tmp_path / "genai-chatbot.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[local]\nenabled = false\n')
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "genai_chatbot", "serve", "--config", str(config), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9"},
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield process, port
    finally:
        process.terminate()
        process.wait(20)
        scan_text(log.read_text(), "the body-limit server's log")


def send_100_mb(port: int, path: str, chunked: bool) -> bytes:
    """POST 100 MB to `path` from a thread while reading the answer; the answer's first bytes."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % HUNDRED_MB
    connection.sendall(
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n%s\r\n\r\n"
        % (path.encode(), framing)
    )

    def body() -> None:
        try:
            for _ in range(HUNDRED_MB // len(PIECE)):
                connection.sendall(b"%x\r\n%s\r\n" % (len(PIECE), PIECE) if chunked else PIECE)
            if chunked:
                connection.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close once it has answered; what it answered is what counts

    sender = threading.Thread(target=body)
    sender.start()
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
        received = connection.recv(65536)
        if not received:
            break
        answer += received
    sender.join(60)
    connection.close()
    return answer


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_100_mb_body_is_refused_without_memory_growth_beyond_the_limit(
    server: tuple[subprocess.Popen[bytes], int], chunked: bool
) -> None:
    process, port = server
    before = kib(process.pid, "VmRSS")

    answers = [send_100_mb(port, path, chunked) for path in ("/api/sessions", "/v1/chat/completions")]

    peak_growth_kib = kib(process.pid, "VmHWM") - before
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"limits.max_body_bytes" in answer
    assert peak_growth_kib * 1024 < LIMIT + 8 * 1024 * 1024, f"peak RSS grew by {peak_growth_kib} KiB"
    assert httpx.get(f"http://127.0.0.1:{port}/api/sessions").json() == []  # still serving, nothing stored
