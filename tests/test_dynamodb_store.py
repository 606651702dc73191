"""What only the DynamoDB store does: `dynamodb://`, `store init`, the 400 KB item limit, pages, leases.

The behaviour it shares with SQLite and PostgreSQL is in test_store_contract.py; here moto's DynamoDB
(dynamodb.py) through boto3's real client, and real processes: the CLI, `serve`, a process killed mid-turn.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer
from dynamodb import free_port
from genai_chatbot.api.app import create_app
from genai_chatbot.chat.dynamodb_db import new_client, table_names
from genai_chatbot.chat.dynamodb_leases import interrupt_leftover_turns, lease_key
from genai_chatbot.chat.dynamodb_store import DynamoDBHistoryStore
from genai_chatbot.chat.records import INTERRUPTED_ERROR, Session, StoredMessage
from genai_chatbot.chat.service import ChatService
from genai_chatbot.chat.store import ItemTooLargeError, TurnStart
from genai_chatbot.config import ConfigError, Settings
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.stores import select_store
from scripted import ScriptedProvider


def run_cli(*args: str, url: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genai_chatbot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "GENAI_CHATBOT_DATABASE_URL": url, "GENAI_CHATBOT_LOCAL__ENABLED": "false"},
    )


def session(session_id: str = "s", system_prompt: str | None = None, updated_at: float = 1.0) -> Session:
    return Session(
        id=session_id,
        user_id="u",
        title="t",
        model_id="m",
        system_prompt=system_prompt,
        created_at=1.0,
        updated_at=updated_at,
    )


def message(message_id: str, role: str = "assistant", content: str = "", status: str = "complete") -> StoredMessage:
    return StoredMessage(id=message_id, session_id="s", role=role, content=content, status=status)  # type: ignore[arg-type]


def test_a_dynamodb_url_names_the_tables_and_a_bad_prefix_or_missing_boto3_is_refused_with_the_fix(
    dynamodb_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    choice = select_store(Settings(database_url="dynamodb://team-chat"))
    assert (choice.kind, choice.table_prefix) == ("dynamodb", "team-chat")
    assert "team-chat-history and team-chat-users" in choice.where and "eu-west-1" in choice.where
    with pytest.raises(ConfigError, match="table prefix"):
        select_store(Settings(database_url="dynamodb://no/slashes"))
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if the aws extra were not installed
    with pytest.raises(ConfigError, match=r'pip install "genai-chatbot\[aws\]"'):
        select_store(Settings(database_url="dynamodb://team-chat"))


@pytest.mark.slow  # CLI subprocesses
def test_store_init_creates_on_demand_tables_once_and_says_what_it_did(dynamodb_env: str) -> None:
    prefix = f"init{time.monotonic_ns()}"
    first = run_cli("store", "init", url=f"dynamodb://{prefix}")
    assert first.returncode == 0, first.stderr
    history, users, governance = table_names(prefix)
    assert all(f"created table {name}" in first.stdout for name in (history, users, governance))
    assert "created 3 table(s)" in first.stdout
    again = run_cli("store", "init", url=f"dynamodb://{prefix}")
    assert again.returncode == 0 and f"found table {history}" in again.stdout and "already" in again.stdout
    client = new_client()
    table = client.describe_table(TableName=history)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "sessions_by_user",
        "streaming_turns",
        "messages_by_id",
    }
    ttl = client.describe_time_to_live(TableName=history)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "lease_expires_at")
    ttl = client.describe_time_to_live(TableName=governance)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")  # counters expire
    for name in (history, users, governance):
        client.delete_table(TableName=name)


@pytest.mark.slow  # a `serve` subprocess
def test_the_server_does_not_start_without_its_tables_and_names_store_init(dynamodb_env: str, tmp_path: Path) -> None:
    refused = run_cli("serve", "--port", str(free_port()), url=f"dynamodb://missing{time.monotonic_ns()}")
    assert refused.returncode != 0
    assert "does not exist" in refused.stderr and "genai-chatbot store init" in refused.stderr


async def test_a_message_over_the_item_limit_is_refused_with_a_413_and_nothing_is_stored(
    dynamodb_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=dynamodb_url)
    chat = ChatService(
        ModelRegistry([ScriptedProvider(["Hello."], context_window=1_000_000)]),
        select_store(settings).history_store(),
        default_model="scripted/echo",
        default_system_prompt="",
        default_max_tokens=64,
    )
    with LiveServer(create_app(settings, service=chat, close_service=True)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            session_id = (await api.post("/api/sessions", json={})).json()["id"]
            body = json.dumps({"content": "€" * 150_000, "stream": False}, ensure_ascii=False).encode()  # 450 KB
            sent = await api.post(
                f"/api/sessions/{session_id}/messages", content=body, headers={"content-type": "application/json"}
            )
            assert sent.status_code == 413, sent.text
            assert "400 KB item limit" in sent.json()["error"]["message"]
            assert "not stored (nothing is truncated)" in sent.json()["error"]["message"]
            assert (await api.get(f"/api/sessions/{session_id}")).json()["messages"] == []
            normal = await api.post(f"/api/sessions/{session_id}/messages", json={"content": "hi", "stream": False})
            assert normal.status_code == 200 and normal.json()["message"]["content"] == "Hello."


async def test_an_answer_over_the_item_limit_is_stored_failed_with_the_reason_not_cut(dynamodb_url: str) -> None:
    store = DynamoDBHistoryStore(dynamodb_url.removeprefix("dynamodb://"))
    await store.create_session(session())
    assert await store.begin_turn(session(), message("q", "user", "q"), message("a", status="streaming"), None) is (
        TurnStart.STARTED
    )
    assert await store.finish_message(message("a", content="x" * 500_000))
    answer = (await store.list_messages("s"))[-1]
    assert (answer.status, answer.content) == ("failed", "")
    assert answer.error is not None and re.match(
        r"This answer was 500,\d{3} bytes, more than DynamoDB's 400 KB", answer.error
    )
    assert await store.begin_turn(session(), None, message("a2", status="streaming"), "a") is TurnStart.STARTED
    with pytest.raises(ItemTooLargeError, match="400 KB"):
        await store.create_session(session("big", system_prompt="p" * 410_000))
    await store.close()


async def test_sessions_and_messages_larger_than_a_page_are_read_whole_and_in_order(dynamodb_url: str) -> None:
    store = DynamoDBHistoryStore(dynamodb_url.removeprefix("dynamodb://"))
    prompt = "p" * 30_000  # 40 sessions or messages of 30 KB: more than DynamoDB's 1 MB page
    for n in range(40):
        await store.create_session(session(f"s{n:02}", system_prompt=prompt, updated_at=float(n)))
    listed = await store.list_sessions("u", limit=100)
    assert [s.id for s in listed] == [f"s{n:02}" for n in reversed(range(40))]
    assert [s.id for s in await store.list_sessions("u", limit=5)] == ["s39", "s38", "s37", "s36", "s35"]
    await store.create_session(session())
    for n in range(40):
        await store.add_message(message(f"m{39 - n:02}", content=prompt))  # ids sort against their order
    assert [m.id for m in await store.list_messages("s")] == [f"m{39 - n:02}" for n in range(40)]
    changed = session(system_prompt=None, updated_at=99.0)
    await store.update_session(changed)
    assert await store.get_session("u", "s") == changed  # the prompt removed, not kept
    assert await store.delete_session("u", "s") and await store.list_messages("s") == []
    await store.close()


_STREAMING_CHILD = """
import asyncio, sys
from genai_chatbot.chat.dynamodb_store import DynamoDBHistoryStore
from genai_chatbot.chat.records import Session, StoredMessage

async def main():
    store = DynamoDBHistoryStore(sys.argv[1])
    session = Session(id="s", user_id="u", title="t", model_id="m")
    await store.create_session(session)
    user = StoredMessage(id="q", session_id="s", role="user", content="q")
    answer = StoredMessage(id="a", session_id="s", role="assistant", content="", status="streaming")
    print((await store.begin_turn(session, user, answer, None)).value, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # streams until killed

asyncio.run(main())
"""


async def test_the_answers_of_a_killed_replica_are_interrupted_once_its_lease_expires(dynamodb_url: str) -> None:
    prefix = dynamodb_url.removeprefix("dynamodb://")
    history, *_ = table_names(prefix)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _STREAMING_CHILD, prefix, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and (await child.stdout.readline()).strip() == b"started"
    finally:
        child.kill()  # no close, no cleanup: as a crash or an OOM kill
        await child.communicate()
    running = DynamoDBHistoryStore(prefix)  # opens while the dead child's lease still runs: leaves it alone
    assert [m.status for m in await running.list_messages("s")] == ["complete", "streaming"]
    assert await running.begin_turn(session(), message("q2", "user"), message("a2", status="streaming"), None) is (
        TurnStart.BUSY
    )

    client = new_client()
    owner = client.get_item(TableName=history, Key={"pk": {"S": "s#s"}, "sk": {"S": "session"}})["Item"]
    lease = lease_key(owner["turn_owner"]["S"])
    expired = {":past": {"N": str(time.time() - 1)}}  # as 30 s without renewal would leave it
    client.update_item(
        TableName=history, Key=lease, UpdateExpression="SET lease_expires_at = :past", ExpressionAttributeValues=expired
    )
    assert interrupt_leftover_turns(client, history, "a-running-replica", opening=False) == 1  # what renewals do
    answer = (await running.list_messages("s"))[-1]
    assert (answer.id, answer.status, answer.content, answer.error) == ("a", "interrupted", "", INTERRUPTED_ERROR)
    assert await running.begin_turn(session(), None, message("a3", status="streaming"), "a") is TurnStart.STARTED
    assert interrupt_leftover_turns(client, history, "another-replica", opening=False) == 0  # a live lease: kept
    await running.close()
    client.close()


async def test_renewals_leave_the_answers_of_a_closed_store_to_the_next_store_that_opens(dynamodb_url: str) -> None:
    prefix = dynamodb_url.removeprefix("dynamodb://")
    closed = DynamoDBHistoryStore(prefix)
    await closed.create_session(session())
    await closed.begin_turn(session(), message("q", "user"), message("a", status="streaming"), None)
    await closed.close()  # its lease is deleted, not expired
    client = new_client()
    assert interrupt_leftover_turns(client, table_names(prefix)[0], "a-running-replica", opening=False) == 0
    client.close()
    reopened = DynamoDBHistoryStore(prefix)
    assert [m.status for m in await reopened.list_messages("s")] == ["complete", "interrupted"]
    await reopened.close()


async def test_a_transaction_retried_after_its_answer_was_lost_is_not_a_duplicate(dynamodb_url: str) -> None:
    from genai_chatbot.chat.dynamodb_items import message_item, session_item
    from genai_chatbot.chat.dynamodb_turns import DuplicateMessageError, _put, _transact

    history, *_ = table_names(dynamodb_url.removeprefix("dynamodb://"))
    client = new_client()
    client.put_item(TableName=history, Item=session_item(session()))
    written = [_put(history, message_item(message("q", "user", "q"), 1))]
    assert _transact(client, written, 0) is None
    assert _transact(client, written, 0) is None  # botocore sent it again: the same item is there, so it committed
    other = [_put(history, message_item(message("q", "user", "another text"), 1))]
    with pytest.raises(DuplicateMessageError, match="already stored"):
        _transact(client, other, 0)
    client.close()


@pytest.mark.slow  # CLI subprocesses
def test_store_init_on_sqlite_does_what_migrate_does(tmp_path: Path) -> None:
    done = run_cli("store", "init", url=f"sqlite:///{tmp_path}/chat.sqlite3")
    assert done.returncode == 0 and "is up to date" in done.stdout
    assert (tmp_path / "chat.sqlite3").is_file()
