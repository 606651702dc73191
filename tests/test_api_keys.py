"""API keys on the real SQLite store: hashing, the verification cache, revoke, expiry, disable, old tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.auth.api_keys import ApiKeyAuthenticator, new_api_key, parse_api_key
from genai_chatbot.auth.principal import AuthenticationError, Principal
from genai_chatbot.auth.sqlite_users import SQLiteUserStore
from genai_chatbot.auth.users import DuplicateUserError, UnknownKeyError, UnknownUserError, UserAccount
from genai_chatbot.config import Settings
from scripted import ScriptedProvider


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(SQLiteUserStore):
    """The real store, counting the key reads verification makes."""

    finds = 0

    async def find_key(self, prefix: str):  # type: ignore[no-untyped-def]
        self.finds += 1
        return await super().find_key(prefix)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    users = CountingStore(tmp_path / "data" / "chat.sqlite3")
    await users.add_user(UserAccount("alice", "manager", ("team-a",)))
    yield users
    await users.close()


async def make_key(store: SQLiteUserStore, user: str = "alice", expires_at: float | None = None) -> tuple[str, str]:
    key, record = new_api_key(user, expires_at, now=1_000_000.0)
    await store.add_key(record)
    return key, record.prefix


async def test_a_key_signs_in_as_its_user_with_role_and_groups(store: CountingStore) -> None:
    key, prefix = await make_key(store)
    assert key.startswith(f"gcb_{prefix}_") and parse_api_key(key) is not None
    principal = await ApiKeyAuthenticator(store).authenticate(key)
    assert principal == Principal("alice", "manager", ("team-a",), method="api-key")
    [stored] = await store.list_keys("alice")
    assert stored.last_used_at is not None


async def test_verified_keys_are_cached_so_steady_state_reads_no_database(store: CountingStore) -> None:
    key, _ = await make_key(store)
    clock = Clock()
    authenticator = ApiKeyAuthenticator(store, cache_seconds=10, clock=clock)
    await asyncio.gather(*(authenticator.authenticate(key) for _ in range(64)))
    for _ in range(100):
        await authenticator.authenticate(key)
    assert store.finds == 1  # 64 at once share one read; the next 100 read nothing
    clock.now += 11
    await authenticator.authenticate(key)
    assert store.finds == 2


async def test_a_revoked_key_stops_working_within_the_cache_period(store: CountingStore) -> None:
    key, prefix = await make_key(store)
    clock = Clock()
    authenticator = ApiKeyAuthenticator(store, cache_seconds=10, clock=clock)
    await authenticator.authenticate(key)
    await store.revoke_key(prefix, clock.now)  # as the CLI does, from another process
    await authenticator.authenticate(key)  # still cached: the documented window
    clock.now += 10
    with pytest.raises(AuthenticationError, match=f"API key {prefix} was revoked"):
        await authenticator.authenticate(key)


async def test_forget_applies_a_revoke_at_once(store: CountingStore) -> None:
    key, prefix = await make_key(store)
    authenticator = ApiKeyAuthenticator(store, clock=Clock())
    await authenticator.authenticate(key)
    await store.revoke_key(prefix, 0)
    authenticator.forget()
    with pytest.raises(AuthenticationError, match="revoked"):
        await authenticator.authenticate(key)


async def test_a_key_expires_at_its_time_even_while_cached(store: CountingStore) -> None:
    clock = Clock()
    key, prefix = await make_key(store, expires_at=clock.now + 5)
    authenticator = ApiKeyAuthenticator(store, cache_seconds=10, clock=clock)
    await authenticator.authenticate(key)
    clock.now += 5
    with pytest.raises(AuthenticationError, match=f"API key {prefix} has expired"):
        await authenticator.authenticate(key)


async def test_a_disabled_users_keys_are_refused(store: CountingStore) -> None:
    key, _ = await make_key(store)
    await store.update_user("alice", disabled=True)
    with pytest.raises(AuthenticationError, match="User 'alice' is disabled"):
        await ApiKeyAuthenticator(store).authenticate(key)


async def test_a_wrong_secret_with_a_real_prefix_is_unknown(store: CountingStore) -> None:
    key, _ = await make_key(store)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthenticationError, match="Unknown API key"):
        await ApiKeyAuthenticator(store).authenticate(forged)


async def test_the_clear_key_is_stored_nowhere_in_the_database(store: CountingStore, tmp_path: Path) -> None:
    key, prefix = await make_key(store)
    await ApiKeyAuthenticator(store).authenticate(key)
    await store.close()
    [_, secret] = parse_api_key(key) or ("", "")
    files = list((tmp_path / "data").iterdir())
    content = b"".join(f.read_bytes() for f in files)
    assert prefix.encode() in content  # the row is there
    assert secret.encode() not in content and key.encode() not in content
    assert (tmp_path / "data" / "chat.sqlite3").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


async def test_store_errors_say_what_to_do(store: CountingStore) -> None:
    with pytest.raises(DuplicateUserError, match="already exists"):
        await store.add_user(UserAccount("alice"))
    with pytest.raises(UnknownUserError, match="genai-chatbot users list"):
        await store.add_key(new_api_key("nobody")[1])
    with pytest.raises(UnknownKeyError, match="genai-chatbot keys list"):
        await store.revoke_key("000000000000", 0)


async def test_settings_tokens_sign_in_as_role_user_unless_that_user_is_disabled(store: CountingStore) -> None:
    authenticator = ApiKeyAuthenticator(store, settings_tokens={"old-token": "alice", "other": "carol"})
    assert await authenticator.authenticate("other") == Principal("carol", "user", method="settings-token")
    assert (await authenticator.authenticate("old-token")).role == "user"  # not alice's stored manager role
    await store.update_user("alice", disabled=True)
    authenticator.forget()
    with pytest.raises(AuthenticationError, match="disabled"):
        await authenticator.authenticate("old-token")
    with pytest.raises(AuthenticationError, match="Unknown API key"):
        await authenticator.authenticate("old-tokenx")


def test_the_deprecated_users_map_alone_turns_keys_on(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", users={"token-a": "alice"})
    with LiveServer(create_app(settings, service=make_service(settings, ScriptedProvider(["hi"])))) as live:
        assert httpx.get(f"{live.url}/api/sessions").status_code == 401
        me = httpx.get(f"{live.url}/api/me", headers={"Authorization": "Bearer token-a"}).json()
        assert me == {"user_id": "alice", "role": "user", "groups": [], "method": "settings-token"}
        # The page learns it must ask for a key, although `auth` itself still says "none".
        assert httpx.get(f"{live.url}/api/auth/config").json()["mode"] == "api-keys"


def test_admin_api_revoke_and_disable_apply_at_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", auth="api-keys", users={"legacy": "carol"})

    async def setup() -> tuple[str, str]:
        users = SQLiteUserStore(settings.database_path)
        await users.add_user(UserAccount("root", "admin"))
        await users.add_user(UserAccount("bob"))
        root_key, bob_key = (await make_key(users, "root"))[0], (await make_key(users, "bob"))[0]
        await users.close()
        return root_key, bob_key

    root_key, bob_key = asyncio.run(setup())
    with (
        LiveServer(create_app(settings, service=make_service(settings, ScriptedProvider(["hi"])))) as live,
        httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {root_key}"}) as root,
        httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {bob_key}"}) as bob,
    ):
        assert bob.get("/api/me").status_code == 200
        assert httpx.get(f"{live.url}/api/me", headers={"Authorization": "Bearer legacy"}).status_code == 200
        made = root.post("/api/admin/users/bob/keys", json={"expires_in_days": 1})
        assert made.status_code == 201
        fresh = made.json()["key"]
        assert httpx.get(f"{live.url}/api/me", headers={"Authorization": f"Bearer {fresh}"}).json()["user_id"] == "bob"
        assert root.delete(f"/api/admin/keys/{made.json()['prefix']}").json()["revoked_at"] is not None
        refused = httpx.get(f"{live.url}/api/me", headers={"Authorization": f"Bearer {fresh}"})
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
        assert root.patch("/api/admin/users/bob", json={"disabled": True}).json()["disabled"] is True
        assert "disabled" in bob.get("/api/me").json()["error"]["message"]
        assert root.post("/api/admin/users", json={"name": "bob"}).status_code == 409
        assert root.post("/api/admin/users", json={"name": "x y"}).status_code == 422
        assert root.post("/api/admin/users", json={"name": "gus", "groups": ["g" * 200]}).status_code == 422
        assert root.get("/api/admin/users/nobody/keys").status_code == 404
        assert root.delete("/api/admin/keys/000000000000").status_code == 404
        diagnostics = root.get("/api/admin/diagnostics").json()
        assert diagnostics["auth"] == "api-keys" and diagnostics["users"] == 2
