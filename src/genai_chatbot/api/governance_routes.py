"""Admin endpoints for governance: group policies set at run time, and the audit log. Others get 403.

Group names may hold `/` (Keycloak sends group paths such as `/team/a`): the routes take the rest of the
path as the name, so `PUT /api/admin/groups//team/a` (or with `%2F`) names `/team/a`.

A group set here replaces the settings' `[groups.NAME]` on every replica: on this one at once, on the
others within the policy cache period (5 s). They do what `genai-chatbot groups` and `audit` do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from genai_chatbot.api.deps import Admin, Audit, Governance, Service, get_settings
from genai_chatbot.config import Settings
from genai_chatbot.governance.build import forget_policies
from genai_chatbot.governance.policies import GroupView, group_views
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.governance.store import MAX_AUDIT_LIMIT, AuditEntry, check_group_name

router = APIRouter(prefix="/api/admin", tags=["Admin"])
SettingsDep = Annotated[Settings, Depends(get_settings)]


class GroupOut(BaseModel):
    """A group's policy in force, and where it comes from: the settings file, an admin, or both."""

    name: str
    policy: GroupPolicy
    source: str = Field(description='"settings", "admin", or "admin over settings" (the admin\'s wins).')
    settings_policy: GroupPolicy | None = Field(description="The settings file's [groups.NAME], if any.")
    updated_at: float | None
    updated_by: str | None

    @classmethod
    def of(cls, view: GroupView) -> GroupOut:
        return cls(
            name=view.name,
            policy=view.policy,
            source=view.source,
            settings_policy=view.settings_policy,
            updated_at=view.updated_at,
            updated_by=view.updated_by,
        )


class AuditOut(BaseModel):
    id: int | None
    at: float = Field(description="When, in seconds since the epoch.")
    actor: str = Field(description="Who: a user id, or cli:<OS user> for the command line.")
    action: str
    target: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditOut:
        return cls(
            id=entry.id, at=entry.at, actor=entry.actor, action=entry.action, target=entry.target, detail=entry.detail
        )


async def _views(settings: Settings, store: Governance) -> list[GroupView]:
    return group_views(settings.groups, await store.list_groups())


@router.get("/groups", response_model=list[GroupOut])
async def list_groups(_: Admin, store: Governance, settings: SettingsDep) -> list[GroupOut]:
    """Every group with a policy: from the settings file or set at run time, by name."""
    return [GroupOut.of(view) for view in await _views(settings, store)]


@router.put("/groups/{name:path}", response_model=GroupOut)
async def put_group(
    name: str, body: GroupPolicy, admin: Admin, store: Governance, audit: Audit, service: Service, settings: SettingsDep
) -> GroupOut:
    """Set the group's whole policy; it replaces the settings' `[groups.NAME]` (fields left out: no limit)."""
    await store.put_group(check_group_name(name), body, admin.user_id)
    forget_policies(service.governor)
    await audit.record(admin.user_id, "group.set", name, {"policy": body.model_dump(exclude_defaults=True)})
    [view] = [v for v in await _views(settings, store) if v.name == name]
    return GroupOut.of(view)


@router.delete("/groups/{name:path}", status_code=204)
async def delete_group(name: str, admin: Admin, store: Governance, audit: Audit, service: Service) -> Response:
    """Remove what was set at run time: the settings' `[groups.NAME]` applies again, if there is one."""
    removed = await store.delete_group(name)
    forget_policies(service.governor)
    detail = {"policy": removed.policy.model_dump(exclude_defaults=True)}
    await audit.record(admin.user_id, "group.delete", name, detail)
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditOut])
async def list_audit(
    _: Admin,
    store: Governance,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_LIMIT)] = 100,
    since: Annotated[datetime | None, Query(description="ISO 8601 date or time (UTC unless it says).")] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
) -> list[AuditOut]:
    """Admin actions and sign-ins, newest first: `limit` of them, at or after `since`, by `actor` or `action`."""
    after = None
    if since is not None:
        after = (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()
    entries = await store.list_audit(limit=limit, since=after, actor=actor, action=action)
    return [AuditOut.of(entry) for entry in entries]
