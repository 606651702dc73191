"""OIDC bearer tokens against a provider served by the test over real HTTP (keys generated per test).

`OIDCAuthenticator` is driven directly for each way a token can be wrong, and through a real server for
what a client sees (401 with `WWW-Authenticate`, 200, the page's sign-in configuration and CSP).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from conftest import LiveServer, make_service
from fake_idp import CLIENT_ID, FakeIdP, SigningKey
from genai_chatbot.api.app import create_app
from genai_chatbot.auth import oidc_keys
from genai_chatbot.auth.oidc import OIDCAuthenticator, validate_oidc_settings
from genai_chatbot.auth.oidc_keys import MISS_REFETCH_INTERVAL, IdentityProviderUnavailable
from genai_chatbot.auth.principal import AuthenticationError, Principal
from genai_chatbot.config import ConfigError, OIDCSettings, Settings
from scripted import ScriptedProvider


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    provider = FakeIdP()
    with LiveServer(provider.make_app()) as live:
        provider.issuer = live.url
        yield provider


def oidc_settings(idp: FakeIdP, **overrides: Any) -> OIDCSettings:
    return OIDCSettings(issuer=idp.issuer, audience=CLIENT_ID, **overrides)


@pytest.fixture
async def authenticator(idp: FakeIdP) -> AsyncIterator[OIDCAuthenticator]:
    verifier = OIDCAuthenticator(oidc_settings(idp))
    yield verifier
    await verifier.aclose()


async def refused(authenticator: OIDCAuthenticator, token: str, reason: str) -> str:
    """Assert the token is refused with a message containing `reason` and never the token itself."""
    with pytest.raises(AuthenticationError) as caught:
        await authenticator.authenticate(token)
    message = str(caught.value)
    assert reason in message
    assert not any(len(part) >= 8 and part in message for part in token.split("."))
    return message


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


# Valid tokens ---------------------------------------------------------------------------------------------


async def test_valid_token_gives_the_principal_with_role_and_groups_from_claims(
    idp: FakeIdP, authenticator: OIDCAuthenticator
) -> None:
    token = idp.token(sub="user-42", **{"cognito:groups": ["team-a", "admin", "user"]})
    principal = await authenticator.authenticate(token)
    assert principal == Principal(user_id="user-42", role="admin", groups=("team-a", "admin", "user"), method="oidc")


async def test_token_without_role_groups_is_a_user(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    principal = await authenticator.authenticate(idp.token(**{"cognito:groups": None}))
    assert (principal.role, principal.groups) == ("user", ())


async def test_role_claim_may_be_a_string_or_nested_and_groups_come_from_their_own_claim(idp: FakeIdP) -> None:
    keycloak = OIDCAuthenticator(oidc_settings(idp, role_claim="realm_access.roles", groups_claim="groups"))
    okta = OIDCAuthenticator(oidc_settings(idp, role_claim="role"))
    try:
        token = idp.token(realm_access={"roles": ["offline_access", "manager"]}, groups=["/eng", "/eng/ml"])
        assert await keycloak.authenticate(token) == Principal("user-alice", "manager", ("/eng", "/eng/ml"), "oidc")
        assert (await okta.authenticate(idp.token(role="admin"))).role == "admin"
    finally:
        await keycloak.aclose()
        await okta.aclose()


async def test_cognito_access_token_is_accepted_by_its_client_id(
    idp: FakeIdP, authenticator: OIDCAuthenticator
) -> None:
    access = idp.token(aud=None, token_use="access", client_id=CLIENT_ID, **{"cognito:groups": ["manager"]})
    assert (await authenticator.authenticate(access)).role == "manager"
    other_client = idp.token(aud=None, token_use="access", client_id="another-app")
    await refused(authenticator, other_client, "another application")
    id_token_without_aud = idp.token(aud=None, token_use="id", client_id=CLIENT_ID)
    await refused(authenticator, id_token_without_aud, "another application")


async def test_elliptic_curve_keys_verify(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    idp.rotate(SigningKey.ec("ec-key"))
    assert (await authenticator.authenticate(idp.token(sub="ec-user"))).user_id == "ec-user"


async def test_a_verified_token_needs_no_provider_until_it_expires_from_the_cache(
    idp: FakeIdP, authenticator: OIDCAuthenticator
) -> None:
    token = idp.token()
    await authenticator.authenticate(token)
    idp.rotate(SigningKey.rsa("key-2"))  # the provider no longer publishes the key that signed it
    for _ in range(100):
        assert (await authenticator.authenticate(token)).user_id == "user-alice"
    assert idp.jwks_requests == 1


# Refused tokens -------------------------------------------------------------------------------------------


async def test_expired_token_is_refused(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    now = int(time.time())
    await refused(authenticator, idp.token(iat=now - 7200, exp=now - 3600), "expired; sign in again")


async def test_token_not_yet_valid_is_refused(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    await refused(authenticator, idp.token(nbf=int(time.time()) + 3600), "not valid yet")


async def test_token_for_another_audience_is_refused(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    await refused(authenticator, idp.token(aud="some-other-app"), "another application")
    await refused(authenticator, idp.token(aud=["x", "y"]), "another application")
    assert await authenticator.authenticate(idp.token(aud=["x", CLIENT_ID]))


async def test_token_of_another_issuer_is_refused(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    message = await refused(authenticator, idp.token(iss="https://evil.example"), "was not issued by")
    assert idp.issuer in message


async def test_token_without_sub_is_refused(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    await refused(authenticator, idp.token(sub=None), "no 'sub' claim")
    await refused(authenticator, idp.token(sub=""), "'sub' claim is empty")


async def test_token_without_exp_is_refused(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    await refused(authenticator, idp.token(exp=None), "no 'exp' claim")


async def test_unsigned_alg_none_token_is_refused(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    token = unsigned({"alg": "none", "typ": "JWT", "kid": "key-1"}, idp.claims()) + "."
    await refused(authenticator, token, "signed with 'none', which this server does not accept")


async def test_hs256_token_signed_with_the_public_key_is_refused(
    idp: FakeIdP, authenticator: OIDCAuthenticator
) -> None:
    """The classic key-confusion attack: HMAC with the provider's public key (which anyone can fetch) as secret."""
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": "key-1"}, idp.claims(sub="attacker", role="admin"))
    signature = hmac.new(idp.keys[0].public_pem(), signing_input.encode(), hashlib.sha256).digest()
    await refused(authenticator, f"{signing_input}.{b64(signature)}", "signed with 'HS256'")


async def test_token_with_a_forged_signature_is_refused(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    impostor = SigningKey.rsa("key-1")  # same kid, another private key
    await refused(authenticator, idp.sign(idp.claims(), key=impostor), "signature does not verify")


@pytest.mark.parametrize(
    "token",
    [
        "sk-not-a-jwt-at-all",
        "a.b.c",
        f"{b64(b'not json')}.{b64(b'{}')}.sig",
        unsigned({"alg": "RS256", "kid": 7}, {"sub": "x"}) + ".sig",
    ],
)
async def test_garbage_is_refused_as_not_a_jwt(authenticator: OIDCAuthenticator, token: str) -> None:
    await refused(authenticator, token, "not a well-formed JWT")


async def test_malformed_algorithm_header_is_refused(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    await refused(authenticator, unsigned({"alg": ["RS256"], "kid": "key-1"}, idp.claims()) + ".sig", "not accept")


# Key rotation and the JWKS cache -------------------------------------------------------------------------


async def test_unknown_kid_refetches_the_jwks_so_a_rotated_key_works_without_restart(
    idp: FakeIdP, authenticator: OIDCAuthenticator
) -> None:
    await authenticator.authenticate(idp.token(sub="before"))
    assert idp.jwks_requests == 1
    idp.rotate(SigningKey.rsa("key-2"))
    assert (await authenticator.authenticate(idp.token(sub="after"))).user_id == "after"
    assert idp.jwks_requests == 2
    assert (await authenticator.authenticate(idp.token(sub="after-again"))).user_id == "after-again"
    assert idp.jwks_requests == 2
    assert idp.discovery_requests == 1


async def test_unknown_kids_do_not_make_a_refetch_storm(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    await authenticator.authenticate(idp.token())
    stranger = SigningKey.rsa("unused")
    forged = [idp.sign(idp.claims(), key=stranger, kid=f"made-up-{n}") for n in range(30)]
    await refused(authenticator, forged[0], "'made-up-0', which is not among the signing keys")
    results = await asyncio.gather(*(authenticator.authenticate(t) for t in forged[1:]), return_exceptions=True)
    assert all(isinstance(result, AuthenticationError) for result in results)
    # One refetch for the first unknown kid; none for the others within the interval.
    assert idp.jwks_requests == 2
    assert MISS_REFETCH_INTERVAL >= 30


async def test_concurrent_first_requests_share_one_fetch(idp: FakeIdP, authenticator: OIDCAuthenticator) -> None:
    tokens = [idp.token(sub=f"user-{n}") for n in range(20)]
    principals = await asyncio.gather(*(authenticator.authenticate(t) for t in tokens))
    assert [p.user_id for p in principals] == [f"user-{n}" for n in range(20)]
    assert (idp.discovery_requests, idp.jwks_requests) == (1, 1)


async def test_token_without_kid_is_verified_when_the_provider_has_one_key(
    idp: FakeIdP, authenticator: OIDCAuthenticator
) -> None:
    assert (await authenticator.authenticate(idp.sign(idp.claims(), kid=None))).user_id == "user-alice"


async def test_jwks_url_setting_skips_discovery(idp: FakeIdP) -> None:
    verifier = OIDCAuthenticator(oidc_settings(idp, jwks_url=f"{idp.issuer}/jwks.json"))
    try:
        assert await verifier.authenticate(idp.token())
    finally:
        await verifier.aclose()
    assert (idp.discovery_requests, idp.jwks_requests) == (0, 1)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


async def test_unreachable_discovery_is_a_clear_error(idp: FakeIdP) -> None:
    issuer = closed_port_url()
    verifier = OIDCAuthenticator(OIDCSettings(issuer=issuer, audience=CLIENT_ID))
    token = jwt.encode(idp.claims(iss=issuer), idp.keys[0].private, algorithm="RS256", headers={"kid": "key-1"})
    try:
        with pytest.raises(IdentityProviderUnavailable) as caught:
            await verifier.authenticate(token)
    finally:
        await verifier.aclose()
    message = str(caught.value)
    assert f"{issuer}/.well-known/openid-configuration" in message
    assert "check oidc.issuer" in message and "can reach the provider" in message
    assert token not in message


async def test_provider_outage_costs_it_one_request_per_backoff_and_recovery_needs_no_restart(
    idp: FakeIdP, authenticator: OIDCAuthenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    idp.discovery_failure = 502
    for n in range(10):
        await refused(authenticator, idp.token(sub=f"user-{n}"), "answered HTTP 502; check oidc.issuer")
    assert idp.discovery_requests == 1
    idp.discovery_failure = None
    monkeypatch.setattr(oidc_keys, "FAILURE_BACKOFF", 0.0)  # as if the backoff had passed
    assert (await authenticator.authenticate(idp.token(sub="back"))).user_id == "back"
    assert idp.discovery_requests == 2


async def test_discovery_naming_another_issuer_is_a_clear_error(idp: FakeIdP) -> None:
    verifier = OIDCAuthenticator(OIDCSettings(issuer=f"{idp.issuer}/", audience=CLIENT_ID))
    try:
        message = await refused(verifier, idp.token(iss=f"{idp.issuer}/"), f"names the issuer {idp.issuer!r}")
    finally:
        await verifier.aclose()
    assert "set oidc.issuer to exactly the issuer" in message


# Settings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "settings"),
    [("oidc.issuer and oidc.audience", {}), ("oidc.audience", {"issuer": "https://idp.example"})],
)
def test_oidc_without_issuer_or_audience_fails_at_start_with_the_fix(
    tmp_path: Path, missing: str, settings: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match=f"needs {missing}: set oidc.issuer"):
        create_app(Settings(data_dir=tmp_path, auth="oidc", oidc=OIDCSettings(**settings)))


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_symmetric_or_no_algorithm_cannot_be_allowed(algorithm: str) -> None:
    settings = OIDCSettings(issuer="https://idp.example", audience="app", algorithms=["RS256", algorithm])
    with pytest.raises(ConfigError, match=f"remove '{algorithm}'"):
        validate_oidc_settings(settings)


def test_issuer_must_use_tls_unless_on_this_machine() -> None:
    with pytest.raises(ConfigError, match="not an https:// URL"):
        validate_oidc_settings(OIDCSettings(issuer="http://idp.example", audience="app"))


# Through a real server ------------------------------------------------------------------------------------


@pytest.fixture
def server(idp: FakeIdP, tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path / "data", auth="oidc", oidc=oidc_settings(idp), default_model="scripted/echo")
    chat = make_service(settings, ScriptedProvider(["Hello."]))
    with LiveServer(create_app(settings, service=chat, close_service=True)) as live:
        yield live


def test_server_answers_401_with_www_authenticate_without_a_valid_token(idp: FakeIdP, server: LiveServer) -> None:
    bad = idp.token(aud="some-other-app")
    for headers in ({}, {"authorization": "Bearer not-a-jwt"}, {"authorization": f"Bearer {bad}"}):
        response = httpx.get(f"{server.url}/api/sessions", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["message"]
        assert bad not in response.text


def test_server_serves_the_caller_of_a_valid_token(idp: FakeIdP, server: LiveServer) -> None:
    alice = {"authorization": f"Bearer {idp.token(sub='alice')}"}
    bob = {"authorization": f"Bearer {idp.token(sub='bob')}"}
    created = httpx.post(f"{server.url}/api/sessions", json={}, headers=alice)
    assert created.status_code == 201
    assert [s["id"] for s in httpx.get(f"{server.url}/api/sessions", headers=alice).json()] == [created.json()["id"]]
    assert httpx.get(f"{server.url}/api/sessions", headers=bob).json() == []
    access = idp.token(sub="alice", aud=None, token_use="access", client_id=CLIENT_ID)
    models = httpx.get(f"{server.url}/v1/models", headers={"authorization": f"Bearer {access}"})
    assert models.status_code == 200


def test_auth_config_tells_the_page_how_to_sign_in(idp: FakeIdP, server: LiveServer) -> None:
    config = httpx.get(f"{server.url}/api/auth/config")
    assert config.status_code == 200
    assert config.json() == {
        "mode": "oidc",
        "oidc": {
            "authorization_endpoint": f"{idp.issuer}/authorize",
            "token_endpoint": f"{idp.issuer}/token",
            "end_session_endpoint": f"{idp.issuer}/logout",
            "client_id": CLIENT_ID,
            "scopes": ["openid", "email", "profile"],
            "token": "id_token",
        },
    }


def test_page_may_connect_to_the_token_endpoint_and_nowhere_else(idp: FakeIdP, server: LiveServer) -> None:
    for path in ("/", "/chat/some-id", "/auth/callback?code=x&state=y"):
        csp = httpx.get(f"{server.url}{path}").headers["content-security-policy"]
        assert f"connect-src 'self' {idp.issuer};" in csp
        assert "frame-ancestors 'none'" in csp


def test_without_oidc_the_page_connects_only_to_itself(tmp_path: Path) -> None:
    with LiveServer(create_app(Settings(data_dir=tmp_path), service=make_service(Settings(data_dir=tmp_path)))) as live:
        assert httpx.get(f"{live.url}/api/auth/config").json() == {"mode": "none", "oidc": None}
        assert "connect-src 'self';" in httpx.get(live.url).headers["content-security-policy"]


def test_unreachable_provider_answers_503_with_the_reason(idp: FakeIdP, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth="oidc", oidc=OIDCSettings(issuer=closed_port_url(), audience="app"))
    with LiveServer(create_app(settings, service=make_service(settings))) as live:
        config = httpx.get(f"{live.url}/api/auth/config")
        assert config.status_code == 503
        assert "Cannot fetch the discovery document" in config.json()["error"]["message"]
        token = idp.token(iss=settings.oidc.issuer, aud="app")
        response = httpx.get(f"{live.url}/api/sessions", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 503
        assert "check oidc.issuer" in response.json()["error"]["message"]
        assert "connect-src 'self';" in httpx.get(live.url).headers["content-security-policy"]
