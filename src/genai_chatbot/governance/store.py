"""Group policies set at run time and the audit log, as records, and the `GovernanceStore` contract.

Both live in the history database (`database_url`), beside users and keys, so that every replica and the
CLI see one truth: a group an admin changes reaches every replica within the policy cache period
(`policies.POLICY_CACHE_SECONDS`), and the audit log has one order. SQLite and PostgreSQL implement the
contract (`sqlite_store.py`, `postgres_store.py`) from the history schema's migration 5.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from genai_chatbot.auth.users import GROUP_NAME
from genai_chatbot.governance.settings import GroupPolicy

#: Groups an admin may set at run time, at most; each is read by every replica every cache period.
MAX_STORED_GROUPS = 1000
#: At most this many audit entries in one answer (`GET /api/admin/audit`, `genai-chatbot audit`).
MAX_AUDIT_LIMIT = 1000
#: The columns of the SQL tables `group_policies` and `audit_log` (SQLite and PostgreSQL alike).
GROUP_COLUMNS = "name, policy_json, updated_at, updated_by"
AUDIT_COLUMNS = "id, at, actor, action, target, detail_json"


class GovernanceStoreError(ValueError):
    """A group policy or audit request that cannot be done; the message says why and what to do."""


class UnknownGroupError(GovernanceStoreError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"No policy was set for group {name!r} at run time; 'genai-chatbot groups list' shows the groups "
            "(those of the settings file are changed there)."
        )


def check_group_name(name: str) -> str:
    """`name` when it is a valid group name (as users' groups are); `GovernanceStoreError` otherwise."""
    if not GROUP_NAME.match(name):
        raise GovernanceStoreError(
            f"Invalid group name {name[:60]!r}: use 1-128 letters, digits, spaces and '._@/:-', starting with "
            "a letter, digit or '/'."
        )
    return name


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """A group's policy as an admin set it at run time: it replaces `[groups.NAME]` of the settings."""

    name: str
    policy: GroupPolicy
    updated_at: float
    updated_by: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action or sign-in: who (`actor`, a user id or `cli:<OS user>`), what, to what, when.

    `detail` is what changed, as JSON-able values; it never holds a key, a token or a secret (a key is
    named by its public prefix).
    """

    actor: str
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    id: int | None = None

    def detail_json(self) -> str:
        return json.dumps(self.detail, sort_keys=True, separators=(",", ":"))


def cli_actor() -> str:
    """`cli:<OS user>`: who ran an admin command on this machine (the database file is theirs to change)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        name = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{name}"


def policy_json(policy: GroupPolicy) -> str:
    """What a row stores of a policy: the fields the admin set (absent ones keep their defaults)."""
    return policy.model_dump_json(exclude_defaults=True)


def stored_group(row: dict[str, Any]) -> StoredGroup:
    """A `group_policies` row as a record, validated as the admin API validates a body."""
    return StoredGroup(
        name=row["name"],
        policy=GroupPolicy.model_validate_json(row["policy_json"]),
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


def audit_entry(row: dict[str, Any]) -> AuditEntry:
    """An `audit_log` row as a record."""
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        detail=json.loads(row["detail_json"]),
    )


def too_many_groups(others: int) -> None:
    """Refuse one more group when `others` groups are set already, with what to do."""
    if others >= MAX_STORED_GROUPS:
        raise GovernanceStoreError(
            f"At most {MAX_STORED_GROUPS} groups may be set at run time; delete unused ones first "
            "('genai-chatbot groups delete NAME')."
        )


def audit_query(
    *, since: float | None, actor: str | None, action: str | None, placeholder: str
) -> tuple[str, list[object]]:
    """The WHERE clause (with its leading space, or empty) and values of an audit listing's filters."""
    conditions: list[str] = []
    values: list[object] = []
    for column, value in (("at >=", since), ("actor =", actor), ("action =", action)):
        if value is not None:
            conditions.append(f"{column} {placeholder}")
            values.append(value)
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), values


class GovernanceStore(Protocol):
    """Where run-time group policies and the audit log live; errors are `GovernanceStoreError` with the fix."""

    async def put_group(self, name: str, policy: GroupPolicy, actor: str) -> StoredGroup:
        """Set (replace) the group's run-time policy; `GovernanceStoreError` beyond `MAX_STORED_GROUPS`."""
        ...

    async def delete_group(self, name: str) -> StoredGroup:
        """Remove the group's run-time policy and return it; `UnknownGroupError` when there is none."""
        ...

    async def list_groups(self) -> list[StoredGroup]:
        """Every group set at run time, by name."""
        ...

    async def append_audit(self, entry: AuditEntry) -> None:
        """Append one entry to the audit log."""
        ...

    async def list_audit(
        self, *, limit: int = 100, since: float | None = None, actor: str | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        """The newest `limit` entries (newest first) at or after `since`, of `actor` and `action` if given."""
        ...

    async def close(self) -> None: ...
