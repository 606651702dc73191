"""Groups and the audit log through the admin API, on a real server over each store (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from conftest import LiveServer
from genai_chatbot.api.app import create_app
from genai_chatbot.auth.api_keys import new_api_key
from genai_chatbot.auth.users import UserAccount
from genai_chatbot.chat.service import ChatService
from genai_chatbot.governance.build import build_governor
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.models.registry import ModelRegistry
from scripted import ScriptedProvider
from stores import Stores


@contextmanager
def serving(stores: Stores, root_key: str) -> Iterator[httpx.Client]:
    settings = stores.settings.model_copy(
        update={"auth": "api-keys", "groups": {"interns": GroupPolicy(models=["local/*"], budget_usd=5.0)}}
    )
    service = ChatService(
        ModelRegistry([ScriptedProvider(["hi"])]),
        stores.choice.history_store(),
        default_model="scripted/echo",
        default_system_prompt="",
        default_max_tokens=64,
        governor=build_governor(settings),
    )
    with (
        LiveServer(create_app(settings, service=service, close_service=True)) as live,
        httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {root_key}"}, timeout=30) as root,
    ):
        yield root


async def admin_key(stores: Stores) -> str:
    users = stores.users()
    await users.add_user(UserAccount("root", "admin"))
    key, record = new_api_key("root")
    await users.add_key(record)
    await stores.close(users)
    return key


async def test_groups_round_trip_through_the_admin_api_and_are_validated(stores: Stores) -> None:
    with serving(stores, await admin_key(stores)) as root:
        [interns] = root.get("/api/admin/groups").json()
        assert (interns["name"], interns["source"], interns["updated_by"]) == ("interns", "settings", None)
        assert interns["policy"]["models"] == ["local/*"] and interns["policy"]["budget_usd"] == 5.0

        body = {"models": ["openai/*", "local/*"], "requests_per_minute": 20, "budget_period": "day"}
        put = root.put("/api/admin/groups/interns", json=body)
        assert put.status_code == 200, put.text
        policy = put.json()["policy"]
        assert (policy["models"], policy["requests_per_minute"], policy["budget_usd"]) == (body["models"], 20, None)
        assert (put.json()["source"], put.json()["updated_by"]) == ("admin over settings", "root")
        assert put.json()["settings_policy"]["budget_usd"] == 5.0
        assert root.put("/api/admin/groups//team/a b", json={}).json()["source"] == "admin"
        assert [g["name"] for g in root.get("/api/admin/groups").json()] == ["/team/a b", "interns"]

        for name, bad in [
            ("interns", {"models": "local/*"}),
            ("interns", {"budget_usd": -1}),
            ("interns", {"models": ["m"] * 101}),
            ("interns", {"budget_period": "week"}),
            ("interns", {"colour": "red"}),
        ]:
            response = root.put(f"/api/admin/groups/{name}", json=bad)
            assert response.status_code == 422, bad
        invalid_name = root.put("/api/admin/groups/-leading dash", json={})
        assert invalid_name.status_code == 422 and invalid_name.json()["error"]["code"] == "invalid_group"

        assert root.delete("/api/admin/groups/interns").status_code == 204
        assert root.get("/api/admin/groups").json()[1]["source"] == "settings"
        missing = root.delete("/api/admin/groups/interns")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "group_not_found"


async def test_every_admin_action_and_a_sign_in_are_audited_without_any_key(stores: Stores) -> None:
    root_key = await admin_key(stores)
    started = time.time()
    with serving(stores, root_key) as root:
        assert root.post("/api/admin/users", json={"name": "alice", "groups": ["interns"]}).status_code == 201
        assert root.patch("/api/admin/users/alice", json={"role": "manager", "groups": ["a", "b"]}).status_code == 200
        assert root.patch("/api/admin/users/alice", json={"disabled": True}).status_code == 200
        assert root.patch("/api/admin/users/alice", json={"disabled": False}).status_code == 200
        created = root.post("/api/admin/users/alice/keys", json={"expires_in_days": 1}).json()
        assert root.delete(f"/api/admin/keys/{created['prefix']}").status_code == 200
        assert root.put("/api/admin/groups/interns", json={"models": ["local/*"]}).status_code == 200
        assert root.delete("/api/admin/groups/interns").status_code == 204

        entries = root.get("/api/admin/audit").json()
        actions = [(e["actor"], e["action"], e["target"]) for e in reversed(entries)]
        assert actions == [
            ("root", "sign-in", "root"),  # once, although every request above authenticated
            ("root", "user.add", "alice"),
            ("root", "user.update", "alice"),
            ("root", "user.update", "alice"),
            ("root", "user.update", "alice"),
            ("root", "key.create", "alice"),
            ("root", "key.revoke", "alice"),
            ("root", "group.set", "interns"),
            ("root", "group.delete", "interns"),
        ]
        details = {(e["action"], json.dumps(e["detail"], sort_keys=True)) for e in entries}
        assert ("user.update", '{"groups": ["a", "b"], "role": "manager"}') in details
        assert ("user.update", '{"disabled": true}') in details
        assert ("key.revoke", json.dumps({"prefix": created["prefix"]})) in details
        assert ("group.set", '{"policy": {"models": ["local/*"]}}') in details
        assert all(started - 1 <= e["at"] <= time.time() + 1 for e in entries)
        whole = json.dumps(entries)
        for key in (created["key"], root_key):
            assert key not in whole and key.split("_", 2)[2] not in whole  # the secret, which may hold "_" itself

        assert [e["action"] for e in root.get("/api/admin/audit", params={"limit": 2}).json()] == [
            "group.delete",
            "group.set",
        ]
        assert {e["action"] for e in root.get("/api/admin/audit", params={"action": "key.create"}).json()} == {
            "key.create"
        }
        assert root.get("/api/admin/audit", params={"actor": "nobody"}).json() == []
        assert root.get("/api/admin/audit", params={"since": "2999-01-01"}).json() == []
        assert len(root.get("/api/admin/audit", params={"since": "2000-01-01T00:00:00Z"}).json()) == len(entries)
        for limit in (0, 1001):
            assert root.get("/api/admin/audit", params={"limit": limit}).status_code == 422
