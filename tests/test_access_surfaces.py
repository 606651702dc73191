"""Model access on every surface of a real server: the page's API, `/v1` streamed and not, and retries.

alice is in `interns`, whose settings allow `scripted/*`; root is an admin. The server also offers
`vendor/big`, which alice must neither see nor use, until an admin changes her group at run time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from conftest import LiveServer
from fake_idp import CLIENT_ID, FakeIdP
from genai_chatbot.api.app import create_app
from genai_chatbot.auth.api_keys import new_api_key
from genai_chatbot.auth.sqlite_users import SQLiteUserStore
from genai_chatbot.auth.users import UserAccount
from genai_chatbot.chat.service import ChatService
from genai_chatbot.chat.sqlite_store import SQLiteHistoryStore
from genai_chatbot.config import OIDCSettings, Settings
from genai_chatbot.governance.build import build_governor
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.models.errors import ProviderUnavailableError
from genai_chatbot.models.registry import ModelRegistry
from genai_chatbot.models.types import ModelInfo
from scripted import ScriptedProvider

ASK = {"messages": [{"role": "user", "content": "hi"}]}


class Vendor(ScriptedProvider):
    name = "vendor"

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(id="vendor/big", provider="vendor", name="big", display_name="Big")]


@dataclass
class Team:
    url: str
    keys: dict[str, str]

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.keys[user]}"}, timeout=30)

    def sdk(self, user: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.keys[user], max_retries=0)


def add_users(settings: Settings) -> dict[str, str]:
    async def work() -> dict[str, str]:
        store = SQLiteUserStore(settings.database_path)
        keys = {}
        try:
            for user in (UserAccount("alice", "user", ("interns",)), UserAccount("root", "admin", ("interns",))):
                await store.add_user(user)
                keys[user.name], record = new_api_key(user.name)
                await store.add_key(record)
        finally:
            await store.close()
        return keys

    return asyncio.run(work())


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    settings = Settings(
        data_dir=tmp_path / "data", auth="api-keys", groups={"interns": GroupPolicy(models=["scripted/*"])}
    )
    keys = add_users(settings)
    # The first turn fails (something to retry); every later one answers.
    scripted = ScriptedProvider(["hello"], first=[ProviderUnavailableError("down for a moment")])
    service = ChatService(
        ModelRegistry([scripted, Vendor(["big answer"])]),
        SQLiteHistoryStore(settings.database_path),
        default_model="scripted/echo",
        default_system_prompt="",
        default_max_tokens=64,
        governor=build_governor(settings),
    )
    with LiveServer(create_app(settings, service=service, close_service=True)) as live:
        yield Team(live.url, keys)


def refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_allowed", "model")
    assert "vendor/big" in error["message"] and "ask an admin" in error["message"]


def test_model_lists_show_only_the_models_of_the_callers_groups(team: Team) -> None:
    with team.client("alice") as alice, team.client("root") as root:
        assert [m["id"] for m in alice.get("/v1/models").json()["data"]] == ["scripted/echo"]
        assert [m["id"] for m in alice.get("/api/models").json()["models"]] == ["scripted/echo"]
        assert [m["id"] for m in root.get("/v1/models").json()["data"]] == ["scripted/echo", "vendor/big"]
    with team.sdk("alice") as sdk:
        assert [m.id for m in sdk.models.list()] == ["scripted/echo"]


def test_models_retrieve_answers_a_model_not_allowed_exactly_like_one_that_does_not_exist(team: Team) -> None:
    with team.sdk("alice") as sdk:
        assert sdk.models.retrieve("scripted/echo").id == "scripted/echo"
        with pytest.raises(openai.NotFoundError) as hidden:
            sdk.models.retrieve("vendor/big")
        with pytest.raises(openai.NotFoundError) as missing:
            sdk.models.retrieve("vendor/none")
    hidden_body, missing_body = dict(hidden.value.body), dict(missing.value.body)  # type: ignore[call-overload]
    assert hidden_body == {**missing_body, "message": missing_body["message"].replace("vendor/none", "vendor/big")}
    with team.sdk("root") as sdk:
        assert sdk.models.retrieve("vendor/big").owned_by == "vendor"


def test_the_page_api_refuses_a_model_not_allowed_and_stores_nothing(team: Team) -> None:
    with team.client("alice") as alice:
        refused(alice.post("/api/sessions", json={"model": "vendor/big"}))
        assert alice.get("/api/sessions").json() == []
        session = alice.post("/api/sessions", json={"model": "scripted/echo"}).json()["id"]
        turn = {"content": "hi", "stream": False}
        refused(alice.post(f"/api/sessions/{session}/messages", json={**turn, "model": "vendor/big"}))
        refused(alice.post(f"/api/sessions/{session}/messages", json={**turn, "stream": True, "model": "vendor/big"}))
        assert alice.get(f"/api/sessions/{session}").json()["messages"] == []
        failed = alice.post(f"/api/sessions/{session}/messages", json=turn).json()["message"]
        assert failed["status"] == "failed"
        retry = f"/api/sessions/{session}/messages/{failed['id']}/retry"
        refused(alice.post(retry, json={"stream": False, "model": "vendor/big"}))
        assert alice.post(retry, json={"stream": False}).json()["message"]["content"] == "hello"


def test_the_openai_api_refuses_a_model_not_allowed_streamed_or_not(team: Team) -> None:
    with team.client("alice") as alice:
        refused(alice.post("/v1/chat/completions", json={**ASK, "model": "vendor/big"}))
        refused(alice.post("/v1/chat/completions", json={**ASK, "model": "vendor/big", "stream": True}))
    with team.sdk("alice") as sdk, pytest.raises(openai.PermissionDeniedError) as denied:
        sdk.chat.completions.create(model="vendor/big", stream=True, **ASK)  # type: ignore[call-overload]
    assert denied.value.code == "model_not_allowed"
    with team.client("root") as root:  # admins may use every model, whatever their groups
        answer = root.post("/v1/chat/completions", json={**ASK, "model": "vendor/big"}).json()
        assert answer["choices"][0]["message"]["content"] == "big answer"


def test_a_group_changed_through_the_admin_api_applies_at_once_and_deleting_it_returns_to_the_settings(
    team: Team,
) -> None:
    with team.client("alice") as alice, team.client("root") as root:
        changed = root.put("/api/admin/groups/interns", json={"models": ["vendor/*"]})
        assert changed.status_code == 200, changed.text
        assert changed.json()["source"] == "admin over settings"
        assert [m["id"] for m in alice.get("/v1/models").json()["data"]] == ["vendor/big"]
        # The page picks vendor/big: a default model hidden by access is no problem to report.
        assert alice.get("/api/models").json()["problems"] == []
        answer = alice.post("/v1/chat/completions", json={**ASK, "model": "vendor/big"})
        assert answer.json()["choices"][0]["message"]["content"] == "big answer"
        assert alice.post("/v1/chat/completions", json={**ASK, "model": "scripted/echo"}).status_code == 403
        assert root.delete("/api/admin/groups/interns").status_code == 204
        assert [m["id"] for m in alice.get("/v1/models").json()["data"]] == ["scripted/echo"]


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    provider = FakeIdP()
    with LiveServer(provider.make_app()) as live:
        provider.issuer = live.url
        yield provider


def test_oidc_groups_decide_the_models_and_each_sign_in_is_audited_once(idp: FakeIdP, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        auth="oidc",
        oidc=OIDCSettings(issuer=idp.issuer, audience=CLIENT_ID, groups_claim="groups"),
        groups={"/team/interns": GroupPolicy(models=["vendor/*"])},
        default_model="scripted/echo",
    )
    service = ChatService(
        ModelRegistry([ScriptedProvider(["hello"]), Vendor(["big answer"])]),
        SQLiteHistoryStore(settings.database_path),
        default_model="scripted/echo",
        default_system_prompt="",
        default_max_tokens=64,
        governor=build_governor(settings),
    )
    intern = idp.token(sub="ann", groups=["/team/interns", "/team/other"], **{"cognito:groups": ["user"]})
    admin = idp.token(sub="root", groups=["/team/interns"], **{"cognito:groups": ["admin"]})
    with LiveServer(create_app(settings, service=service, close_service=True)) as live:
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {intern}"}) as ann:
            assert [m["id"] for m in ann.get("/v1/models").json()["data"]] == ["vendor/big"]
            refused_default = ann.post("/api/sessions", json={})  # the default model is not theirs
            assert refused_default.json()["error"]["code"] == "model_not_allowed"
            assert ann.post("/api/sessions", json={"model": "vendor/big"}).status_code == 201
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {admin}"}) as root:
            assert len(root.get("/v1/models").json()["data"]) == 2
            signed_in = root.get("/api/admin/audit", params={"action": "sign-in"}).json()
    assert sorted((e["actor"], e["detail"]["method"]) for e in signed_in) == [("ann", "oidc"), ("root", "oidc")]
    [ann_entry] = [e for e in signed_in if e["actor"] == "ann"]
    assert ann_entry["detail"]["groups"] == ["/team/interns", "/team/other"]
    assert intern.split(".")[2] not in json.dumps(signed_in)
