"""A user as a row of the SQL `users` table, the same in SQLite and PostgreSQL: columns and values."""

from __future__ import annotations

import json

from genai_chatbot.auth.principal import Role
from genai_chatbot.auth.users import UserAccount
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.usage_sql import limits_to_json

USER_COLUMNS = "name, role, groups_json, disabled, created_at, limits_json"


def user_values(user: UserAccount) -> tuple[object, ...]:
    """The values of `USER_COLUMNS` for `user` (a bool `disabled` is stored as 0/1 by SQLite)."""
    return (
        user.name,
        user.role,
        json.dumps(list(user.groups)),
        user.disabled,
        user.created_at,
        limits_to_json(user.limits),
    )


def user_changes(
    role: Role | None, groups: tuple[str, ...] | None, disabled: bool | None, limits: Limits | None
) -> dict[str, object]:
    """The columns an update sets and their values: the fields given (None leaves a field as it is)."""
    changes: dict[str, object] = {}
    if role is not None:
        changes["role"] = role
    if groups is not None:
        changes["groups_json"] = json.dumps(list(groups))
    if disabled is not None:
        changes["disabled"] = disabled
    if limits is not None:
        changes["limits_json"] = limits_to_json(limits)
    return changes


def update_user_statement(changes: dict[str, object], placeholder: str) -> str:
    """`UPDATE users` of the `changes` columns (known column names only) for the user named last."""
    assignments = ", ".join(f"{column} = {placeholder}" for column in changes)
    return f"UPDATE users SET {assignments} WHERE name = {placeholder}"
