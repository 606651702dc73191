"""DynamoDB history store: the `HistoryStore` contract on on-demand tables, for replicas on AWS.

The item layout (one item per session, one per message, never a growing item) is drawn in
`dynamodb_tables.py`; moving history in and out (`store export` / `store import`) is
`dynamodb_transfer.py`; the conditional transactions that give one turn at a time per session and write
each message once are `dynamodb_turns.py`; how a store tells the answers of a live replica from those of a
dead one (a lease item per store) is `dynamodb_leases.py`; the client and its threads `dynamodb_db.py`.

Reads that must see the last write (a session, its messages) are strongly consistent. Listing a user's
sessions reads the `sessions_by_user` index, which DynamoDB updates asynchronously (usually within a
second): a session just created or moved up may show a moment late in the list, never in its messages.
A session is deleted item first, so no turn can start in it any more, then its messages, 25 per request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from genai_chatbot.chat.dynamodb_db import DynamoDBDatabase, Item, check_size, number
from genai_chatbot.chat.dynamodb_items import (
    feedback_values,
    message_key,
    session_from,
    session_item,
    session_key,
    update_expression,
)
from genai_chatbot.chat.dynamodb_leases import Lease, interrupt_leftover_turns
from genai_chatbot.chat.dynamodb_tables import SESSIONS_BY_USER, check_table, table_specs
from genai_chatbot.chat.dynamodb_transfer import import_session, session_ids, session_messages, sessions_page
from genai_chatbot.chat.dynamodb_turns import append_message, begin_turn, finish_message
from genai_chatbot.chat.records import Feedback, Session, StoredMessage
from genai_chatbot.chat.store import TurnStart

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

T = TypeVar("T")


def _conditional_failed(exc: Exception) -> bool:
    response = getattr(exc, "response", {})
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class DynamoDBHistoryStore:
    """`HistoryStore` on the tables of `dynamodb://PREFIX`; checks them and takes its lease at `open()`
    or at its first call."""

    def __init__(self, prefix: str) -> None:
        self._db = DynamoDBDatabase(prefix)
        self._table = self._db.history_table
        self._lease: Lease | None = None
        self._opening = threading.Lock()

    def __repr__(self) -> str:
        return f"DynamoDBHistoryStore({self._db.prefix!r})"

    def _open(self, client: DynamoDBClient) -> Lease:
        with self._opening:
            if self._lease is None:
                check_table(client, table_specs(self._db.prefix)[0])
                lease = Lease(self._db)
                lease.take()  # before recovering: a store opening now sees this one alive
                interrupt_leftover_turns(client, self._table, lease.owner, opening=True)
                self._lease = lease
            return self._lease

    async def open(self) -> None:
        """Check the table, take this store's lease and interrupt the turns of stores that are gone."""
        await self._db.run(self._open)

    async def _run(self, work: Callable[[DynamoDBClient], T]) -> T:
        if self._lease is None:
            await self.open()
        return await self._db.run(work)

    async def create_session(self, session: Session) -> None:
        item = session_item(session)
        await self._run(
            lambda c: c.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        )

    async def get_session(self, user_id: str, session_id: str) -> Session | None:
        def work(client: DynamoDBClient) -> Session | None:
            item = client.get_item(TableName=self._table, Key=session_key(session_id), ConsistentRead=True).get("Item")
            return session_from(item) if item and item["user_id"]["S"] == user_id else None

        return await self._run(work)

    async def list_sessions(self, user_id: str, limit: int = 100) -> list[Session]:
        def work(client: DynamoDBClient) -> list[Session]:
            sessions: list[Session] = []
            start: dict[str, Any] | None = None
            while len(sessions) < limit:  # a page holds up to 1 MB: long system prompts may need several
                query: dict[str, Any] = {
                    "TableName": self._table,
                    "IndexName": SESSIONS_BY_USER,
                    "KeyConditionExpression": "user_id = :user",
                    "ExpressionAttributeValues": {":user": {"S": user_id}},
                    "ScanIndexForward": False,
                    "Limit": limit - len(sessions),
                }
                if start:
                    query["ExclusiveStartKey"] = start
                page = client.query(**query)
                sessions.extend(session_from(item) for item in page.get("Items", []))
                start = page.get("LastEvaluatedKey")
                if start is None:
                    break
            return sessions

        return await self._run(work)

    async def update_session(self, session: Session) -> None:
        changes: Item = {
            "title": {"S": session.title},
            "model_id": {"S": session.model_id},
            "updated_at": number(session.updated_at),
        }
        if session.system_prompt is not None:
            changes["system_prompt"] = {"S": session.system_prompt}
        check_size(f"Session {session.id!r}", changes)
        removed = () if session.system_prompt is not None else ("system_prompt",)
        expression, names, values = update_expression(changes, removed)

        def work(client: DynamoDBClient) -> None:
            try:
                client.update_item(
                    TableName=self._table,
                    Key=session_key(session.id),
                    UpdateExpression=expression,
                    ConditionExpression="user_id = :user",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={**values, ":user": {"S": session.user_id}},
                )
            except Exception as exc:
                if not _conditional_failed(exc):
                    raise  # another user's session, or none: nothing to update, as in SQL

        await self._run(work)

    async def delete_session(self, user_id: str, session_id: str) -> bool:
        def work(client: DynamoDBClient) -> bool:
            try:
                client.delete_item(
                    TableName=self._table,
                    Key=session_key(session_id),
                    ConditionExpression="user_id = :user",
                    ExpressionAttributeValues={":user": {"S": user_id}},
                )
            except Exception as exc:
                if _conditional_failed(exc):
                    return False
                raise
            self._delete_messages(client, session_id)
            return True

        return await self._run(work)

    def _delete_messages(self, client: DynamoDBClient, session_id: str) -> None:
        pages = client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"s#{session_id}"}},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        keys = [item for page in pages for item in page.get("Items", [])]
        for start in range(0, len(keys), 25):
            requests: Any = {self._table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]}
            for _ in range(10):  # unprocessed ones (throttling) again; boto3 already backs off between tries
                requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems")
                if not requests:
                    break

    async def add_message(self, message: StoredMessage) -> None:
        await self._run(lambda client: append_message(client, self._table, message))

    async def list_messages(self, session_id: str) -> list[StoredMessage]:
        return await self._run(lambda client: session_messages(client, self._table, session_id))

    async def replace_message(self, old_id: str, message: StoredMessage) -> None:
        await self._run(lambda client: append_message(client, self._table, message, replaces=old_id))

    async def begin_turn(
        self, session: Session, user_message: StoredMessage | None, answer: StoredMessage, replaces: str | None
    ) -> TurnStart:
        def work(client: DynamoDBClient) -> TurnStart:
            assert self._lease is not None  # taken when the store opened
            return begin_turn(client, self._table, session, user_message, answer, replaces, self._lease.owner)

        return await self._run(work)

    async def finish_message(self, message: StoredMessage) -> bool:
        return await self._run(lambda client: finish_message(client, self._table, message))

    async def set_feedback(self, session_id: str, message_id: str, feedback: Feedback | None) -> bool:
        names = ("feedback_rating", "feedback_comment", "feedback_at")
        values = feedback_values(feedback) if feedback else {}
        expression, aliases, expression_values = update_expression(values, tuple(n for n in names if n not in values))

        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": message_key(session_id, message_id),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": aliases,
        }
        if expression_values:  # DynamoDB refuses an empty map
            update["ExpressionAttributeValues"] = expression_values

        def work(client: DynamoDBClient) -> bool:
            try:
                client.update_item(**update)
            except Exception as exc:
                if _conditional_failed(exc):
                    return False
                raise
            return True

        return await self._run(work)

    async def all_sessions(self, page_size: int = 100) -> AsyncIterator[tuple[Session, list[StoredMessage]]]:
        ids = await self._run(lambda client: session_ids(client, self._table))
        for start in range(0, len(ids), page_size):
            for entry in await self._run(partial(sessions_page, table=self._table, ids=ids[start : start + page_size])):
                yield entry

    async def import_session(self, session: Session, messages: Sequence[StoredMessage]) -> bool:
        return await self._run(lambda client: import_session(client, self._table, session, messages))

    async def close(self) -> None:
        """Give up the lease (this store's turns have all ended by now), then stop the client."""
        lease, self._lease = self._lease, None
        if lease is not None:
            await self._db.run(lambda _client: lease.release())
        await asyncio.to_thread(self._db.close)  # waits for the calls in flight
