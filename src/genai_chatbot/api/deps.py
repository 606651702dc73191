"""FastAPI dependencies: the chat service and the caller, injected instead of reached for.

They are `async def` although most do not await: FastAPI runs a plain `def` dependency in a worker thread,
and three thread hops per request were a fifth of the server's CPU on the streaming benchmark. FastAPI
caches a dependency per request, so a route that asks for `User` and `Admin` authenticates once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from genai_chatbot.auth.principal import (
    ANONYMOUS_USER,
    AuthenticationError,
    Authenticator,
    PermissionDeniedError,
    Principal,
)
from genai_chatbot.auth.users import UserStore
from genai_chatbot.chat.service import ChatService
from genai_chatbot.config import Settings
from genai_chatbot.governance.audit import AuditTrail
from genai_chatbot.governance.store import GovernanceStore

#: With `auth = "none"` every request is the one local user, who owns the server (it listens on loopback
#: only) and so may use the admin endpoints: refresh models, see why a model is unavailable, manage users.
LOCAL_PRINCIPAL = Principal(ANONYMOUS_USER, "admin", method="none")

_NO_TOKEN = {
    "api-keys": "This server requires an API key: send 'Authorization: Bearer <key>' (the OpenAI SDK does so "
    "with api_key=<key>); an admin creates keys with 'genai-chatbot keys create NAME'.",
    "oidc": "Sign in: send 'Authorization: Bearer <token>' with a token of the identity provider "
    "(the web page signs in by itself; the OpenAI SDK sends api_key=<token>).",
}


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_service(request: Request) -> ChatService:
    service: ChatService = request.app.state.service
    return service


async def get_user_store(request: Request) -> UserStore:
    users: UserStore = request.app.state.users
    return users


async def get_governance_store(request: Request) -> GovernanceStore:
    store: GovernanceStore = request.app.state.governance
    return store


async def get_audit(request: Request) -> AuditTrail:
    audit: AuditTrail = request.app.state.audit
    return audit


async def current_principal(request: Request) -> Principal:
    """Who is calling: the principal of the bearer token, or the local user when `auth` is `none`.

    A missing or invalid token raises `AuthenticationError` (401 with `WWW-Authenticate: Bearer`).
    """
    authenticator: Authenticator | None = request.app.state.authenticator
    if authenticator is None:
        return LOCAL_PRINCIPAL
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError(_NO_TOKEN["oidc" if request.app.state.settings.auth == "oidc" else "api-keys"])
    principal = await authenticator.authenticate(token)
    await request.app.state.audit.signed_in(principal)  # a dictionary lookup, unless first this hour
    return principal


async def current_user(principal: Annotated[Principal, Depends(current_principal)]) -> str:
    """The caller's user id, which scopes every session query."""
    return principal.user_id


async def current_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller, when an admin; `PermissionDeniedError` (403) otherwise."""
    if not principal.is_admin:
        raise PermissionDeniedError(
            f"This needs the admin role; {principal.user_id!r} has role {principal.role!r}. Ask an admin to do it."
        )
    return principal


Service = Annotated[ChatService, Depends(get_service)]
Users = Annotated[UserStore, Depends(get_user_store)]
Governance = Annotated[GovernanceStore, Depends(get_governance_store)]
Audit = Annotated[AuditTrail, Depends(get_audit)]
Caller = Annotated[Principal, Depends(current_principal)]
User = Annotated[str, Depends(current_user)]
Admin = Annotated[Principal, Depends(current_admin)]
