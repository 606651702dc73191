"""The chat page signing in through an OpenID Connect provider (authorization code + PKCE), in headless Chromium.

The provider is `FakeIdP` on its own port of 127.0.0.1: the page really leaves for its authorization
endpoint, comes back to /auth/callback, and redeems the code at its token endpoint across origins, under
the page's real Content-Security-Policy.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from playwright.sync_api import Page, expect

from browser import TOKEN_KEY
from conftest import LiveServer, make_service
from fake_idp import CLIENT_ID, FakeIdP
from genai_chatbot.api.app import create_app
from genai_chatbot.config import OIDCSettings, Settings
from scripted import ScriptedProvider


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    provider = FakeIdP()
    with LiveServer(provider.make_app()) as live:
        provider.issuer = live.url
        yield provider


def serve(idp: FakeIdP, tmp_path: Path, **oidc: Any) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path / "data",
        auth="oidc",
        oidc=OIDCSettings(issuer=idp.issuer, **{"audience": CLIENT_ID, **oidc}),
        default_model="scripted/echo",
    )
    chat = make_service(settings, ScriptedProvider(["Hello ", "from the model."]))
    with LiveServer(create_app(settings, service=chat, close_service=True)) as live:
        yield live


@pytest.fixture
def server(idp: FakeIdP, tmp_path: Path) -> Iterator[LiveServer]:
    yield from serve(idp, tmp_path)


def ready(page: Page) -> None:
    expect(page.locator("#app")).to_have_attribute("data-ready", "true")


def stored_token(page: Page) -> Any:
    return page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')")


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_page_signs_in_with_pkce_and_returns_to_the_chat_it_was_opened_on(
    page: Page, idp: FakeIdP, server: LiveServer
) -> None:
    alice = {"authorization": f"Bearer {idp.token()}"}
    session = httpx.post(f"{server.url}/api/sessions", json={"title": "Alice's plans"}, headers=alice).json()

    page.goto(f"{server.url}/chat/{session['id']}")
    ready(page)
    assert page.url == f"{server.url}/chat/{session['id']}"
    expect(page.locator("#session-list")).to_contain_text("Alice's plans")

    [authorize] = idp.authorize_requests
    [exchange] = idp.token_requests
    assert authorize["code_challenge_method"] == "S256"
    assert s256(exchange["code_verifier"]) == authorize["code_challenge"]
    assert exchange["redirect_uri"] == authorize["redirect_uri"] == f"{server.url}/auth/callback"
    assert authorize["scope"] == "openid email profile"
    claims = jwt.decode(stored_token(page), options={"verify_signature": False})
    assert (claims["sub"], claims["aud"], claims["nonce"]) == ("user-alice", CLIENT_ID, authorize["nonce"])
    expect(page.get_by_role("button", name="Sign out")).to_have_attribute("title", "Signed in as alice@example.com")

    page.get_by_label("Message", exact=True).fill("Hi")
    page.get_by_label("Message", exact=True).press("Enter")
    expect(page.locator(".msg.assistant").last).to_contain_text("Hello from the model.")
    stored = httpx.get(f"{server.url}/api/sessions/{session['id']}", headers=alice).json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]


def test_answer_with_a_foreign_state_is_refused_without_redeeming_the_code(
    page: Page, idp: FakeIdP, server: LiveServer
) -> None:
    """Login CSRF: an attacker's code arriving at the callback must not sign this browser in as the attacker."""
    dialog = page.locator("#signin-dialog")
    page.goto(f"{server.url}/auth/callback?code=attackers-code&state=forged")  # no sign-in started here
    expect(dialog).to_contain_text("state mismatch")

    # A sign-in started here, answered with another state (the provider is bypassed by the attacker's link).
    forged = f"{server.url}/auth/callback?code=attackers-code&state=forged"
    page.route(f"{idp.issuer}/authorize?*", lambda route: route.fulfill(status=302, headers={"location": forged}))
    page.goto(server.url)  # without a token the page leaves to sign in at once
    expect(dialog).to_contain_text("state mismatch")
    assert idp.token_requests == []
    assert stored_token(page) is None

    page.unroute(f"{idp.issuer}/authorize?*")
    dialog.get_by_role("button", name="Sign in").click()
    ready(page)
    assert page.url == f"{server.url}/"
    assert len(idp.token_requests) == 1


def test_expired_or_refused_token_makes_the_page_sign_in_again(page: Page, idp: FakeIdP, server: LiveServer) -> None:
    page.goto(server.url)
    ready(page)
    now = int(time.time())
    expired = idp.token(iat=now - 7200, exp=now - 3600)
    page.evaluate("([key, token]) => localStorage.setItem(key, token)", [TOKEN_KEY, expired])
    page.reload()
    ready(page)
    assert len(idp.authorize_requests) == 2
    assert stored_token(page) not in (None, expired)

    # A token the server refuses (401) while it looks fresh: signed by the provider for another app.
    foreign = idp.token(aud="another-app")
    page.evaluate("([key, token]) => localStorage.setItem(key, token)", [TOKEN_KEY, foreign])
    page.evaluate("sessionStorage.clear()")
    page.reload()
    ready(page)
    assert len(idp.authorize_requests) == 3
    assert stored_token(page) not in (None, foreign)


def test_a_message_typed_after_the_token_expired_survives_signing_in_again(
    page: Page, idp: FakeIdP, server: LiveServer
) -> None:
    page.goto(server.url)
    ready(page)
    now = int(time.time())
    page.evaluate("([key, token]) => localStorage.setItem(key, token)", [TOKEN_KEY, idp.token(exp=now + 10)])
    page.get_by_label("Message", exact=True).fill("A long question typed while the sign-in ran out")
    with page.expect_request(f"{idp.issuer}/token"):  # through the provider and back
        page.get_by_label("Message", exact=True).press("Enter")
    ready(page)
    expect(page.get_by_label("Message", exact=True)).to_have_value("A long question typed while the sign-in ran out")
    assert len(idp.authorize_requests) == 2
    assert jwt.decode(stored_token(page), options={"verify_signature": False})["exp"] > now + 60


def test_sign_out_ends_the_provider_session_and_waits_for_sign_in(page: Page, idp: FakeIdP, server: LiveServer) -> None:
    page.goto(server.url)
    ready(page)
    id_token = stored_token(page)
    page.get_by_role("button", name="Sign out").click()
    dialog = page.locator("#signin-dialog")
    expect(dialog).to_contain_text("You are signed out.")
    assert page.url == f"{server.url}/"
    assert stored_token(page) is None
    [logout] = idp.logout_requests
    assert logout == {"client_id": CLIENT_ID, "post_logout_redirect_uri": f"{server.url}/", "id_token_hint": id_token}
    assert len(idp.authorize_requests) == 1  # signed out means signed out: no silent sign-in

    dialog.get_by_role("button", name="Sign in").click()
    ready(page)
    assert len(idp.authorize_requests) == 2


def test_a_token_the_server_refuses_right_after_sign_in_is_explained_not_looped(
    page: Page, idp: FakeIdP, tmp_path: Path
) -> None:
    """Misconfigured audience: redirecting on every 401 would bounce between page and provider forever."""
    for live in serve(idp, tmp_path, audience="api://chatbot", client_id=CLIENT_ID):
        page.goto(live.url)
        dialog = page.locator("#signin-dialog")
        expect(dialog).to_contain_text("The server refused the sign-in")
        expect(dialog).to_contain_text("api://chatbot")
        assert len(idp.authorize_requests) == 1
        # The page sent the access token, since the ID token's audience (the client id) is not the server's.
        assert jwt.decode(stored_token(page), options={"verify_signature": False})["token_use"] == "access"


def test_unreachable_provider_is_explained_on_the_page(page: Page, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        issuer = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = Settings(data_dir=tmp_path, auth="oidc", oidc=OIDCSettings(issuer=issuer, audience=CLIENT_ID))
    with LiveServer(create_app(settings, service=make_service(settings), close_service=True)) as live:
        page.goto(live.url)
        dialog = page.locator("#signin-dialog")
        expect(dialog).to_contain_text(f"Cannot fetch the discovery document of the identity provider from {issuer}")
        expect(dialog).to_contain_text("check oidc.issuer")
