"""Two `genai-chatbot serve` processes on one set of DynamoDB tables (moto) behave as one server.

Each replica is a real process on a port of its own, with the DynamoDB store (`dynamodb_url`) and a fast
OpenAI-compatible upstream (fake_openai.py) that answers `echo: <the last user message>`, so every stored
answer says which question it belongs to. A session goes on from one replica to the other; sixteen turns
at once, split across both, keep their order and lose nothing; on one contested session, the replicas
together let one turn at a time through.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dynamodb import free_port, fresh_tables, point_boto3_at
from fake_openai import FakeOpenAI, Recorded, Reply, chunk, sse

# Real server processes, several stores or CLI subprocesses: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow


def _echo(request: Recorded) -> Reply:
    if request.path.endswith("/models"):
        return Reply(json={"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "x"}]})
    text = f"echo: {request.body['messages'][-1]['content']}"
    if request.body.get("stream"):
        return Reply(events=[sse(chunk(text)), sse(chunk(finish="stop")), "data: [DONE]\n\n"])
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return Reply(json={"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [choice]})


class Replica:
    """`genai-chatbot serve` in a process of its own, on the settings file `config`."""

    def __init__(self, config: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = config.with_name(f"serve-{self.port}.log")
        with self.log.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "genai_chatbot", "serve", "--config", str(config), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),  # the AWS variables of dynamodb_env: moto, dummy credentials, a region
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:  # poll the condition itself, bounded
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_CONFIG = """
data_dir = "{data}"
database_url = "{database_url}"
default_model = "fake/m"
default_system_prompt = ""

[local]
enabled = false

[[openai_compatible]]
name = "fake"
base_url = "{upstream}/v1"
models = ["m"]
"""


@pytest.fixture(scope="module")
def replicas(dynamodb_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas on tables of their own, shared by this module's tests (each uses sessions of its own)."""
    tmp_path = tmp_path_factory.mktemp("replicas")
    with pytest.MonkeyPatch.context() as env, FakeOpenAI() as upstream:
        upstream.answer = _echo
        point_boto3_at(dynamodb_endpoint, env)
        with fresh_tables() as database_url:
            config = tmp_path / "genai-chatbot.toml"
            config.write_text(_CONFIG.format(data=tmp_path / "data", database_url=database_url, upstream=upstream.url))
            started = (Replica(config), Replica(config))
            try:
                for replica in started:
                    replica.wait_ready()
                yield started
            finally:
                for replica in started:
                    replica.stop()


async def _turn(api: httpx.AsyncClient, server: Replica, session_id: str, content: str) -> httpx.Response:
    return await api.post(
        f"{server.url}/api/sessions/{session_id}/messages", json={"content": content, "stream": False}
    )


def _pairs(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(question, answer) of each turn; every answer complete and echoing the question just before it."""
    assert len(messages) % 2 == 0
    pairs = []
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert (question["role"], question["status"]) == ("user", "complete")
        assert (answer["role"], answer["status"], answer["content"]) == (
            "assistant",
            "complete",
            f"echo: {question['content']}",
        )
        pairs.append((question["content"], answer["content"]))
    return pairs


async def test_a_session_started_on_one_replica_goes_on_on_the_other(replicas: tuple[Replica, Replica]) -> None:
    one, other = replicas
    async with httpx.AsyncClient(timeout=30) as api:
        session_id = (await api.post(f"{one.url}/api/sessions", json={})).json()["id"]
        assert (await _turn(api, one, session_id, "first")).status_code == 200
        assert (await _turn(api, other, session_id, "second")).status_code == 200
        for server in replicas:
            messages = (await api.get(f"{server.url}/api/sessions/{session_id}")).json()["messages"]
            assert [q for q, _ in _pairs(messages)] == ["first", "second"]
            assert session_id in [s["id"] for s in (await api.get(f"{server.url}/api/sessions")).json()]


async def test_sixteen_concurrent_turns_split_across_replicas_keep_order_and_lose_nothing(
    replicas: tuple[Replica, Replica],
) -> None:
    async with httpx.AsyncClient(timeout=60) as api:
        created = [(await api.post(f"{replicas[n % 2].url}/api/sessions", json={})).json()["id"] for n in range(16)]
        for round_ in range(3):  # each round: sixteen turns at once, each session on the other replica than before
            sent = await asyncio.gather(
                *(_turn(api, replicas[(n + round_) % 2], sid, f"{n}.{round_}") for n, sid in enumerate(created))
            )
            assert [r.status_code for r in sent] == [200] * 16
        for n, session_id in enumerate(created):
            messages = (await api.get(f"{replicas[n % 2].url}/api/sessions/{session_id}")).json()["messages"]
            assert [q for q, _ in _pairs(messages)] == [f"{n}.0", f"{n}.1", f"{n}.2"]
        for server in replicas:
            listed = [s["id"] for s in (await api.get(f"{server.url}/api/sessions")).json()]
            assert set(created) <= set(listed)


async def test_on_one_contested_session_the_replicas_take_one_turn_at_a_time(
    replicas: tuple[Replica, Replica],
) -> None:
    async with httpx.AsyncClient(timeout=60) as api:
        session_id = (await api.post(f"{replicas[0].url}/api/sessions", json={})).json()["id"]
        sent = await asyncio.gather(*(_turn(api, replicas[n % 2], session_id, f"q{n}") for n in range(16)))
        assert {r.status_code for r in sent} <= {200, 409} and 200 in {r.status_code for r in sent}
        accepted = [r.json()["user_message"]["content"] for r in sent if r.status_code == 200]
        messages = (await api.get(f"{replicas[1].url}/api/sessions/{session_id}")).json()["messages"]
        stored = [q for q, _ in _pairs(messages)]  # each accepted turn once, whole, in the order they ran
        assert sorted(stored) == sorted(accepted)
