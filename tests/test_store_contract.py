"""One behavioural suite for every store `database_url` can name (SQLite, PostgreSQL): the `HistoryStore`
and `UserStore` contracts, as the service and the API rely on them. Each test runs once per store kind,
against a real database (PostgreSQL: a real server, see postgres.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from genai_chatbot.auth.api_keys import ApiKeyAuthenticator, new_api_key
from genai_chatbot.auth.principal import Principal
from genai_chatbot.auth.users import DuplicateUserError, UnknownKeyError, UnknownUserError, UserAccount, UserStore
from genai_chatbot.chat.records import INTERRUPTED_ERROR, Feedback, Session, StoredMessage
from genai_chatbot.chat.service import ChatService, TurnEnded, TurnInProgressError
from genai_chatbot.chat.store import HistoryStore, MessageGoneError, TurnStart
from genai_chatbot.models.registry import ModelRegistry
from scripted import ScriptedProvider
from stores import Stores


def session(session_id: str = "s", user_id: str = "u", updated_at: float = 1.0) -> Session:
    return Session(
        id=session_id, user_id=user_id, title="t", model_id="scripted/echo", created_at=1.0, updated_at=updated_at
    )


def message(message_id: str, role: str = "assistant", status: str = "complete", session_id: str = "s") -> StoredMessage:
    return StoredMessage(id=message_id, session_id=session_id, role=role, content=message_id, status=status)  # type: ignore[arg-type]


async def start(store: HistoryStore, n: int, replaces: str | None = None) -> TurnStart:
    user = None if replaces else message(f"q{n}", "user")
    return await store.begin_turn(session(), user, message(f"a{n}", status="streaming"), replaces)


def service(store: HistoryStore, provider: ScriptedProvider) -> ChatService:
    return ChatService(
        ModelRegistry([provider]),
        store,
        default_model="scripted/echo",
        default_system_prompt="",
        default_max_tokens=64,
    )


# Sessions and isolation ----------------------------------------------------------------------------


async def test_sessions_are_listed_newest_first_and_only_to_their_user(history_store: HistoryStore) -> None:
    await history_store.create_session(session("old", updated_at=1.0))
    await history_store.create_session(session("new", updated_at=2.0))
    await history_store.create_session(session("theirs", user_id="other", updated_at=3.0))
    assert [s.id for s in await history_store.list_sessions("u")] == ["new", "old"]
    assert [s.id for s in await history_store.list_sessions("u", limit=1)] == ["new"]
    assert await history_store.get_session("u", "theirs") is None
    assert await history_store.get_session("other", "theirs") == session("theirs", user_id="other", updated_at=3.0)
    assert not await history_store.delete_session("u", "theirs")
    assert await history_store.get_session("other", "theirs") is not None


async def test_a_session_update_and_a_delete_take_its_messages_with_it(history_store: HistoryStore) -> None:
    await history_store.create_session(session())
    changed = session(updated_at=5.0)
    changed.title, changed.system_prompt = "renamed", "be brief"
    await history_store.update_session(changed)
    assert await history_store.get_session("u", "s") == changed
    await history_store.add_message(message("m1", "user"))
    assert await history_store.delete_session("u", "s")
    assert await history_store.get_session("u", "s") is None
    assert await history_store.list_messages("s") == []


async def test_messages_keep_their_order_fields_and_move_the_session_up(history_store: HistoryStore) -> None:
    await history_store.create_session(session())
    first = StoredMessage(id="m1", session_id="s", role="user", content="héllo ✓", created_at=10.0)
    second = StoredMessage(
        id="m2",
        session_id="s",
        role="assistant",
        content="hi",
        model_id="scripted/echo",
        params={"temperature": 0.2, "stop": ["x"]},
        prompt_tokens=3,
        completion_tokens=1,
        latency_ms=12.5,
        created_at=11.0,
    )
    await history_store.add_message(first)
    await history_store.add_message(second)
    assert await history_store.list_messages("s") == [first, second]
    [listed] = await history_store.list_sessions("u")
    assert listed.updated_at == 11.0


async def test_feedback_is_set_replaced_and_removed(history_store: HistoryStore) -> None:
    await history_store.create_session(session())
    await history_store.add_message(message("a"))
    verdict = Feedback("down", "wrong year", created_at=3.0)
    assert await history_store.set_feedback("s", "a", verdict)
    assert (await history_store.list_messages("s"))[0].feedback == verdict
    assert await history_store.set_feedback("s", "a", None)
    assert (await history_store.list_messages("s"))[0].feedback is None
    assert not await history_store.set_feedback("other-session", "a", verdict)


async def test_replacing_a_message_that_is_gone_stores_nothing(history_store: HistoryStore) -> None:
    await history_store.create_session(session())
    await history_store.add_message(message("old"))
    await history_store.replace_message("old", message("new"))
    assert [m.id for m in await history_store.list_messages("s")] == ["new"]
    with pytest.raises(MessageGoneError, match="no longer exists"):
        await history_store.replace_message("old", message("newer"))
    assert [m.id for m in await history_store.list_messages("s")] == ["new"]


# Turns ---------------------------------------------------------------------------------------------


async def test_a_turn_is_stored_streaming_then_finished_once(history_store: HistoryStore) -> None:
    await history_store.create_session(session())
    assert await start(history_store, 1) is TurnStart.STARTED
    stored = await history_store.list_messages("s")
    assert [(m.id, m.status) for m in stored] == [("q1", "complete"), ("a1", "streaming")]
    assert await history_store.finish_message(message("a1", status="complete"))
    assert not await history_store.finish_message(message("a1", status="failed"))  # written once
    assert [m.status for m in await history_store.list_messages("s")] == ["complete", "complete"]
    assert await start(history_store, 2) is TurnStart.STARTED


async def test_a_turn_start_refused_stores_nothing(history_store: HistoryStore) -> None:
    assert await start(history_store, 1) is TurnStart.NO_SESSION
    await history_store.create_session(session())
    assert await start(history_store, 1) is TurnStart.STARTED
    assert await start(history_store, 2) is TurnStart.BUSY
    assert [m.id for m in await history_store.list_messages("s")] == ["q1", "a1"]


async def test_only_the_last_failed_answer_is_retried_in_place(history_store: HistoryStore) -> None:
    await history_store.create_session(session())
    await start(history_store, 1)
    await history_store.finish_message(message("a1", status="failed"))
    assert await start(history_store, 9, replaces="missing") is TurnStart.NO_MESSAGE
    assert await start(history_store, 9, replaces="q1") is TurnStart.NOT_RETRYABLE
    assert await start(history_store, 2, replaces="a1") is TurnStart.STARTED
    stored = await history_store.list_messages("s")
    assert [(m.id, m.status) for m in stored] == [("q1", "complete"), ("a2", "streaming")]


async def test_of_two_concurrent_turn_starts_on_one_session_exactly_one_wins(stores: Stores) -> None:
    first, second = stores.history(), stores.history()  # as two replicas would
    await first.create_session(session())
    await second.list_sessions("u")  # both open before the race
    outcomes = await asyncio.gather(start(first, 1), start(second, 2))
    assert sorted(o.value for o in outcomes) == ["busy", "started"]
    stored = await first.list_messages("s")
    assert len(stored) == 2 and [m.status for m in stored] == ["complete", "streaming"]


async def test_a_second_turn_while_one_streams_is_turn_in_progress(history_store: HistoryStore) -> None:
    chat = service(history_store, ScriptedProvider(["partial ", None]))
    created = await chat.create_session("u")
    turn = await chat.start_turn("u", created.id, "first")
    with pytest.raises(TurnInProgressError, match="one turn at a time"):
        await chat.start_turn("u", created.id, "second")
    await turn.aclose()
    _, stored = await chat.session_messages("u", created.id)
    assert [(m.content, m.status) for m in stored] == [("first", "complete"), ("", "cancelled")]


async def test_a_whole_turn_through_the_service_is_stored_complete(history_store: HistoryStore) -> None:
    chat = service(history_store, ScriptedProvider(["Hel", "lo"]))
    created = await chat.create_session("u")
    events = [event async for event in await chat.start_turn("u", created.id, "hi")]
    assert isinstance(events[-1], TurnEnded) and events[-1].message.content == "Hello"
    _, stored = await chat.session_messages("u", created.id)
    assert [(m.role, m.content, m.status) for m in stored] == [
        ("user", "hi", "complete"),
        ("assistant", "Hello", "complete"),
    ]


async def test_answers_of_a_closed_store_become_interrupted_when_a_store_opens(stores: Stores) -> None:
    crashed = stores.history()
    await crashed.create_session(session())
    await start(crashed, 1)
    await stores.close(crashed)  # ends without finishing the answer

    reopened = stores.history()
    answer = (await reopened.list_messages("s"))[-1]
    assert (answer.status, answer.content, answer.error) == ("interrupted", "", INTERRUPTED_ERROR)
    assert await start(reopened, 2, replaces="a1") is TurnStart.STARTED  # retryable, no longer busy


async def test_opening_a_store_leaves_the_answers_of_a_running_store_alone(stores: Stores) -> None:
    running = stores.history()
    await running.create_session(session())
    await start(running, 1)
    other = stores.history()  # a second replica, or a CLI command
    assert [m.status for m in await other.list_messages("s")] == ["complete", "streaming"]
    assert await running.finish_message(message("a1"))
    assert [m.status for m in await other.list_messages("s")] == ["complete", "complete"]


# Users and keys ------------------------------------------------------------------------------------


async def test_users_are_added_listed_and_updated(user_store: UserStore) -> None:
    await user_store.add_user(UserAccount("bob", created_at=2.0))
    await user_store.add_user(UserAccount("alice", role="manager", groups=("team-a",), created_at=1.0))
    with pytest.raises(DuplicateUserError):
        await user_store.add_user(UserAccount("bob"))
    assert [u.name for u in await user_store.list_users()] == ["alice", "bob"]
    updated = await user_store.update_user("bob", role="admin", groups=("ops", "x"), disabled=True)
    assert updated == UserAccount("bob", role="admin", groups=("ops", "x"), disabled=True, created_at=2.0)
    assert await user_store.get_user("bob") == updated
    assert await user_store.get_user("nobody") is None
    with pytest.raises(UnknownUserError):
        await user_store.update_user("nobody", disabled=True)


async def test_keys_sign_in_are_listed_touched_and_revoked_once(user_store: UserStore) -> None:
    await user_store.add_user(UserAccount("alice", role="manager", groups=("team-a",)))
    key, record = new_api_key("alice", now=1_000_000.0)
    await user_store.add_key(record)
    with pytest.raises(UnknownUserError):
        await user_store.add_key(new_api_key("nobody")[1])
    authenticator = ApiKeyAuthenticator(user_store)
    assert await authenticator.authenticate(key) == Principal("alice", "manager", ("team-a",), method="api-key")
    found = await user_store.find_key(record.prefix)
    assert found is not None and found[0].secret_hash == record.secret_hash and found[1].name == "alice"
    await user_store.touch_key(record.prefix, 1_000_001.0)
    revoked = await user_store.revoke_key(record.prefix, 1_000_002.0)
    assert (revoked.last_used_at, revoked.revoked_at) == (1_000_001.0, 1_000_002.0)
    assert (await user_store.revoke_key(record.prefix, 1_000_003.0)).revoked_at == 1_000_002.0
    assert [k.prefix for k in await user_store.list_keys("alice")] == [record.prefix]
    with pytest.raises(UnknownKeyError):
        await user_store.revoke_key("nope", 1.0)
    with pytest.raises(UnknownUserError):
        await user_store.list_keys("nobody")
    assert await user_store.find_key("nope") is None
    await authenticator.aclose()


_WRITER = """
import asyncio, sys
from genai_chatbot.config import Settings
from genai_chatbot.chat.records import Session, StoredMessage
from genai_chatbot.stores import select_store

async def main(n):
    store = select_store(Settings(database_url=sys.argv[1])).history_store()
    await store.list_sessions("u")  # opened before the race
    print("ready", flush=True)
    sys.stdin.readline()
    user = StoredMessage(id=f"q{n}", session_id="s", role="user", content="q")
    answer = StoredMessage(id=f"a{n}", session_id="s", role="assistant", content="", status="streaming")
    session = Session(id="s", user_id="u", title="t", model_id="scripted/echo")
    print((await store.begin_turn(session, user, answer, None)).value, flush=True)
    await store.close()

asyncio.run(main(sys.argv[2]))
"""


async def test_of_two_processes_starting_a_turn_on_one_session_exactly_one_wins(stores: Stores) -> None:
    store = stores.history()
    await store.create_session(session())
    url = stores.settings.database_url
    assert url is not None
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WRITER, url, str(n), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for n in (1, 2)
    ]
    for writer in writers:
        assert writer.stdout is not None and await writer.stdout.readline() == b"ready\n"
    outputs = await asyncio.gather(*(writer.communicate(b"go\n") for writer in writers))
    assert sorted(out.decode().strip() for out, _ in outputs) == ["busy", "started"]
    assert [m.status for m in await store.list_messages("s")] == ["complete", "streaming"]
