"""FastAPI dependencies: the chat service and the current user, injected instead of reached for.

They are `async def` although they do not await: FastAPI runs a plain `def` dependency in a worker thread,
and three thread hops per request were a fifth of the server's CPU on the streaming benchmark.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from genai_chatbot.auth.principal import AuthenticationError, AuthenticationUnavailable, Principal
from genai_chatbot.chat.service import ChatService
from genai_chatbot.config import Settings

ANONYMOUS_USER = "default"


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_service(request: Request) -> ChatService:
    service: ChatService = request.app.state.service
    return service


async def current_user(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> str:
    """The user this request acts for: from its bearer token when users are configured, else `default`."""
    if settings.auth == "oidc":  # minimal OIDC wiring; the authenticator factory replaces this branch
        return (await _oidc_principal(request)).user_id
    if not settings.users:
        return ANONYMOUS_USER
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        for known, user in settings.users.items():
            if secrets.compare_digest(known.encode(), token.strip().encode()):
                return user
    raise HTTPException(
        status_code=401,
        detail="Missing or unknown API token: send 'Authorization: Bearer <token>' with a token from settings.users.",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _oidc_principal(request: Request) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status_code=401,
            detail="Sign in: send 'Authorization: Bearer <token>' with a token of the identity provider.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal: Principal = await request.app.state.authenticator.authenticate(token.strip())
    except AuthenticationUnavailable as exc:  # the provider is unreachable: the token may well be fine
        raise HTTPException(status_code=503, detail=str(exc)) from None
    except AuthenticationError as exc:
        raise HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    return principal


Service = Annotated[ChatService, Depends(get_service)]
User = Annotated[str, Depends(current_user)]
