"""No turn lost, none duplicated: a real server killed mid-stream, stopped with SIGTERM, and raced.

The slow upstream is `FakeOpenAI` answering two pieces and then holding until the test lets go, so "every
turn has streamed something" is an event the test waits for, not a guess about timing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from aws_local import free_port
from conftest import LiveServer, make_service
from fake_openai import FakeOpenAI, Recorded, Reply, chunk, default_reply, sse
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import ProviderError
from scripted import ScriptedProvider

TURNS = 16


class HeldUpstream:
    """Answers stream "Partial answer" at once, then hold until `released` is set (or 60 s pass).

    `abandon()` releases them without another byte: their clients are gone by then.
    """

    def __init__(self) -> None:
        self.released = threading.Event()
        self.abandoned = False

    def abandon(self) -> None:
        self.abandoned = True
        self.released.set()

    def __call__(self, request: Recorded) -> Reply:
        if request.path.endswith("/models"):
            return default_reply(request)
        return Reply(events=self._events())

    def _events(self) -> Iterator[str]:
        yield sse(chunk("Partial "))
        yield sse(chunk("answer"))
        self.released.wait(60)
        if self.abandoned:
            return
        yield sse(chunk(" and the rest."))
        yield sse(chunk(finish="stop"))
        yield "data: [DONE]\n\n"


@contextmanager
def held_upstream() -> Iterator[tuple[FakeOpenAI, HeldUpstream]]:
    """A running `FakeOpenAI` whose answers hold (`HeldUpstream`), released at the end."""
    held = HeldUpstream()
    with FakeOpenAI() as fake:
        fake.answer = held
        try:
            yield fake, held
        finally:
            held.abandon()


@pytest.fixture
def upstream() -> Iterator[tuple[FakeOpenAI, HeldUpstream]]:
    with held_upstream() as served:
        yield served


@pytest.fixture
def config(tmp_path: Path, upstream: tuple[FakeOpenAI, HeldUpstream]) -> Path:
    path = tmp_path / "genai-chatbot.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\ndefault_model = "upstream/gpt-4o"\n'
        "[local]\nenabled = false\n"
        f'[[openai_compatible]]\nname = "upstream"\nbase_url = "{upstream[0].url}/v1"\nmodels = ["gpt-4o"]\n'
    )
    return path


class ServerProcess:
    """`python -m genai_chatbot serve` as a child process, its output (stderr included) in `log`.

    `extra` are more options (`--workers 2`); `env` replaces the environment.
    """

    def __init__(self, config: Path, log: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as sink:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "genai_chatbot",
                    "serve",
                    "--config",
                    str(config),
                    "--port",
                    str(self.port),
                    *extra,
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        while True:  # poll the condition itself, bounded
            try:
                httpx.get(f"{self.url}/healthz").raise_for_status()
                return
            except httpx.TransportError:
                assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


@dataclass
class OpenTurn:
    """A turn whose stream has delivered its start and a first piece of text, and is still open."""

    session_id: str
    answer_id: str
    events: AsyncIterator[tuple[str, dict[str, Any]]]


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    name = "message"
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])
            name = "message"


async def open_turns(api: httpx.AsyncClient, stack: AsyncExitStack, count: int) -> list[OpenTurn]:
    """Start `count` turns, each in its own session, and return once every one has streamed a delta."""

    async def one(n: int) -> OpenTurn:
        session_id = (await api.post("/api/sessions", json={})).json()["id"]
        response = await stack.enter_async_context(
            api.stream("POST", f"/api/sessions/{session_id}/messages", json={"content": f"question {n}"})
        )
        assert response.status_code == 200, await response.aread()
        events = sse_events(response)
        name, start = await anext(events)
        assert name == "start"
        assert await anext(events) == ("delta", {"text": "Partial "})
        return OpenTurn(session_id, start["assistant_message_id"], events)

    return await asyncio.gather(*(one(n) for n in range(count)))


async def open_completion(api: httpx.AsyncClient, stack: AsyncExitStack) -> AsyncIterator[str]:
    """A streamed /v1 chat completion that has delivered its first piece of text and is still open."""
    body = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    response = await stack.enter_async_context(api.stream("POST", "/v1/chat/completions", json=body))
    assert response.status_code == 200
    lines = response.aiter_lines()
    async for line in lines:
        if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
            return lines
    raise AssertionError("the completion ended before its first piece of text")


def stored_rows(database: Path) -> list[tuple[str, str, str, str, str | None]]:
    db = sqlite3.connect(database)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return db.execute("SELECT session_id, role, status, content, error FROM messages ORDER BY seq").fetchall()
    finally:
        db.close()


@pytest.mark.slow  # `serve` subprocesses, one killed
async def test_kill_9_mid_stream_keeps_every_turn_once_and_retry_completes_it(
    config: Path, tmp_path: Path, upstream: tuple[FakeOpenAI, HeldUpstream]
) -> None:
    database = tmp_path / "data" / "chat.sqlite3"
    server = ServerProcess(config, tmp_path / "first.log")
    try:
        async with AsyncExitStack() as stack, httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            turns = await open_turns(api, stack, TURNS)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(30)
    finally:
        server.stop()

    rows = stored_rows(database)  # as the killed server left the file
    assert sorted((r[1], r[2]) for r in rows) == [("assistant", "streaming")] * TURNS + [("user", "complete")] * TURNS

    fake, _ = upstream
    server = ServerProcess(config, tmp_path / "second.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            for n, turn in enumerate(turns):
                messages = api.get(f"/api/sessions/{turn.session_id}").json()["messages"]
                assert [(m["role"], m["status"], m["content"]) for m in messages] == [
                    ("user", "complete", f"question {n}"),
                    ("assistant", "interrupted", ""),
                ]
                assert messages[1]["id"] == turn.answer_id
                assert "Retry generates it again" in messages[1]["error"]
            fake.answer = default_reply
            retried = api.post(
                f"/api/sessions/{turns[0].session_id}/messages/{turns[0].answer_id}/retry", json={"stream": False}
            )
            assert retried.status_code == 200, retried.text
            assert retried.json()["message"]["status"] == "complete"
            messages = api.get(f"/api/sessions/{turns[0].session_id}").json()["messages"]
            assert [(m["role"], m["status"], m["content"]) for m in messages] == [
                ("user", "complete", "question 0"),
                ("assistant", "complete", "Hello, world"),
            ]
    finally:
        server.stop()
    assert len(stored_rows(database)) == 2 * TURNS


@pytest.mark.slow  # a `serve` subprocess
async def test_sigterm_stores_turns_in_flight_as_cancelled_with_their_text_and_logs_no_traceback(
    config: Path, tmp_path: Path
) -> None:
    database = tmp_path / "data" / "chat.sqlite3"
    server = ServerProcess(config, tmp_path / "server.log")
    try:
        async with AsyncExitStack() as stack, httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            turns = await open_turns(api, stack, TURNS)
            completions = [await open_completion(api, stack) for _ in range(4)]
            server.process.send_signal(signal.SIGTERM)
            for lines in completions:  # the stateless API's streams end as finished streams too
                rest = [line async for line in lines if line.startswith("data: ")]
                assert rest[-1] == "data: [DONE]"
                assert json.loads(rest[-2][6:])["choices"][0]["finish_reason"] == "stop"
            for turn in turns:
                rest = [item async for item in turn.events]
                assert rest[0] == ("delta", {"text": "answer"})
                name, end = rest[-1]
                assert name == "end" and end["message"]["status"] == "cancelled"
                assert end["message"]["content"] == "Partial answer" and "shut down" in end["message"]["error"]
        # uvicorn re-raises the signal once it has shut down, so the exit status says "terminated by SIGTERM".
        assert server.process.wait(30) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    rows = stored_rows(database)
    answers = [(status, content) for _, role, status, content, _ in rows if role == "assistant"]
    assert answers == [("cancelled", "Partial answer")] * TURNS


async def settled(api: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    """The session's messages once no answer is `streaming` (the server notices a client left on its own)."""
    deadline = time.monotonic() + 10
    while True:
        messages: list[dict[str, Any]] = (await api.get(f"/api/sessions/{session_id}")).json()["messages"]
        if all(m["status"] != "streaming" for m in messages) or time.monotonic() > deadline:
            return messages
        await asyncio.sleep(0.02)


async def race(api: httpx.AsyncClient, paths_and_bodies: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send the requests at once; return each response as soon as its headers arrived, then close them."""
    requests = [api.build_request("POST", path, json=body) for path, body in paths_and_bodies]
    responses = await asyncio.gather(*(api.send(request, stream=True) for request in requests))
    for response in responses:
        if response.status_code != 200:
            await response.aread()
    for response in responses:
        await response.aclose()
    return list(responses)


async def test_three_concurrent_sends_start_one_turn_and_refuse_two_with_409(settings: Settings) -> None:
    chat = make_service(settings, ScriptedProvider(["partial ", None]))  # holds the answer until cancelled
    with LiveServer(create_app(settings, service=chat)) as live:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as api:
            session_id = (await api.post("/api/sessions", json={"model": "scripted/echo"})).json()["id"]
            path = f"/api/sessions/{session_id}/messages"
            responses = await race(api, [(path, {"content": f"message {n}"}) for n in range(3)])
            assert sorted(r.status_code for r in responses) == [200, 409, 409]
            for refused in (r for r in responses if r.status_code == 409):
                error = refused.json()["error"]
                assert error["code"] == "turn_in_progress" and "one turn at a time" in error["message"]
            messages = await settled(api, session_id)
    await chat.store.close()
    assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "cancelled")]


@pytest.mark.parametrize(
    ("script", "body", "stored"),
    [
        (["partial ", None], {}, ("cancelled", "partial ")),  # the winner still streams while the others ask
        (["Recovered."], {"stream": False}, ("complete", "Recovered.")),  # the winner may be done already
    ],
)
async def test_three_concurrent_retries_of_one_answer_store_one_answer(
    settings: Settings, script: list[str | None], body: dict[str, Any], stored: tuple[str, str]
) -> None:
    provider = ScriptedProvider(script, first=["oops", ProviderError("Upstream hiccup.")])
    chat = make_service(settings, provider)
    with LiveServer(create_app(settings, service=chat)) as live:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as api:
            session_id = (await api.post("/api/sessions", json={"model": "scripted/echo"})).json()["id"]
            first = await api.post(f"/api/sessions/{session_id}/messages", json={"content": "hi", "stream": False})
            failed = first.json()["message"]
            assert failed["status"] == "failed"
            path = f"/api/sessions/{session_id}/messages/{failed['id']}/retry"
            responses = await race(api, [(path, body)] * 3)
            codes = sorted(r.status_code for r in responses)
            assert codes[0] == 200 and set(codes[1:]) <= {404, 409}, [r.text for r in responses]
            messages = await settled(api, session_id)
    await chat.store.close()
    assert [(m["role"], m["status"], m["content"]) for m in messages] == [
        ("user", "complete", "hi"),
        ("assistant", *stored),
    ]
    assert len(provider.requests) == 2  # the failed answer and one retry: the refused ones never reached the model
