"""`GovernanceStore` on the `PREFIX-governance` DynamoDB table (layout in `chat.dynamodb_tables`).

Groups live in one partition (`pk = group`, sorted by name): listing them is one strongly consistent Query.
`MAX_STORED_GROUPS` holds across replicas and admins at once: a new group is added in one transaction with
an increment of the count item (`pk = groups`) on condition that the count is below the bound, and a group
is deleted with its decrement; replacing an existing group's policy leaves the count as it is.

The audit log is one partition too (`pk = audit`), its sort key the entry's time (fixed width, so text order
is time order) and a random 53-bit id (unique: written only if absent): a total order, newest first by a
backwards Query. `since` is a key condition; `actor` and `action` are filters, so a listing reads pages until
it has `limit` entries or the log ends. One partition takes 1,000 writes a second: far above the rate of
admin actions and sign-ins.
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

from genai_chatbot.chat.dynamodb_db import Item, cancellation_codes, is_code, number
from genai_chatbot.chat.dynamodb_tables import CheckedTable
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.governance.store import (
    MAX_STORED_GROUPS,
    AuditEntry,
    StoredGroup,
    UnknownGroupError,
    policy_json,
    too_many_groups,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_COUNT_KEY: Item = {"pk": {"S": "groups"}, "sk": {"S": "count"}}
_ATTEMPTS = 10


def _group_key(name: str) -> Item:
    return {"pk": {"S": "group"}, "sk": {"S": name}}


def _group(item: dict[str, Any]) -> StoredGroup:
    return StoredGroup(
        name=item["sk"]["S"],
        policy=GroupPolicy.model_validate_json(item["policy"]["S"]),
        updated_at=float(item["updated_at"]["N"]),
        updated_by=item["updated_by"]["S"],
    )


def _time_key(at: float) -> str:
    """`at` as fixed-width text (17 characters up to the year 5138), so text order is time order."""
    return f"{at:017.6f}"


def _entry(item: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=int(item["sk"]["S"].partition("#")[2]),
        at=float(item["at"]["N"]),
        actor=item["actor"]["S"],
        action=item["action"]["S"],
        target=item["target"]["S"],
        detail=json.loads(item["detail"]["S"]),
    )


class DynamoDBGovernanceStore:
    """`GovernanceStore` on the governance table of `dynamodb://PREFIX`; checks it at `open()` or first call."""

    def __init__(self, prefix: str) -> None:
        self._table = CheckedTable(prefix, 2)
        self._name = self._table.name

    def __repr__(self) -> str:
        return f"DynamoDBGovernanceStore({self._table.db.prefix!r})"

    async def open(self) -> None:
        await self._table.open()

    async def put_group(self, name: str, policy: GroupPolicy, actor: str) -> StoredGroup:
        group = StoredGroup(name, policy, time.time(), actor)
        item: Item = {
            **_group_key(name),
            "policy": {"S": policy_json(policy)},
            "updated_at": number(group.updated_at),
            "updated_by": {"S": actor},
        }

        def work(client: DynamoDBClient) -> None:
            for _ in range(_ATTEMPTS):
                exists = "Item" in client.get_item(
                    TableName=self._name, Key=_group_key(name), ConsistentRead=True, ProjectionExpression="pk"
                )
                condition = "attribute_exists(pk)" if exists else "attribute_not_exists(pk)"
                ops: list[TransactWriteItemTypeDef] = [
                    {"Put": {"TableName": self._name, "Item": item, "ConditionExpression": condition}}
                ]
                if not exists:
                    ops.append(_count_change(self._name, +1))
                try:
                    client.transact_write_items(TransactItems=ops)
                    return
                except Exception as exc:
                    codes = cancellation_codes(exc)
                    if not codes:
                        raise
                    if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                        too_many_groups(MAX_STORED_GROUPS)  # raises: the bound is reached
                    # the group was added or deleted meanwhile, or a conflict: read again
            raise RuntimeError(f"Group {name!r} kept changing while it was set; try again.")

        await self._table.run(work)
        return group

    async def delete_group(self, name: str) -> StoredGroup:
        def work(client: DynamoDBClient) -> StoredGroup:
            for _ in range(_ATTEMPTS):
                item = client.get_item(TableName=self._name, Key=_group_key(name), ConsistentRead=True).get("Item")
                if item is None:
                    raise UnknownGroupError(name)
                delete: TransactWriteItemTypeDef = {
                    "Delete": {
                        "TableName": self._name,
                        "Key": _group_key(name),
                        "ConditionExpression": "updated_at = :read",
                        "ExpressionAttributeValues": {":read": item["updated_at"]},
                    }
                }
                try:
                    client.transact_write_items(TransactItems=[delete, _count_change(self._name, -1)])
                    return _group(item)
                except Exception as exc:
                    if not cancellation_codes(exc):
                        raise
            raise RuntimeError(f"Group {name!r} kept changing while it was deleted; try again.")

        return await self._table.run(work)

    async def list_groups(self) -> list[StoredGroup]:
        def work(client: DynamoDBClient) -> list[StoredGroup]:
            pages = client.get_paginator("query").paginate(
                TableName=self._name,
                KeyConditionExpression="pk = :group",
                ExpressionAttributeValues={":group": {"S": "group"}},
                ConsistentRead=True,
            )
            return [_group(item) for page in pages for item in page.get("Items", [])]

        return await self._table.run(work)

    async def append_audit(self, entry: AuditEntry) -> None:
        def work(client: DynamoDBClient) -> None:
            for _ in range(_ATTEMPTS):
                item: Item = {
                    "pk": {"S": "audit"},
                    "sk": {"S": f"{_time_key(entry.at)}#{random.getrandbits(53):016d}"},
                    "at": number(entry.at),
                    "actor": {"S": entry.actor},
                    "action": {"S": entry.action},
                    "target": {"S": entry.target},
                    "detail": {"S": entry.detail_json()},
                }
                try:
                    client.put_item(TableName=self._name, Item=item, ConditionExpression="attribute_not_exists(pk)")
                    return
                except Exception as exc:
                    if not is_code(exc, "ConditionalCheckFailedException"):
                        raise  # else the same time and id: draw another id

        await self._table.run(work)

    async def list_audit(
        self, *, limit: int = 100, since: float | None = None, actor: str | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {":audit": {"S": "audit"}}
        key = "pk = :audit"
        filters = []
        if since is not None:  # the key narrows to the microsecond, the filter decides exactly
            key += " AND sk >= :since"
            values[":since"] = {"S": _time_key(since)}
            filters.append("#at >= :at")
            names["#at"] = "at"
            values[":at"] = number(since)
        for field, value in (("actor", actor), ("action", action)):
            if value is not None:
                filters.append(f"#{field} = :{field}")
                names[f"#{field}"] = field
                values[f":{field}"] = {"S": value}
        query: dict[str, Any] = {
            "TableName": self._name,
            "KeyConditionExpression": key,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        if filters:
            query |= {"FilterExpression": " AND ".join(filters), "ExpressionAttributeNames": names}
        else:
            query["Limit"] = limit  # every entry read is one returned: read no more than asked

        def work(client: DynamoDBClient) -> list[AuditEntry]:
            entries: list[AuditEntry] = []
            for page in client.get_paginator("query").paginate(**query):
                entries.extend(_entry(item) for item in page.get("Items", []))
                if len(entries) >= limit:
                    break
            return entries[:limit]

        return await self._table.run(work)

    async def close(self) -> None:
        await self._table.close()


def _count_change(table: str, by: int) -> TransactWriteItemTypeDef:
    """ADD `by` to the count of groups; adding one only while the count is below `MAX_STORED_GROUPS`."""
    update: Any = {
        "TableName": table,
        "Key": _COUNT_KEY,
        "UpdateExpression": "ADD n :by",
        "ExpressionAttributeValues": {":by": {"N": str(by)}},
    }
    if by > 0:
        update["ConditionExpression"] = "attribute_not_exists(n) OR n < :max"
        update["ExpressionAttributeValues"][":max"] = {"N": str(MAX_STORED_GROUPS)}
    return {"Update": update}
