"""`UserStore` on the `PREFIX-users` DynamoDB table (layout in `chat.dynamodb_tables`), shared by every replica.

Users live in one partition (`pk = user`, sorted by name): listing them is one ordered Query. A key is
its own item (`pk = key#<prefix>`), so verifying a key is two strongly consistent reads (the key, then its
user); a key is only added in a transaction that checks its user exists. A user's keys are listed from the
`keys_by_user` index, which DynamoDB updates asynchronously: a key just created may show a moment late in
`keys list`, never in signing in. Every change is seen by every replica at its next read (within the key
cache period of the API-key authenticator).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from genai_chatbot.auth.principal import Role
from genai_chatbot.auth.users import (
    ApiKeyRecord,
    DuplicateUserError,
    UnknownKeyError,
    UnknownUserError,
    UserAccount,
    check_own_keys,
    check_role,
)
from genai_chatbot.chat.dynamodb_db import Item, cancellation_codes, is_code, number
from genai_chatbot.chat.dynamodb_items import update_expression
from genai_chatbot.chat.dynamodb_tables import KEYS_BY_USER, CheckedTable
from genai_chatbot.governance.settings import Limits
from genai_chatbot.governance.usage_sql import limits_from_json, limits_to_json

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def _user_key(name: str) -> Item:
    return {"pk": {"S": "user"}, "sk": {"S": name}}


def _key_key(prefix: str) -> Item:
    return {"pk": {"S": f"key#{prefix}"}, "sk": {"S": "key"}}


def _groups(groups: tuple[str, ...]) -> Item:
    return {"groups": {"L": [{"S": group} for group in groups]}}


def _user(item: dict[str, Any]) -> UserAccount:
    return UserAccount(
        name=item["sk"]["S"],
        role=check_role(item["role"]["S"]),
        groups=tuple(group["S"] for group in item["groups"]["L"]),
        disabled=item["disabled"]["BOOL"],
        created_at=float(item["created_at"]["N"]),
        limits=limits_from_json(item["limits"]["S"]) if "limits" in item else None,
    )


def _user_item(user: UserAccount) -> Item:
    item: Item = {
        **_user_key(user.name),
        "role": {"S": user.role},
        **_groups(user.groups),
        "disabled": {"BOOL": user.disabled},
        "created_at": number(user.created_at),
    }
    limits = limits_to_json(user.limits)
    if limits is not None:
        item["limits"] = {"S": limits}
    return item


def _key_item(key: ApiKeyRecord) -> Item:
    item: Item = {
        **_key_key(key.prefix),
        "secret_sha256": {"S": key.secret_hash},
        "user_name": {"S": key.user},
        "created_at": number(key.created_at),
    }
    for name in ("expires_at", "revoked_at", "last_used_at"):
        value = getattr(key, name)
        if value is not None:
            item[name] = number(value)
    return item


def _put_new(table: str, item: Item) -> Any:
    return {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def _time(item: dict[str, Any], name: str) -> float | None:
    return float(item[name]["N"]) if name in item else None


def _key(item: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        prefix=item["pk"]["S"].removeprefix("key#"),
        secret_hash=item["secret_sha256"]["S"],
        user=item["user_name"]["S"],
        created_at=float(item["created_at"]["N"]),
        expires_at=_time(item, "expires_at"),
        revoked_at=_time(item, "revoked_at"),
        last_used_at=_time(item, "last_used_at"),
    )


class DynamoDBUserStore:
    """`UserStore` on the users table of `dynamodb://PREFIX`; checks it at `open()` or at its first call."""

    def __init__(self, prefix: str) -> None:
        self._checked_table = CheckedTable(prefix, 1)
        self._table = self._checked_table.name
        self._run = self._checked_table.run

    def __repr__(self) -> str:
        return f"DynamoDBUserStore({self._checked_table.db.prefix!r})"

    async def open(self) -> None:
        """Check that the users table exists with its index (`genai-chatbot store init` creates it)."""
        await self._checked_table.open()

    def _get_user(self, client: DynamoDBClient, name: str) -> UserAccount | None:
        item = client.get_item(TableName=self._table, Key=_user_key(name), ConsistentRead=True).get("Item")
        return _user(item) if item else None

    async def add_user(self, user: UserAccount) -> None:
        item = _user_item(user)

        def work(client: DynamoDBClient) -> None:
            try:
                client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
            except Exception as exc:
                if is_code(exc, "ConditionalCheckFailedException"):
                    raise DuplicateUserError(user.name) from None
                raise

        await self._run(work)

    async def get_user(self, name: str) -> UserAccount | None:
        return await self._run(lambda client: self._get_user(client, name))

    async def list_users(self) -> list[UserAccount]:
        def work(client: DynamoDBClient) -> list[UserAccount]:
            pages = client.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :users",
                ExpressionAttributeValues={":users": {"S": "user"}},
                ConsistentRead=True,
            )
            return [_user(item) for page in pages for item in page.get("Items", [])]

        return await self._run(work)

    async def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        groups: tuple[str, ...] | None = None,
        disabled: bool | None = None,
        limits: Limits | None = None,
    ) -> UserAccount:
        changes: Item = {}
        if role is not None:
            changes["role"] = {"S": role}
        if groups is not None:
            changes.update(_groups(groups))
        if disabled is not None:
            changes["disabled"] = {"BOOL": disabled}
        removed: tuple[str, ...] = ()
        if limits is not None:
            stored = limits_to_json(limits)
            if stored is None:
                removed = ("limits",)  # `Limits()`: the user has no limits of their own any more
            else:
                changes["limits"] = {"S": stored}
        expression, names, values = update_expression(changes, removed)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": _user_key(name),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        if values:  # DynamoDB refuses an empty map
            update["ExpressionAttributeValues"] = values

        def work(client: DynamoDBClient) -> UserAccount:
            if not changes and not removed:
                user = self._get_user(client, name)
                if user is None:
                    raise UnknownUserError(name)
                return user
            try:
                updated = client.update_item(**update)
            except Exception as exc:
                if is_code(exc, "ConditionalCheckFailedException"):
                    raise UnknownUserError(name) from None
                raise
            return _user(updated["Attributes"])

        return await self._run(work)

    async def add_key(self, key: ApiKeyRecord) -> None:
        item = _key_item(key)

        def work(client: DynamoDBClient) -> None:
            try:  # the user must exist when the key is written: one transaction, as a foreign key would
                client.transact_write_items(
                    TransactItems=[
                        {
                            "ConditionCheck": {
                                "TableName": self._table,
                                "Key": _user_key(key.user),
                                "ConditionExpression": "attribute_exists(pk)",
                            }
                        },
                        _put_new(self._table, item),
                    ]
                )
            except Exception as exc:
                codes = cancellation_codes(exc)
                if codes and codes[0] == "ConditionalCheckFailed":
                    raise UnknownUserError(key.user) from None
                raise

        await self._run(work)

    async def list_keys(self, user: str) -> list[ApiKeyRecord]:
        def work(client: DynamoDBClient) -> list[ApiKeyRecord]:
            if self._get_user(client, user) is None:
                raise UnknownUserError(user)
            pages = client.get_paginator("query").paginate(
                TableName=self._table,
                IndexName=KEYS_BY_USER,
                KeyConditionExpression="user_name = :user",
                ExpressionAttributeValues={":user": {"S": user}},
            )
            keys = [_key(item) for page in pages for item in page.get("Items", [])]
            return sorted(keys, key=lambda k: (k.created_at, k.prefix))

        return await self._run(work)

    async def find_key(self, prefix: str) -> tuple[ApiKeyRecord, UserAccount] | None:
        def work(client: DynamoDBClient) -> tuple[ApiKeyRecord, UserAccount] | None:
            item = client.get_item(TableName=self._table, Key=_key_key(prefix), ConsistentRead=True).get("Item")
            if item is None:
                return None
            key = _key(item)
            user = self._get_user(client, key.user)
            return (key, user) if user else None

        return await self._run(work)

    async def revoke_key(self, prefix: str, at: float) -> ApiKeyRecord:
        def work(client: DynamoDBClient) -> ApiKeyRecord:
            try:  # if_not_exists keeps the first revocation time; ALL_NEW reads the key in the same request
                updated = client.update_item(
                    TableName=self._table,
                    Key=_key_key(prefix),
                    UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":at": number(at)},
                    ReturnValues="ALL_NEW",
                )
            except Exception as exc:
                if is_code(exc, "ConditionalCheckFailedException"):
                    raise UnknownKeyError(prefix) from None
                raise
            return _key(updated["Attributes"])

        return await self._run(work)

    async def touch_key(self, prefix: str, at: float) -> None:
        def work(client: DynamoDBClient) -> None:
            try:
                client.update_item(
                    TableName=self._table,
                    Key=_key_key(prefix),
                    UpdateExpression="SET last_used_at = :at",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":at": number(at)},
                )
            except Exception as exc:
                if not is_code(exc, "ConditionalCheckFailedException"):
                    raise  # a key deleted meanwhile has nothing to record

        await self._run(work)

    async def import_user(self, user: UserAccount, keys: Sequence[ApiKeyRecord]) -> tuple[bool, int]:
        """The user if absent, then their keys that are absent; each write only if its item is still absent.

        The user and up to 99 keys go in one TransactWriteItems (its limit is 100 items); the keys of a user
        with more follow in further transactions of 100, each all or nothing: an import stopped between two
        adds the rest when run again. What exists is read first (strongly consistent), so only absent items
        are written; if another writer adds one meanwhile, its condition fails and the reading starts again.
        """
        check_own_keys(user, keys)

        def exists(client: DynamoDBClient, key: Item) -> bool:
            found = client.get_item(TableName=self._table, Key=key, ConsistentRead=True, ProjectionExpression="pk")
            return "Item" in found

        def work(client: DynamoDBClient) -> tuple[bool, int]:
            user_added, keys_added = False, 0
            for _ in range(5):
                writes = [] if exists(client, _user_key(user.name)) else [(True, _user_item(user))]
                writes += [(False, _key_item(k)) for k in keys if not exists(client, _key_key(k.prefix))]
                try:
                    for start in range(0, len(writes), 100):
                        chunk = writes[start : start + 100]
                        client.transact_write_items(TransactItems=[_put_new(self._table, item) for _, item in chunk])
                        user_added = user_added or chunk[0][0]
                        keys_added += sum(not is_user for is_user, _ in chunk)
                except Exception as exc:
                    if "ConditionalCheckFailed" not in cancellation_codes(exc):
                        raise
                    continue  # added meanwhile by another writer: read again
                return user_added, keys_added
            raise RuntimeError(f"User {user.name!r} kept changing during the import; run the import again.")

        return await self._run(work)

    async def close(self) -> None:
        await self._checked_table.close()
