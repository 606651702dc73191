"""Admin endpoints under `/api/admin`: users, API keys and diagnostics. Anyone else gets 403.

They do what `genai-chatbot users` and `keys` do, over HTTP. Changes here reach the key cache of this
server at once; the CLI's reach it within the cache period (10 s). Every change is appended to the audit
log (`governance/audit.py`) with the admin's user id; keys by their prefix only.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from genai_chatbot.api.deps import Admin, Audit, Service, Users
from genai_chatbot.auth.api_keys import ApiKeyAuthenticator, new_api_key, prefix_of
from genai_chatbot.auth.factory import auth_mode
from genai_chatbot.auth.principal import Role
from genai_chatbot.auth.users import (
    GROUP_NAME,
    USER_NAME,
    ApiKeyRecord,
    UnknownUserError,
    UserAccount,
    UserStoreError,
)
from genai_chatbot.config import AuthMode, Settings
from genai_chatbot.governance.build import forget_user_limits
from genai_chatbot.governance.settings import Limits

router = APIRouter(prefix="/api/admin", tags=["Admin"])

DAY = 86_400.0
GroupName = Annotated[str, Field(pattern=GROUP_NAME.pattern, description="1-128 letters, digits, spaces, '._@/:-'.")]


class UserOut(BaseModel):
    name: str
    role: Role
    groups: list[str]
    disabled: bool
    created_at: float
    limits: Limits | None = Field(description="The user's own budgets and rate limits; null: none.")

    @classmethod
    def of(cls, user: UserAccount) -> UserOut:
        return cls(
            name=user.name,
            role=user.role,
            groups=list(user.groups),
            disabled=user.disabled,
            created_at=user.created_at,
            limits=user.limits,
        )


class UserCreate(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(pattern=USER_NAME.pattern, description="The user id; letters, digits and '._@-'.")
    role: Role = "user"
    groups: list[GroupName] = Field(default_factory=list, max_length=100)


class UserUpdate(BaseModel):
    model_config = {"extra": "forbid"}

    role: Role | None = None
    groups: list[GroupName] | None = Field(default=None, max_length=100)
    disabled: bool | None = None
    limits: Limits | None = Field(
        default=None,
        description="Replaces the user's own budgets and rate limits ({} removes them); other servers apply "
        "them within 10 s.",
    )


class KeyOut(BaseModel):
    """A key as it may be shown: its prefix and dates, never its secret."""

    prefix: str
    user: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    @classmethod
    def of(cls, key: ApiKeyRecord) -> KeyOut:
        return cls(
            prefix=key.prefix,
            user=key.user,
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class KeyCreate(BaseModel):
    model_config = {"extra": "forbid"}

    expires_in_days: float | None = Field(default=None, gt=0, le=36_500, description="None: never expires.")


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself, shown this once; only its hash is stored.")


class KeySourceOut(BaseModel):
    description: str
    names: list[str] = Field(description="Names of the keys this source gave; never their values.")
    error: str | None


class DiagnosticsOut(BaseModel):
    auth: AuthMode
    users: int
    key_sources: list[KeySourceOut]


def _forget_cached_keys(request: Request) -> None:
    authenticator = request.app.state.authenticator
    if isinstance(authenticator, ApiKeyAuthenticator):
        authenticator.forget()


@router.get("/users", response_model=list[UserOut])
async def list_users(_: Admin, users: Users) -> list[UserOut]:
    """Every user of API keys, by name."""
    return [UserOut.of(u) for u in await users.list_users()]


@router.post("/users", response_model=UserOut, status_code=201)
async def add_user(body: UserCreate, admin: Admin, users: Users, audit: Audit) -> UserOut:
    """Add a user; 409 when the name is taken."""
    user = UserAccount(name=body.name, role=body.role, groups=tuple(body.groups))
    await users.add_user(user)
    await audit.record(admin.user_id, "user.add", user.name, {"role": user.role, "groups": list(user.groups)})
    return UserOut.of(user)


@router.patch("/users/{name}", response_model=UserOut)
async def update_user(
    name: str, body: UserUpdate, request: Request, admin: Admin, users: Users, audit: Audit
) -> UserOut:
    """Change a user's role, groups or own limits, or disable (`disabled: true`) or enable them."""
    groups = tuple(body.groups) if body.groups is not None else None
    user = await users.update_user(name, role=body.role, groups=groups, disabled=body.disabled, limits=body.limits)
    _forget_cached_keys(request)
    await audit.record(admin.user_id, "user.update", name, body.model_dump(exclude_none=True))
    forget_user_limits(request.app.state.service.governor, name)
    return UserOut.of(user)


@router.get("/users/{name}/keys", response_model=list[KeyOut])
async def list_keys(name: str, _: Admin, users: Users) -> list[KeyOut]:
    """The user's keys by prefix, revoked and expired ones included."""
    return [KeyOut.of(k) for k in await users.list_keys(name)]


@router.post("/users/{name}/keys", response_model=KeyCreated, status_code=201)
async def create_key(name: str, body: KeyCreate, admin: Admin, users: Users, audit: Audit) -> KeyCreated:
    """A new key for the user, returned this once."""
    user = await users.get_user(name)
    if user is None:
        raise UnknownUserError(name)
    if user.disabled:
        raise UserStoreError(f"User {name!r} is disabled; enable them first (PATCH with disabled: false).")
    now = time.time()
    expires_at = now + body.expires_in_days * DAY if body.expires_in_days is not None else None
    key, record = new_api_key(name, expires_at, now)
    await users.add_key(record)
    await audit.record(admin.user_id, "key.create", name, {"prefix": record.prefix, "expires_at": expires_at})
    return KeyCreated(key=key, **KeyOut.of(record).model_dump())


@router.delete("/keys/{prefix}", response_model=KeyOut)
async def revoke_key(prefix: str, request: Request, admin: Admin, users: Users, audit: Audit) -> KeyOut:
    """Revoke a key by its prefix; it stops working at once on this server."""
    key = await users.revoke_key(prefix_of(prefix), time.time())
    _forget_cached_keys(request)
    await audit.record(admin.user_id, "key.revoke", key.user, {"prefix": key.prefix})
    return KeyOut.of(key)


@router.get("/diagnostics", response_model=DiagnosticsOut)
async def diagnostics(request: Request, _: Admin, users: Users, service: Service) -> DiagnosticsOut:
    """How authentication is set up, and each source of provider keys: key names and errors, no values."""
    settings: Settings = request.app.state.settings
    sources = await service.key_sources()
    return DiagnosticsOut(
        auth=auth_mode(settings),
        users=len(await users.list_users()),
        key_sources=[KeySourceOut(description=s.description, names=list(s.names), error=s.error) for s in sources],
    )
