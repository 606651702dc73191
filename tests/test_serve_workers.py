"""`serve --workers 2`: two real processes on one port and one SQLite file, each a whole server.

Which worker answers a connection is read from /proc (processes.py), so each behaviour is shown on each
worker, and a worker is killed by pid while its sibling streams. The upstream is `FakeOpenAI` holding its
answers until the test lets go (test_turn_safety.HeldUpstream): no timing guesses.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, closing
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path

import httpx
import pytest

from fake_openai import FakeOpenAI
from genai_chatbot.auth.api_keys import new_api_key
from genai_chatbot.auth.sqlite_users import SQLiteUserStore
from genai_chatbot.auth.users import UserAccount
from processes import serving_worker, worker_pids
from test_turn_safety import HeldUpstream, ServerProcess, held_upstream, open_turns, stored_rows

# Real server processes, several stores or CLI subprocesses: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

WORKERS = ("--workers", "2")


@pytest.fixture
def upstream() -> Iterator[tuple[FakeOpenAI, HeldUpstream]]:
    with held_upstream() as served:
        yield served


def write_config(tmp_path: Path, upstream: FakeOpenAI, extra: str = "") -> Path:
    path = tmp_path / "genai-chatbot.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\ndefault_model = "upstream/gpt-4o"\n{extra}'
        "[local]\nenabled = false\n"
        f'[[openai_compatible]]\nname = "upstream"\nbase_url = "{upstream.url}/v1"\nmodels = ["gpt-4o"]\n'
    )
    return path


def connection(server: ServerProcess) -> HTTPConnection:
    return HTTPConnection("127.0.0.1", server.port, timeout=30)


def ask(conn: HTTPConnection, method: str, path: str, headers: dict[str, str], body: object = None) -> HTTPResponse:
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"content-type": "application/json", **headers})
    return conn.getresponse()


def on_worker(server: ServerProcess, conn: HTTPConnection) -> int | None:
    assert conn.sock is not None
    return serving_worker(conn.sock, server.port, worker_pids(server.process.pid))


def test_each_of_two_workers_checks_the_host_and_the_api_key(
    tmp_path: Path, upstream: tuple[FakeOpenAI, HeldUpstream]
) -> None:
    config = write_config(tmp_path, upstream[0], 'auth = "api-keys"\n')

    async def add_key() -> str:
        users = SQLiteUserStore(tmp_path / "data" / "chat.sqlite3")
        await users.add_user(UserAccount("ann"))
        key, record = new_api_key("ann")
        await users.add_key(record)
        await users.close()
        return key

    key = asyncio.run(add_key())
    server = ServerProcess(config, tmp_path / "server.log", *WORKERS)
    checked: set[int] = set()
    try:
        for _ in range(300):  # the kernel picks the worker of each connection: open them until both answered
            conn = connection(server)
            try:
                answer = ask(conn, "GET", "/api/sessions", {"authorization": f"Bearer {key}"})
                assert answer.status == 200, answer.read()
                answer.read()
                pid = on_worker(server, conn)
                if pid is None or pid in checked:
                    continue
                refused = ask(conn, "GET", "/api/sessions", {})
                assert refused.status == 401, refused.read()
                refused.read()
                rebound = ask(conn, "GET", "/api/sessions", {"authorization": f"Bearer {key}", "host": "evil.example"})
                assert rebound.status == 400, rebound.read()
                rebound.read()
                assert on_worker(server, conn) == pid  # the same worker answered all three
                checked.add(pid)
            finally:
                conn.close()
            if len(checked) == 2:
                break
        assert len(checked) == 2, f"only workers {checked} answered"
    finally:
        server.stop()


def read_event(answer: HTTPResponse) -> tuple[str, dict[str, object]]:
    name = "message"
    while line := answer.readline().decode():
        if line.startswith("event: "):
            name = line[7:].strip()
        elif line.startswith("data: "):
            return name, json.loads(line[6:])
    raise AssertionError("the stream ended")


def statuses_after_recovery(database: Path, restart: Callable[[], None], live_session: str) -> dict[str, str]:
    """Plant an answer `streaming` for a store that is gone, `restart` a worker, and once its recovery marked
    that answer, the status of both: the planted one, and the answer of `live_session` (being streamed).
    """
    with closing(sqlite3.connect(database)) as db:
        with db:
            db.execute("INSERT INTO sessions VALUES ('orphan', 'local', 't', 'upstream/gpt-4o', NULL, 1, 1)")
            db.execute(
                "INSERT INTO messages (id, session_id, role, content, status, params, created_at, owner) "
                "VALUES ('orphaned', 'orphan', 'assistant', '', 'streaming', '{}', 1, 'a-store-that-is-gone')"
            )
        restart()  # uvicorn's supervisor starts a new worker, which opens the store and recovers
        deadline = time.monotonic() + 30
        while (db.execute("SELECT status FROM messages WHERE id = 'orphaned'").fetchone()) == ("streaming",):
            assert time.monotonic() < deadline, "no worker opened the store again"
            time.sleep(0.05)
        orphan = db.execute("SELECT status FROM messages WHERE id = 'orphaned'").fetchone()[0]
        live = db.execute("SELECT status FROM messages WHERE session_id = ? AND role = 'assistant'", (live_session,))
        return {"orphaned": orphan, "live": live.fetchone()[0]}


def test_a_worker_that_starts_again_leaves_its_siblings_turn_streaming_and_a_second_send_gets_409(
    tmp_path: Path, upstream: tuple[FakeOpenAI, HeldUpstream]
) -> None:
    database = tmp_path / "data" / "chat.sqlite3"
    server = ServerProcess(write_config(tmp_path, upstream[0]), tmp_path / "server.log", *WORKERS)
    streaming = connection(server)
    try:
        session_id = json.loads(ask(streaming, "POST", "/api/sessions", {}, {}).read())["id"]
        answer = ask(streaming, "POST", f"/api/sessions/{session_id}/messages", {}, {"content": "hello"})
        assert read_event(answer)[0] == "start" and read_event(answer) == ("delta", {"text": "Partial "})
        holder = on_worker(server, streaming)
        assert holder is not None

        # While it streams, a second turn of the session is refused by the other worker too.
        sibling = None
        for _ in range(300):
            conn = connection(server)
            try:
                second = ask(
                    conn, "POST", f"/api/sessions/{session_id}/messages", {}, {"content": "again", "stream": False}
                )
                assert (second.status, json.loads(second.read())["error"]["code"]) == (409, "turn_in_progress")
                pid = on_worker(server, conn)
            finally:
                conn.close()
            if pid is not None and pid != holder:
                sibling = pid
                break
        assert sibling is not None, "no connection reached the second worker"

        # A turn left `streaming` by a store that is gone is the control that shows recovery ran.
        statuses = statuses_after_recovery(database, lambda: os.kill(sibling, signal.SIGKILL), session_id)
        assert statuses == {"orphaned": "interrupted", "live": "streaming"}
        assert sibling not in worker_pids(server.process.pid)

        upstream[1].released.set()
        while (event := read_event(answer))[0] != "end":
            pass
        assert event[1]["message"]["status"] == "complete"  # type: ignore[index]
    finally:
        streaming.close()
        server.stop()
    answers = [(status, content) for sid, role, status, content, _ in stored_rows(database) if sid == session_id]
    assert answers == [("complete", "hello"), ("complete", "Partial answer and the rest.")]


async def test_sigterm_ends_the_turns_of_both_workers_as_cancelled_with_their_text(
    tmp_path: Path, upstream: tuple[FakeOpenAI, HeldUpstream]
) -> None:
    server = ServerProcess(write_config(tmp_path, upstream[0]), tmp_path / "server.log", *WORKERS)
    try:
        async with AsyncExitStack() as stack, httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            turns = await open_turns(api, stack, 8)
            server.process.send_signal(signal.SIGTERM)
            for turn in turns:
                name, end = [item async for item in turn.events][-1]
                assert name == "end" and end["message"]["status"] == "cancelled"
                assert end["message"]["content"] == "Partial answer"
        assert server.process.wait(30) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    answers = [
        (status, content)
        for _, role, status, content, _ in stored_rows(tmp_path / "data" / "chat.sqlite3")
        if role == "assistant"
    ]
    assert answers == [("cancelled", "Partial answer")] * 8


def test_metrics_of_either_worker_count_the_requests_both_served(
    tmp_path: Path, upstream: tuple[FakeOpenAI, HeldUpstream]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    server = ServerProcess(write_config(tmp_path, upstream[0]), tmp_path / "server.log", *WORKERS)
    served: set[int | None] = set()
    asked = 0
    try:
        # A new connection each: the kernel spreads them over the workers, unevenly on a busy machine, so
        # ask until both served some (at least 40 requests, at most 400).
        while asked < 40 or (len(served - {None}) < 2 and asked < 400):
            asked += 1
            conn = connection(server)
            try:
                answer = ask(conn, "GET", "/api/sessions", {})
                assert answer.status == 200, answer.read()
                answer.read()
                served.add(on_worker(server, conn))
            finally:
                conn.close()
        conn = connection(server)
        try:
            scrape = ask(conn, "GET", "/metrics", {})
            text = scrape.read().decode()
        finally:
            conn.close()
    finally:
        server.stop()
    counted = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "genai_chatbot_http_requests_total" and sample.labels.get("route") == "/api/sessions"
    )
    assert len(served - {None}) == 2, f"both workers should have served some of the {asked} requests"
    assert counted == asked
