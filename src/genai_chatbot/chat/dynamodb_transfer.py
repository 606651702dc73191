"""Moving history on DynamoDB: every session read page by page, a session imported whole.

`store export` and `store import` use these through `DynamoDBHistoryStore.all_sessions` / `import_session`
(see `HistoryStore`); each function runs on one of the store's threads.

Export lists the session ids from the sparse `sessions_by_user` index (only session items carry `user_id`,
so the Scan reads no message), sorts them, then reads `page_size` sessions at a time (strongly consistent
BatchGetItem) and each one's messages (one Query per session): sessions come by id, as from the SQL stores.
The index is updated within about a second, so a session created that last second may be left out, as the
contract allows for sessions created while an export runs.

Import writes a session and its messages so that no reader ever sees part of it:
- up to `ONE_TRANSACTION` messages: one TransactWriteItems (the session `Put` only if absent, each message
  `Put` only if absent): all or nothing;
- more (TransactWriteItems takes at most 100 items): the messages first, 25 per BatchWriteItem, then the
  session item last, only if absent. Until the session item exists nothing lists the session or can add
  to it (`get_session`, `list_sessions`, turns all start from the session item), so readers see the whole
  session or none of it. An import stopped half-way leaves message items without their session; importing
  the file again rewrites them (identical) and then writes the session item: a partial import is resumed,
  never doubled. Such leftovers are found by the `messages_by_id` index (`message_id` present, no session).

Message ids are unique in the store: before writing, each id is looked up in the `messages_by_id` index; one
held by another session refuses the whole session with `ImportConflictError` (the index is eventually
consistent: a message written in the last second by a running server may be missed, as a concurrent writer
could in any store without a lock on the id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from genai_chatbot.chat.dynamodb_db import Item, cancellation_codes
from genai_chatbot.chat.dynamodb_items import message_from, message_item, session_from, session_item, session_key
from genai_chatbot.chat.dynamodb_tables import MESSAGES_BY_ID, SESSIONS_BY_USER
from genai_chatbot.chat.records import Session, StoredMessage
from genai_chatbot.chat.store import ImportConflictError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

#: Messages imported in the session's own transaction (100 items at most, the session item is one).
ONE_TRANSACTION = 99


def session_ids(client: DynamoDBClient, table: str) -> list[str]:
    """Every session id, sorted (a Scan of the sparse `sessions_by_user` index, keys only)."""
    pages = client.get_paginator("scan").paginate(
        TableName=table, IndexName=SESSIONS_BY_USER, ProjectionExpression="pk"
    )
    return sorted(item["pk"]["S"][2:] for page in pages for item in page.get("Items", []))


def sessions_page(client: DynamoDBClient, table: str, ids: Sequence[str]) -> list[tuple[Session, list[StoredMessage]]]:
    """The sessions of `ids` that still exist, in this order, each with its messages in order."""
    found: dict[str, Session] = {}
    for start in range(0, len(ids), 100):  # BatchGetItem reads up to 100 items
        keys: list[Item] = [session_key(i) for i in ids[start : start + 100]]
        request: Any = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            answer = client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(table, []):
                session = session_from(item)
                found[session.id] = session
            request = answer.get("UnprocessedKeys")
    return [(found[i], session_messages(client, table, i)) for i in ids if i in found]


def session_messages(client: DynamoDBClient, table: str, session_id: str) -> list[StoredMessage]:
    """A session's messages by `seq`, from one strongly consistent Query of its partition."""
    pages = client.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :m)",
        ExpressionAttributeValues={":pk": {"S": f"s#{session_id}"}, ":m": {"S": "m#"}},
        ConsistentRead=True,
    )
    items = [item for page in pages for item in page.get("Items", [])]
    items.sort(key=lambda item: int(item["seq"]["N"]))
    return [message_from(item) for item in items]


def _holder(client: DynamoDBClient, table: str, message_id: str) -> str | None:
    """The session that holds a message with this id, or None (the `messages_by_id` index)."""
    items = client.query(
        TableName=table,
        IndexName=MESSAGES_BY_ID,
        KeyConditionExpression="message_id = :id",
        ExpressionAttributeValues={":id": {"S": message_id}},
    ).get("Items", [])
    return items[0]["pk"]["S"][2:] if items else None


def import_session(client: DynamoDBClient, table: str, session: Session, messages: Sequence[StoredMessage]) -> bool:
    """`HistoryStore.import_session` (the rules are in this module's docstring)."""
    from botocore.exceptions import ClientError

    if client.get_item(TableName=table, Key=session_key(session.id), ConsistentRead=True).get("Item"):
        return False
    for message in messages:
        other = _holder(client, table, message.id)
        if other is not None and other != session.id:
            raise ImportConflictError(session.id, message.id, other)
    last = messages[-1].id if messages else None
    head = session_item(session)
    head["seq"] = {"N": str(len(messages))}
    if last is not None:
        head["last_id"] = {"S": last}
    items = [message_item(m, seq) for seq, m in enumerate(messages, start=1)]  # sizes checked before writing
    put_session: TransactWriteItemTypeDef = {
        "Put": {"TableName": table, "Item": head, "ConditionExpression": "attribute_not_exists(pk)"}
    }
    if len(items) <= ONE_TRANSACTION:
        ops: list[TransactWriteItemTypeDef] = [put_session]
        ops += [
            {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
            for item in items
        ]
    else:
        _write_all(client, table, items)
        ops = [put_session]
    try:
        client.transact_write_items(TransactItems=ops)
    except ClientError as exc:
        codes = cancellation_codes(exc)
        if not codes or codes[0] != "ConditionalCheckFailed":
            raise
        return False  # another import of this session won meanwhile (a message Put fails only with it)
    return True


def _write_all(client: DynamoDBClient, table: str, items: list[Item]) -> None:
    """Put `items` 25 per BatchWriteItem, retrying what DynamoDB leaves unprocessed (throttling)."""
    for start in range(0, len(items), 25):
        requests: Any = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        for _ in range(10):  # boto3 already backs off between tries
            requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems")
            if not requests:
                break
        else:
            raise RuntimeError(
                f"DynamoDB kept refusing writes to {table} (throttled); nothing lists the session yet: run the "
                "same import again to complete it."
            )
