"""Streamed `/v1` requests open the model while their budgets and rate limits are checked (chat/early_admission.py).

What a user must be able to rely on: nothing of an answer is given before its admission, a refusal stops
the model's request at once, a model their groups do not allow never receives their prompt, an over-limit
caller's next requests never reach the model, and usage is counted as when the admission came first.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fake_openai import FakeOpenAI, Recorded, Reply, chunk, default_reply, sse
from genai_chatbot.auth.users import UserAccount
from governed import MODEL, TOKENS, fresh_minute, governed_settings

ALICE = UserAccount("alice", groups=("interns",))
STREAM = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def chat_requests(upstream: FakeOpenAI) -> list[Recorded]:
    return [r for r in upstream.requests if r.path.endswith("/chat/completions")]


def one_server(tmp_path: Path, upstream: FakeOpenAI, deploy: Any, interns: dict[str, Any]) -> Any:
    """One governed server on SQLite, with alice in `interns` under the group policy `interns`."""
    settings = governed_settings(tmp_path, f"sqlite:///{tmp_path}/chat.sqlite3", upstream, groups={"interns": interns})
    return deploy(settings, ALICE, servers=1)


def test_a_refused_request_stops_the_models_request_and_the_callers_next_ones_never_reach_it(
    tmp_path: Path, upstream: FakeOpenAI, deploy: Any
) -> None:
    fresh_minute(margin=2.0)  # a few requests, in well under two seconds
    servers = one_server(tmp_path, upstream, deploy, {"requests_per_minute": 1})
    release = threading.Event()

    def slow_after_the_first(request: Recorded) -> Reply:
        if not request.path.endswith("/chat/completions") or len(chat_requests(upstream)) == 1:
            return default_reply(request)

        def events() -> Iterator[str]:
            release.wait(30)  # the model is still thinking when the refusal comes
            yield sse(chunk("late"))

        return Reply(events=events())

    upstream.answer = slow_after_the_first
    alice = servers.client("alice")
    try:
        first = alice.post("/v1/chat/completions", json=STREAM)
        assert first.status_code == 200 and "Hello" in first.text
        started = time.monotonic()
        refused = alice.post("/v1/chat/completions", json=STREAM)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert time.monotonic() - started < 10  # answered without waiting for the model's first token
        assert "late" not in refused.text
        # Opened side by side with its admission: the refusal may come before the request was even sent.
        asked = len(chat_requests(upstream))
        assert asked in (1, 2)
        again = alice.post("/v1/chat/completions", json=STREAM)
        assert again.status_code == 429
        assert len(chat_requests(upstream)) == asked  # held back: refused before the model is asked
    finally:
        release.set()


def test_a_model_the_callers_groups_do_not_allow_never_receives_the_prompt(
    tmp_path: Path, upstream: FakeOpenAI, deploy: Any
) -> None:
    servers = one_server(tmp_path, upstream, deploy, {"models": ["local/*"], "requests_per_minute": 100})
    response = servers.client("alice").post("/v1/chat/completions", json=STREAM)
    assert response.status_code == 403 and response.json()["error"]["code"] == "model_not_allowed"
    assert chat_requests(upstream) == []


def test_usage_of_a_stream_opened_early_is_recorded_as_when_admitted_first(
    tmp_path: Path, upstream: FakeOpenAI, deploy: Any
) -> None:
    servers = one_server(tmp_path, upstream, deploy, {"budget_tokens": 10_000})
    alice = servers.client("alice")
    answer = alice.post("/v1/chat/completions", json=STREAM)
    assert answer.status_code == 200 and "Hello" in answer.text

    def failing(request: Recorded) -> Reply:
        if request.path.endswith("/chat/completions"):
            return Reply(status=503, json={"error": {"message": "overloaded", "type": "server_error"}})
        return default_reply(request)

    upstream.answer = failing
    down = alice.post("/v1/chat/completions", json=STREAM)
    assert down.status_code == 502 and "overloaded" in down.json()["error"]["message"]  # an HTTP status, not a 200
    rows = alice.get("/api/usage", params={"by": "model"}).json()["rows"]
    assert [(r["key"], r["requests"], r["failed"]) for r in rows] == [(MODEL, 2, 1)]
    assert sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows) == TOKENS


def test_streams_opened_early_count_every_request_against_the_rate_limit(
    tmp_path: Path, upstream: FakeOpenAI, deploy: Any
) -> None:
    fresh_minute(margin=2.0)  # a few requests, in well under two seconds
    servers = one_server(tmp_path, upstream, deploy, {"requests_per_minute": 5})
    alice = servers.client("alice")
    codes = [alice.post("/v1/chat/completions", json=STREAM).status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2
    assert len(chat_requests(upstream)) in (5, 6)  # the first refused one may have reached it, not the second


def test_the_model_is_asked_while_the_admission_waits_for_the_database(
    tmp_path: Path, upstream: FakeOpenAI, deploy: Any
) -> None:
    database = tmp_path / "chat.sqlite3"
    settings = governed_settings(
        tmp_path, f"sqlite:///{database}", upstream, groups={"interns": {"requests_per_minute": 100}}
    )
    servers = deploy(settings, ALICE, servers=1)
    alice = servers.client("alice")
    assert alice.post("/v1/chat/completions", json=STREAM).status_code == 200  # the key is verified, cached
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process writing: the admission waits for it
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(alice.post, "/v1/chat/completions", json=STREAM)
            deadline = time.monotonic() + 10
            while len(chat_requests(upstream)) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(chat_requests(upstream)) == 2  # the model was asked while the admission waited
            assert not answer.done()  # and nothing is answered before the admission
            writer.execute("ROLLBACK")
            response = answer.result(timeout=30)
    finally:
        writer.close()
    assert response.status_code == 200 and "Hello" in response.text
    rows = alice.get("/api/usage", params={"by": "model"}).json()["rows"]
    assert [(r["key"], r["requests"]) for r in rows] == [(MODEL, 2)]


def test_concurrent_streams_opened_early_never_take_more_requests_than_the_limit(
    tmp_path: Path, upstream: FakeOpenAI, deploy: Any
) -> None:
    fresh_minute(margin=5.0)
    servers = one_server(tmp_path, upstream, deploy, {"requests_per_minute": 5})
    alice = servers.client("alice")
    with ThreadPoolExecutor(3) as pool:  # fewer than 4 in flight: every one of them opens the model early
        codes = list(pool.map(lambda _: alice.post("/v1/chat/completions", json=STREAM).status_code, range(9)))
    assert sorted(codes) == [200] * 5 + [429] * 4
    rows = alice.get("/api/usage", params={"by": "model"}).json()["rows"]
    assert [(r["key"], r["requests"], r["cancelled"]) for r in rows] == [(MODEL, 5, 0)]
