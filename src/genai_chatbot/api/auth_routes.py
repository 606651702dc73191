"""`GET /api/auth/config`: how the web page signs in. Public, since the page needs it before it has a token.

With `auth = "oidc"` the page signs in through the provider with the authorization code flow and PKCE (S256),
as a public client, and **redeems the code itself**, from the browser, at the provider's token endpoint.
We chose that over exchanging the code on this server because:

- the tokens go from the provider straight to the page; this server only ever sees them as bearer tokens,
  exactly as it sees the tokens of any other client;
- the server needs no public endpoint that makes it call out to another host on behalf of anyone at all;
- it is the flow the four providers document for single-page apps (Cognito app clients without a secret,
  Okta and Entra ID "single-page application" registrations, Keycloak public clients), whose token
  endpoints answer cross-origin requests.

The price is one origin in the page's Content-Security-Policy: `connect-src` gains exactly the token
endpoint's origin (`token_endpoint_origin`), and only when `oidc` is on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from genai_chatbot.api.errors import error_body
from genai_chatbot.auth.factory import auth_mode
from genai_chatbot.auth.principal import AuthenticationUnavailable
from genai_chatbot.config import AuthMode, Settings

if TYPE_CHECKING:  # the oidc extra (PyJWT) is imported only when `auth = "oidc"`
    from genai_chatbot.auth.oidc import OIDCAuthenticator

router = APIRouter(tags=["Authentication"])

# An origin as it may appear in a CSP source list: nothing that could end the directive or add another.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


class OIDCClientConfig(BaseModel):
    """What the page needs to sign in through the provider (endpoints from its discovery document)."""

    authorization_endpoint: str
    token_endpoint: str
    end_session_endpoint: str | None = None
    client_id: str
    scopes: list[str]
    #: The token the page sends as its bearer token: the ID token when its audience (the page's client id)
    #: is `oidc.audience`, else the access token (e.g. Okta's custom authorization servers: `api://default`).
    token: Literal["id_token", "access_token"]


class AuthConfig(BaseModel):
    """How this server authenticates: `none`, `api-keys` (paste a key once) or `oidc` (sign in via provider)."""

    mode: AuthMode
    oidc: OIDCClientConfig | None = None


def oidc_authenticator(app: FastAPI) -> OIDCAuthenticator | None:
    """The app's OIDC authenticator (`app.state.authenticator`), when `auth = "oidc"`."""
    settings: Settings = app.state.settings
    if settings.auth != "oidc":
        return None
    from genai_chatbot.auth.oidc import OIDCAuthenticator

    authenticator = getattr(app.state, "authenticator", None)
    return authenticator if isinstance(authenticator, OIDCAuthenticator) else None


async def oidc_client_config(authenticator: OIDCAuthenticator) -> OIDCClientConfig:
    """The sign-in parameters for the page; `AuthenticationUnavailable` when discovery fails."""
    document = await authenticator.keys.discovery()
    endpoints = {name: document.get(name) for name in ("authorization_endpoint", "token_endpoint")}
    absent = [name for name, value in endpoints.items() if not isinstance(value, str) or not value]
    if absent:
        raise AuthenticationUnavailable(
            f"The discovery document of {authenticator.issuer} has no {' or '.join(absent)};"
            " the web page cannot sign in through this provider (API clients with tokens still work)."
        )
    end_session = document.get("end_session_endpoint")
    client_id = authenticator.settings.client_id or authenticator.audience
    return OIDCClientConfig(
        authorization_endpoint=str(endpoints["authorization_endpoint"]),
        token_endpoint=str(endpoints["token_endpoint"]),
        end_session_endpoint=end_session if isinstance(end_session, str) and end_session else None,
        client_id=client_id,
        scopes=authenticator.settings.scopes,
        token="id_token" if client_id == authenticator.audience else "access_token",
    )


async def token_endpoint_origin(app: FastAPI) -> str | None:
    """The origin the page must be allowed to `fetch` (its CSP `connect-src`): the token endpoint's, or None.

    None when OIDC is off or discovery fails now (the page then reports the failure from `/api/auth/config`).
    """
    authenticator = oidc_authenticator(app)
    if authenticator is None:
        return None
    try:
        config = await oidc_client_config(authenticator)
    except AuthenticationUnavailable:
        return None
    parts = urlsplit(config.token_endpoint)
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin if _ORIGIN.match(origin) else None


@router.get("/api/auth/config", response_model=AuthConfig)
async def auth_config(request: Request) -> AuthConfig | JSONResponse:
    """How the page signs in; with `oidc`, the provider's endpoints and the public client id (PKCE, S256)."""
    settings: Settings = request.app.state.settings
    authenticator = oidc_authenticator(request.app)
    if settings.auth != "oidc" or authenticator is None:
        return AuthConfig(mode=auth_mode(settings))  # the deprecated `users` map alone turns api-keys on
    try:
        return AuthConfig(mode="oidc", oidc=await oidc_client_config(authenticator))
    except AuthenticationUnavailable as exc:
        return JSONResponse(
            error_body(str(exc), "service_unavailable", None, "identity_provider_unavailable"), status_code=503
        )
