"""Stateless replicas: two `serve` processes on different ports sharing one real PostgreSQL (postgres.py).

A session goes on from one replica to the other, models and keys agree across them, concurrent turns
split between them keep their order and lose nothing, and a turn of a session is never started twice.
The model is `FakeOpenAI` behind `openai_compatible` settings (fast, and held on demand for the races).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from genai_chatbot.auth.api_keys import CACHE_SECONDS, new_api_key
from genai_chatbot.auth.postgres_users import PostgresUserStore
from genai_chatbot.auth.users import UserAccount
from test_turn_safety import HeldUpstream, ServerProcess, held_upstream

ANSWER = "Partial answer and the rest."


@dataclass
class Replicas:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    upstream: HeldUpstream


async def admin_key(url: str) -> str:
    users = PostgresUserStore(url)
    try:
        await users.add_user(UserAccount("root", "admin"))
        key, record = new_api_key("root")
        await users.add_key(record)
    finally:
        await users.close()
    return key


@pytest.fixture
def servers(tmp_path: Path, postgres_url: str) -> Iterator[tuple[ServerProcess, ServerProcess, HeldUpstream, str]]:
    key = asyncio.run(admin_key(postgres_url))
    with held_upstream() as (fake, held):
        held.released.set()  # answers go straight through until a test holds them (`released.clear()`)
        config = tmp_path / "genai-chatbot.toml"
        config.write_text(
            f'data_dir = "{tmp_path / "data"}"\ndatabase_url = "{postgres_url}"\nauth = "api-keys"\n'
            'default_model = "upstream/gpt-4o"\n[local]\nenabled = false\n'
            f'[[openai_compatible]]\nname = "upstream"\nbase_url = "{fake.url}/v1"\nmodels = ["gpt-4o", "o3-mini"]\n'
        )
        first = ServerProcess(config, tmp_path / "a.log")
        try:
            second = ServerProcess(config, tmp_path / "b.log")
            try:
                yield first, second, held, key
            finally:
                second.stop()
        finally:
            first.stop()


@pytest.fixture
async def replicas(servers: tuple[ServerProcess, ServerProcess, HeldUpstream, str]) -> Any:
    first, second, held, key = servers
    headers = {"authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(base_url=first.url, headers=headers, timeout=30) as a,
        httpx.AsyncClient(base_url=second.url, headers=headers, timeout=30) as b,
    ):
        yield Replicas(a, b, held)


async def turn(api: httpx.AsyncClient, session_id: str, text: str) -> httpx.Response:
    return await api.post(f"/api/sessions/{session_id}/messages", json={"content": text, "stream": False})


def contents(session: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(m["role"], m["status"], m["content"]) for m in session["messages"]]


async def test_a_session_started_on_one_replica_goes_on_on_the_other_with_the_same_models(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    session_id = (await a.post("/api/sessions", json={})).json()["id"]
    assert (await turn(a, session_id, "first")).status_code == 200
    assert (await turn(b, session_id, "second")).status_code == 200

    on_a, on_b = (
        (await a.get(f"/api/sessions/{session_id}")).json(),
        (await b.get(f"/api/sessions/{session_id}")).json(),
    )
    assert on_a == on_b
    assert contents(on_a) == [
        ("user", "complete", "first"),
        ("assistant", "complete", ANSWER),
        ("user", "complete", "second"),
        ("assistant", "complete", ANSWER),
    ]
    assert [s["id"] for s in (await b.get("/api/sessions")).json()] == [session_id]
    models_a, models_b = (await a.get("/api/models")).json(), (await b.get("/api/models")).json()
    assert [m["id"] for m in models_a["models"]] == [m["id"] for m in models_b["models"]]
    assert {"upstream/gpt-4o", "upstream/o3-mini"} <= {m["id"] for m in models_a["models"]}


async def test_a_key_made_on_one_replica_works_on_the_other_and_its_revoke_reaches_it_within_the_cache_time(
    replicas: Replicas,
) -> None:
    a, b = replicas.a, replicas.b
    assert (await a.post("/api/admin/users", json={"name": "bob"})).status_code == 201
    created = (await a.post("/api/admin/users/bob/keys", json={})).json()
    bob = {"authorization": f"Bearer {created['key']}"}
    assert (await b.get("/api/sessions", headers=bob)).status_code == 200  # now cached on b
    assert [k["prefix"] for k in (await b.get("/api/admin/users/bob/keys")).json()] == [created["prefix"]]

    assert (await a.delete(f"/api/admin/keys/{created['prefix']}")).status_code == 200
    revoked_at = time.monotonic()
    assert (await a.get("/api/sessions", headers=bob)).status_code == 401  # at once on the replica that revoked
    while (await b.get("/api/sessions", headers=bob)).status_code == 200:  # within the cache period on the other
        assert time.monotonic() - revoked_at < CACHE_SECONDS + 5, "the revoke did not reach the other replica"
        await asyncio.sleep(0.2)
    assert (await b.get("/api/sessions", headers=bob)).status_code == 401


async def test_sixteen_concurrent_turns_split_across_replicas_keep_their_order_and_lose_nothing(
    replicas: Replicas,
) -> None:
    a, b = replicas.a, replicas.b
    sessions = [(await (a if n % 2 else b).post("/api/sessions", json={})).json()["id"] for n in range(16)]

    async def two_turns(n: int, session_id: str) -> None:
        first, second = (a, b) if n % 2 else (b, a)
        assert (await turn(first, session_id, f"q{n}.0")).status_code == 200
        assert (await turn(second, session_id, f"q{n}.1")).status_code == 200

    await asyncio.gather(*(two_turns(n, s) for n, s in enumerate(sessions)))

    for n, session_id in enumerate(sessions):
        stored = (await (b if n % 2 else a).get(f"/api/sessions/{session_id}")).json()
        assert contents(stored) == [
            ("user", "complete", f"q{n}.0"),
            ("assistant", "complete", ANSWER),
            ("user", "complete", f"q{n}.1"),
            ("assistant", "complete", ANSWER),
        ]
    assert len((await a.get("/api/sessions")).json()) == 16


async def test_a_turn_sent_to_both_replicas_at_once_starts_once_and_the_other_gets_409(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    sessions = [(await a.post("/api/sessions", json={})).json()["id"] for _ in range(8)]
    replicas.upstream.released.clear()  # every answer holds after its first pieces until both sends returned
    sends = [asyncio.ensure_future(turn(api, s, f"to {name}")) for s in sessions for api, name in ((a, "a"), (b, "b"))]
    refused: list[httpx.Response] = []
    while len(refused) < len(sessions):  # the refusals come back while the started turns are held
        done, _ = await asyncio.wait([s for s in sends if not s.done()], return_when=asyncio.FIRST_COMPLETED)
        for send in done:
            refused.append(send.result())
            assert send.result().status_code == 409, send.result().text
            assert send.result().json()["error"]["code"] == "turn_in_progress"
    replicas.upstream.released.set()
    started = [r for r in await asyncio.gather(*sends) if r.status_code == 200]
    assert len(started) == len(sessions)

    for session_id in sessions:
        stored = contents((await b.get(f"/api/sessions/{session_id}")).json())
        assert (
            len(stored) == 2
            and stored[0][0:2] == ("user", "complete")
            and stored[1] == ("assistant", "complete", ANSWER)
        )
