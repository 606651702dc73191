"""Isolation over every endpoint, with `auth = "api-keys"` on a real server.

The matrix is built from `app.routes`: an /api or /v1 route without a case in `CASES` fails the test, so
no endpoint can be added without saying how it is guarded. For each: no token and a bad token answer 401
with `WWW-Authenticate: Bearer`; a user on an admin endpoint answers 403; user B on user A's session or
message answers 404 with exactly the body of an id that does not exist.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from conftest import LiveServer, make_service
from genai_chatbot.api.app import create_app
from genai_chatbot.auth.api_keys import new_api_key
from genai_chatbot.auth.sqlite_users import SQLiteUserStore
from genai_chatbot.auth.users import UserAccount
from genai_chatbot.chat.records import new_id
from genai_chatbot.config import Settings
from genai_chatbot.models.types import ModelInfo
from scripted import ScriptedProvider

SESSION = "/api/sessions/{session_id}"
MESSAGE = "/api/sessions/{session_id}/messages/{message_id}"


@dataclass(frozen=True)
class Case:
    """How to call one endpoint, and what guards it."""

    body: dict[str, Any] | None = None
    #: Needs the admin role: 403 for a user.
    admin: bool = False
    #: Names the caller's own session (and message): another user's id is a 404 like a missing one.
    owned: bool = False
    #: Answers without a token (e.g. what the page needs before it can sign in); must hold no user data.
    public: bool = False
    params: dict[str, str] = field(default_factory=dict)


TURN = {"content": "hi", "stream": False}
CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/me"): Case(),
    ("GET", "/api/models"): Case(),
    ("POST", "/api/models/refresh"): Case(admin=True),
    ("GET", "/api/sessions"): Case(),
    ("POST", "/api/sessions"): Case(body={"model": "scripted/echo"}),
    ("GET", SESSION): Case(owned=True),
    ("PATCH", SESSION): Case(body={"title": "taken over"}, owned=True),
    ("DELETE", SESSION): Case(owned=True),
    ("POST", SESSION + "/messages"): Case(body=TURN, owned=True),
    ("PUT", MESSAGE + "/feedback"): Case(body={"rating": "down", "comment": "seen"}, owned=True),
    ("DELETE", MESSAGE + "/feedback"): Case(owned=True),
    ("POST", MESSAGE + "/retry"): Case(body={"stream": False}, owned=True),
    ("GET", "/v1/models"): Case(),
    ("GET", "/v1/models/{model_id:path}"): Case(params={"model_id": "scripted/echo"}),
    ("POST", "/v1/embeddings"): Case(body={"model": "scripted/echo", "input": "hi"}),
    ("POST", "/v1/chat/completions"): Case(
        body={"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}
    ),
    ("GET", "/api/admin/users"): Case(admin=True),
    ("POST", "/api/admin/users"): Case(body={"name": "mallory", "role": "admin"}, admin=True),
    ("PATCH", "/api/admin/users/{name}"): Case(body={"role": "admin"}, admin=True, params={"name": "bob"}),
    ("GET", "/api/admin/users/{name}/keys"): Case(admin=True, params={"name": "alice"}),
    ("POST", "/api/admin/users/{name}/keys"): Case(body={}, admin=True, params={"name": "bob"}),
    ("DELETE", "/api/admin/keys/{prefix}"): Case(admin=True),
    ("GET", "/api/admin/diagnostics"): Case(admin=True),
    ("GET", "/api/admin/groups"): Case(admin=True),
    ("PUT", "/api/admin/groups/{name:path}"): Case(body={"models": ["*"]}, admin=True, params={"name": "/staff"}),
    ("DELETE", "/api/admin/groups/{name:path}"): Case(admin=True, params={"name": "/staff"}),
    ("GET", "/api/admin/audit"): Case(admin=True),
    # Own usage; another user's answers 404 (tests/test_usage_api.py), everyone's is for admins.
    ("GET", "/api/usage"): Case(),
    # How the page signs in: it must answer before anyone has a token, and holds nothing of anyone.
    ("GET", "/api/auth/config"): Case(public=True),
}


class Unavailable(ScriptedProvider):
    """A configured model that cannot be used, with a reason naming a key, as a missing key leaves it."""

    name = "vendor"

    async def list_models(self) -> list[ModelInfo]:
        reason = "no API key: set VENDOR_API_KEY in the keys secret"
        return [
            ModelInfo(
                id="vendor/big",
                provider="vendor",
                name="big",
                display_name="Big",
                available=False,
                unavailable_reason=reason,
            )
        ]


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route under /api and /v1, included routers resolved."""
    try:  # FastAPI 0.16x keeps included routers as one entry each in app.routes
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        routes: list[Any] = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    paths = ((r.path or "", r.methods or ()) for r in routes)
    return {(method, path) for path, methods in paths if path.startswith(("/api", "/v1")) for method in methods}


@dataclass
class World:
    url: str
    routes: set[tuple[str, str]]
    keys: dict[str, str]
    spare_prefix: str
    session_id: str = ""
    answer_id: str = ""

    def client(self, user: str | None = None, authorization: str | None = None) -> httpx.Client:
        """A client for `user`'s key, or sending `authorization` as it is (None: no header)."""
        header = f"Bearer {self.keys[user]}" if user else authorization
        headers = {"Authorization": header} if header is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def make_users(settings: Settings) -> tuple[dict[str, str], str]:
    """alice and bob (role user) and root (admin), one key each, plus a spare key of bob's to revoke."""

    async def work() -> tuple[dict[str, str], str]:
        store = SQLiteUserStore(settings.database_path)
        keys: dict[str, str] = {}
        try:
            for name, role in (("alice", "user"), ("bob", "user"), ("root", "admin")):
                await store.add_user(UserAccount(name, role))  # type: ignore[arg-type]
                keys[name], record = new_api_key(name)
                await store.add_key(record)
            _, spare = new_api_key("bob")
            await store.add_key(spare)
        finally:
            await store.close()
        return keys, spare.prefix

    return asyncio.run(work())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = Settings(data_dir=tmp_path / "data", auth="api-keys")
    keys, spare = make_users(settings)
    app = create_app(settings, service=make_service(settings, ScriptedProvider(["hello"]), Unavailable([])))
    routes = api_routes(app)
    with LiveServer(app) as live:
        world = World(live.url, routes, keys, spare)
        with world.client("alice") as alice:
            world.session_id = alice.post("/api/sessions", json={"model": "scripted/echo"}).json()["id"]
            turn = alice.post(f"/api/sessions/{world.session_id}/messages", json=TURN).json()
            world.answer_id = turn["message"]["id"]
        yield world


def path_for(template: str, case: Case, world: World, session_id: str, message_id: str) -> str:
    values = {"session_id": session_id, "message_id": message_id, "prefix": world.spare_prefix, **case.params}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], template)


def call(
    client: httpx.Client, method: str, template: str, world: World, ids: tuple[str, str] | None = None
) -> httpx.Response:
    case = CASES[(method, template)]
    session_id, message_id = ids or (world.session_id, world.answer_id)
    return client.request(method, path_for(template, case, world, session_id, message_id), json=case.body)


def test_every_api_route_has_a_case(world: World) -> None:
    routes = world.routes
    missing = sorted(routes - set(CASES))
    assert not missing, f"routes without an isolation case: {missing}; add them to CASES in {__file__}"
    assert not sorted(set(CASES) - routes), "CASES names routes that no longer exist"


def test_no_token_and_bad_tokens_answer_401_with_www_authenticate_everywhere(world: World) -> None:
    mangled = world.keys["alice"][:-1] + ("x" if not world.keys["alice"].endswith("x") else "y")
    bad_headers = [
        None,
        "Bearer",
        "Basic YWxpY2U6cGFzcw==",
        world.keys["alice"],  # the key without its scheme
        "Bearer nonsense",
        "Bearer gcb_000000000000_" + "A" * 43,
        f"Bearer {mangled}",
    ]
    for header in bad_headers:
        with world.client(authorization=header) as client:
            for (method, template), case in CASES.items():
                response = call(client, method, template, world)
                if case.public:
                    assert response.status_code < 400, f"{method} {template} is public"
                    continue
                where = f"{method} {template} with Authorization {header!r}"
                assert response.status_code == 401, where
                assert response.headers["www-authenticate"] == "Bearer", where
                error = response.json()["error"]
                assert error["code"] == "invalid_api_key", where
                assert "Authorization: Bearer" in error["message"] or "Unknown API key" in error["message"], where


def test_a_user_on_an_admin_endpoint_gets_403_and_changes_nothing(world: World) -> None:
    with world.client("bob") as bob, world.client("root") as root:
        for (method, template), case in CASES.items():
            if case.admin:
                response = call(bob, method, template, world)
                assert response.status_code == 403, f"{method} {template}"
                assert "admin role" in response.json()["error"]["message"]
        assert [u["name"] for u in root.get("/api/admin/users").json()] == ["alice", "bob", "root"]
        assert {u["name"]: u["role"] for u in root.get("/api/admin/users").json()}["bob"] == "user"
        assert len(root.get("/api/admin/users/bob/keys").json()) == 2  # no key was made for bob
        assert bob.get("/api/me").json()["role"] == "user"  # the spare key revocation did not happen either
        assert root.get("/api/admin/groups").json() == []  # nor did bob set a group
        assert {e["action"] for e in root.get("/api/admin/audit").json()} <= {"sign-in"}  # nor any admin action
        for (method, template), case in CASES.items():
            if case.admin:
                assert call(root, method, template, world).status_code < 400, f"{method} {template} as admin"


def test_another_users_session_and_message_answer_404_exactly_like_missing_ones(world: World) -> None:
    with world.client("alice") as alice, world.client("bob") as bob:
        before = alice.get(f"/api/sessions/{world.session_id}").json()
        own_session = bob.post("/api/sessions", json={"model": "scripted/echo"}).json()["id"]
        for (method, template), case in CASES.items():
            if not case.owned:
                continue
            theirs = call(bob, method, template, world)
            missing_ids = (new_id(), new_id())
            missing = call(bob, method, template, world, missing_ids)
            assert theirs.status_code == missing.status_code == 404, f"{method} {template}"
            normalised = theirs.text.replace(world.session_id, "S").replace(world.answer_id, "M")
            assert normalised == missing.text.replace(missing_ids[0], "S").replace(missing_ids[1], "M")
            # Alice's message id in a session bob owns is no more found than in hers.
            if "{message_id}" in template:
                in_own = call(bob, method, template, world, (own_session, world.answer_id))
                assert in_own.status_code == 404, f"{method} {template} in bob's own session"
        assert alice.get(f"/api/sessions/{world.session_id}").json() == before
        sessions = bob.get("/api/sessions").json()
        assert sessions and world.session_id not in {s["id"] for s in sessions}


def test_model_reasons_that_name_keys_are_shown_to_admins_only(world: World) -> None:
    with world.client("bob") as bob, world.client("root") as root:
        [theirs] = [m for m in bob.get("/api/models").json()["models"] if m["id"] == "vendor/big"]
        [admins] = [m for m in root.get("/api/models").json()["models"] if m["id"] == "vendor/big"]
    assert theirs["available"] is False and theirs["unavailable_reason"] == "unavailable"
    assert "VENDOR_API_KEY" in admins["unavailable_reason"]


def test_me_names_the_caller(world: World) -> None:
    with world.client("root") as root:
        assert root.get("/api/me").json() == {"user_id": "root", "role": "admin", "groups": [], "method": "api-key"}


def test_the_openai_sdk_takes_the_api_key_as_its_api_key(world: World) -> None:
    alice = openai.OpenAI(base_url=f"{world.url}/v1", api_key=world.keys["alice"], max_retries=0)
    bob = openai.OpenAI(base_url=f"{world.url}/v1", api_key=world.keys["bob"], max_retries=0)
    ask = {"model": "scripted/echo", "messages": [{"role": "user", "content": "secret of alice"}]}
    assert alice.chat.completions.create(**ask).choices[0].message.content == "hello"  # type: ignore[call-overload]
    assert "scripted/echo" in {m.id for m in bob.models.list()}
    # /v1 is stateless: what alice sent there is stored nowhere bob (or anyone) can list.
    with world.client("bob") as api:
        assert all("secret of alice" not in s["title"] for s in api.get("/api/sessions").json())
    for key in ("sk-no-key-required", "wrong", world.keys["bob"] + "x"):
        stranger = openai.OpenAI(base_url=f"{world.url}/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            stranger.models.list()
        with pytest.raises(openai.AuthenticationError):
            stranger.chat.completions.create(**ask)  # type: ignore[call-overload]
