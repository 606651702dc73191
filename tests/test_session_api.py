"""The session API over real HTTP: streamed turns, stored history, isolation, and bad input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import LOCAL_MODEL, LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings
from scripted import ScriptedProvider


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """Parse a server-sent event stream into (event name, JSON data) pairs."""
    name = "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])
            name = "message"


def new_session(api: httpx.Client, **body: Any) -> str:
    response = api.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    session_id: str = response.json()["id"]
    return session_id


def test_a_turn_streams_and_is_stored(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as api:
        session_id = new_session(api)
        body = {"content": "What is the capital of France?", "temperature": 0}
        with api.stream("POST", f"/api/sessions/{session_id}/messages", json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            received = list(events(response))
        names = [name for name, _ in received]
        assert names[0] == "start" and names[-1] == "end" and names.count("delta") > 3
        text = "".join(data["text"] for name, data in received if name == "delta")
        assert "Paris" in text
        end = received[-1][1]["message"]
        assert end["status"] == "complete" and end["content"] == text and end["model"] == LOCAL_MODEL

        stored = api.get(f"/api/sessions/{session_id}").json()
        assert stored["title"] == "What is the capital of France?"
        assert [(m["role"], m["content"]) for m in stored["messages"]] == [
            ("user", "What is the capital of France?"),
            ("assistant", text),
        ]
        assert stored["messages"][1]["params"] == {"temperature": 0.0}


def test_sessions_are_listed_renamed_and_deleted(scripted_server: LiveServer) -> None:
    with httpx.Client(base_url=scripted_server.url) as api:
        session_id = new_session(api, title="first")
        turn = api.post(
            f"/api/sessions/{session_id}/messages", json={"content": "Hi", "stream": False, "max_tokens": 8}
        )
        assert turn.status_code == 200 and turn.json()["message"]["status"] == "complete"
        assert [s["id"] for s in api.get("/api/sessions").json()] == [session_id]
        assert api.patch(f"/api/sessions/{session_id}", json={"title": "renamed"}).json()["title"] == "renamed"
        assert api.delete(f"/api/sessions/{session_id}").status_code == 204
        missing = api.get(f"/api/sessions/{session_id}")
        assert missing.status_code == 404
        assert "does not exist" in missing.json()["error"]["message"]
        assert api.get("/api/sessions").json() == []


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"content": "hi", "model": "nope/none"}, 404, "Available models"),
        ({"content": "hi", "temperature": 5}, 422, "temperature"),
        ({"content": ""}, 422, "content"),
        ({"content": "hi", "colour": "red"}, 422, "colour"),
    ],
)
def test_bad_turns_are_refused_and_store_nothing(
    scripted_server: LiveServer, body: object, status: int, needle: str
) -> None:
    with httpx.Client(base_url=scripted_server.url) as api:
        session_id = new_session(api)
        response = api.post(f"/api/sessions/{session_id}/messages", json=body)
        assert response.status_code == status
        assert needle in response.json()["error"]["message"]
        assert api.get(f"/api/sessions/{session_id}").json()["messages"] == []


def test_a_turn_in_an_unknown_session_is_a_404(scripted_server: LiveServer) -> None:
    response = httpx.post(f"{scripted_server.url}/api/sessions/nope/messages", json={"content": "hi"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "session_not_found"


def test_a_client_that_disconnects_leaves_a_cancelled_answer(settings: Settings) -> None:
    chat = make_service(settings, ScriptedProvider(["partial ", None]))
    with LiveServer(create_app(settings, service=chat)) as live, httpx.Client(base_url=live.url) as api:
        session_id = new_session(api, model="scripted/echo")
        with api.stream("POST", f"/api/sessions/{session_id}/messages", json={"content": "hi"}) as response:
            for name, _ in events(response):
                if name == "delta":
                    break
        deadline = time.monotonic() + 10
        while True:  # the server notices the disconnect on its own schedule: poll for the outcome
            messages = api.get(f"/api/sessions/{session_id}").json()["messages"]
            if messages[1]["status"] != "streaming" or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert messages[1]["status"] == "cancelled"
        assert messages[1]["content"] == "partial "


def test_each_user_sees_only_their_sessions(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path / "data", users={"token-a": "alice", "token-b": "bob"})
    chat = make_service(settings, ScriptedProvider(["hello"]))
    with (
        LiveServer(create_app(settings, service=chat)) as live,
        httpx.Client(base_url=live.url, headers={"Authorization": "Bearer token-a"}) as alice,
        httpx.Client(base_url=live.url, headers={"Authorization": "Bearer token-b"}) as bob,
    ):
        session_id = new_session(alice, model="scripted/echo")
        assert bob.get("/api/sessions").json() == []
        assert bob.get(f"/api/sessions/{session_id}").status_code == 404
        assert bob.delete(f"/api/sessions/{session_id}").status_code == 404
        assert alice.get(f"/api/sessions/{session_id}").status_code == 200
        anonymous = httpx.get(f"{live.url}/api/sessions")
        assert anonymous.status_code == 401
        assert "Authorization: Bearer" in anonymous.json()["error"]["message"]
        assert httpx.get(f"{live.url}/v1/models").status_code == 401
        assert httpx.get(f"{live.url}/healthz").status_code == 200
