"""`GET /api/me`: who the server thinks the caller is, for any authenticated caller."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from genai_chatbot.api.deps import Caller
from genai_chatbot.auth.principal import Role

router = APIRouter(prefix="/api", tags=["Account"])


class MeOut(BaseModel):
    user_id: str = Field(description="The id that owns your sessions.")
    role: Role
    groups: list[str]
    method: str = Field(description='How you signed in: "none", "api-key", "settings-token" or "oidc".')


@router.get("/me", response_model=MeOut)
async def me(caller: Caller) -> MeOut:
    """The caller's user id, role and groups."""
    return MeOut(user_id=caller.user_id, role=caller.role, groups=list(caller.groups), method=caller.method)
