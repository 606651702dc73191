"""Feedback on answers and retry of failed answers, over real HTTP; and the feedback migration."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.chat.records import Feedback, Session, StoredMessage
from genai_chatbot.chat.sqlite_store import MIGRATIONS, SQLiteHistoryStore
from genai_chatbot.config import Settings
from genai_chatbot.models.errors import ProviderError
from scripted import ScriptedProvider
from test_session_api import events, new_session


@pytest.fixture
def flaky(settings: Settings) -> Iterator[tuple[httpx.Client, ScriptedProvider]]:
    """A server whose only model fails its first answer after one chunk and answers every later call."""
    provider = ScriptedProvider(["Recovered ", "answer."], first=["partial ", ProviderError("Upstream hiccup.")])
    chat = make_service(settings, provider)
    with LiveServer(create_app(settings, service=chat)) as live, httpx.Client(base_url=live.url) as api:
        yield api, provider


def turn(api: httpx.Client, path: str, body: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    with api.stream("POST", path, json=body) as response:
        assert response.status_code == 200, response.read()
        return list(events(response))


def test_feedback_is_stored_with_the_answer_replaced_and_removed(flaky: tuple[httpx.Client, ScriptedProvider]) -> None:
    api, _ = flaky
    session_id = new_session(api, model="scripted/echo")
    api.post(f"/api/sessions/{session_id}/messages", json={"content": "hi", "stream": False})
    answer = api.post(f"/api/sessions/{session_id}/messages", json={"content": "again", "stream": False}).json()
    answer_id = answer["message"]["id"]
    path = f"/api/sessions/{session_id}/messages/{answer_id}/feedback"

    stored = api.put(path, json={"rating": "up", "comment": "  clear and short "})
    assert stored.status_code == 200
    assert stored.json()["feedback"]["rating"] == "up" and stored.json()["feedback"]["comment"] == "clear and short"
    api.put(path, json={"rating": "down"})
    messages = api.get(f"/api/sessions/{session_id}").json()["messages"]
    assert messages[-1]["feedback"]["rating"] == "down" and messages[-1]["feedback"]["comment"] is None
    assert all(m["feedback"] is None for m in messages[:-1])

    assert api.delete(path).json()["feedback"] is None
    assert api.get(f"/api/sessions/{session_id}").json()["messages"][-1]["feedback"] is None


@pytest.mark.parametrize(
    ("target", "body", "status", "needle"),
    [
        ("answer", {"rating": "meh"}, 422, "rating"),
        ("answer", {"rating": "up", "stars": 5}, 422, "stars"),
        ("user", {"rating": "up"}, 404, "has no answer"),
        ("unknown", {"rating": "up"}, 404, "has no answer"),
    ],
)
def test_bad_feedback_is_refused(
    flaky: tuple[httpx.Client, ScriptedProvider], target: str, body: dict[str, object], status: int, needle: str
) -> None:
    api, _ = flaky
    session_id = new_session(api, model="scripted/echo")
    turn_body = api.post(f"/api/sessions/{session_id}/messages", json={"content": "hi", "stream": False}).json()
    message_id = {"answer": turn_body["message"]["id"], "user": turn_body["user_message"]["id"], "unknown": "nope"}
    response = api.put(f"/api/sessions/{session_id}/messages/{message_id[target]}/feedback", json=body)
    assert response.status_code == status
    assert needle in response.json()["error"]["message"]


def test_a_failed_answer_is_retried_in_place_without_repeating_the_question(
    flaky: tuple[httpx.Client, ScriptedProvider],
) -> None:
    api, provider = flaky
    session_id = new_session(api, model="scripted/echo")
    first = turn(api, f"/api/sessions/{session_id}/messages", {"content": "Tell me"})
    failed = first[-1][1]["message"]
    assert isinstance(failed, dict) and failed["status"] == "failed" and "Upstream hiccup." in failed["error"]

    retried = turn(api, f"/api/sessions/{session_id}/messages/{failed['id']}/retry", {"temperature": 0.5})
    names = [name for name, _ in retried]
    assert names[0] == "start" and names[-1] == "end" and "delta" in names
    assert retried[0][1]["user_message"] == first[0][1]["user_message"]
    answer = retried[-1][1]["message"]
    assert isinstance(answer, dict)
    assert answer["status"] == "complete" and answer["content"] == "Recovered answer." and answer["id"] != failed["id"]
    assert answer["params"] == {"temperature": 0.5}

    stored = api.get(f"/api/sessions/{session_id}").json()["messages"]
    assert [(m["role"], m["status"], m["content"]) for m in stored] == [
        ("user", "complete", "Tell me"),
        ("assistant", "complete", "Recovered answer."),
    ]
    # The retry was generated from the history before the failed answer: the question once, nothing else.
    assert [(m.role, m.content) for m in provider.requests[-1].messages] == [("user", "Tell me")]

    again = api.post(f"/api/sessions/{session_id}/messages/{answer['id']}/retry", json={})
    assert (
        again.status_code == 400
        and "only a failed, cancelled or interrupted answer" in again.json()["error"]["message"]
    )


def test_only_the_last_answer_can_be_retried(flaky: tuple[httpx.Client, ScriptedProvider]) -> None:
    api, _ = flaky
    session_id = new_session(api, model="scripted/echo")
    failed = api.post(f"/api/sessions/{session_id}/messages", json={"content": "one", "stream": False}).json()
    api.post(f"/api/sessions/{session_id}/messages", json={"content": "two", "stream": False})
    response = api.post(f"/api/sessions/{session_id}/messages/{failed['message']['id']}/retry", json={})
    assert response.status_code == 400
    assert "not the session's last answer" in response.json()["error"]["message"]
    missing = api.post(f"/api/sessions/{session_id}/messages/nope/retry", json={})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "message_not_found"


async def test_the_feedback_migration_upgrades_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    MIGRATIONS[0](db)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    db.execute("INSERT INTO _migrations VALUES (?, 0)", (MIGRATIONS[0].__name__,))
    db.commit()
    db.close()

    store = SQLiteHistoryStore(path)
    try:
        await store.create_session(Session(id="s", user_id="u", title="t", model_id="m/x"))
        await store.add_message(StoredMessage(id="a", session_id="s", role="assistant", content="hi"))
        assert await store.set_feedback("s", "a", Feedback("up", "nice"))
        assert not await store.set_feedback("other", "a", Feedback("down"))
        [message] = await store.list_messages("s")
        assert message.feedback is not None and (message.feedback.rating, message.feedback.comment) == ("up", "nice")
    finally:
        await store.close()
