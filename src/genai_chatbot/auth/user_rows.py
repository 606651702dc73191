"""A user as a row of the SQL `users` table, the same in SQLite and PostgreSQL: columns and values."""

from __future__ import annotations

import json

from genai_chatbot.auth.users import UserAccount
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
