"""The writes that add messages to a session on DynamoDB: turns started and ended, messages appended or replaced.

Every write that adds a message is one TransactWriteItems: the new message items (`Put` only if absent: a
message is never overwritten or duplicated) and an `Update` of the session item that hands out their
numbers (`seq`) and records the last message, on condition that `seq` is still what the writer read. Two
writers on one session therefore cannot both succeed: the second one's condition fails, it reads the
session again and decides anew (a turn's start then sees the first turn and answers BUSY). The session
item is the turn lock: `turn` names the one `streaming` answer, and a turn starts only if there is none
(or the one named has ended; the answers of stores that are gone are ended by `dynamodb_leases.py`).
A retry deletes the answer it replaces in the same transaction, on condition that it is still failed,
cancelled or interrupted, and it must be the session's `last_id`. An answer's end clears `turn` in the
same transaction as its final text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from genai_chatbot.chat.dynamodb_db import ITEM_LIMIT_BYTES, Item, cancellation_codes, item_size, number
from genai_chatbot.chat.dynamodb_items import (
    FINAL_FIELDS,
    final_values,
    message_from,
    message_item,
    message_key,
    session_key,
    update_expression,
)
from genai_chatbot.chat.dynamodb_leases import free_session_op
from genai_chatbot.chat.records import RETRYABLE, Session, StoredMessage
from genai_chatbot.chat.store import MessageGoneError, TurnStart

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

#: Reads and conditional writes tried before giving up on a session other writers keep changing.
ATTEMPTS = 10
_CONFLICTS = ("ConditionalCheckFailed", "TransactionConflict")


class DuplicateMessageError(ValueError):
    """A message with this id is already stored in the session: nothing was written."""


def _read(client: DynamoDBClient, table: str, key: Item) -> dict[str, Any] | None:
    return client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def _put(table: str, item: Item) -> TransactWriteItemTypeDef:
    return {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def _claim(
    table: str, session: dict[str, Any], changes: Item, condition: str = "", values: Item | None = None
) -> TransactWriteItemTypeDef:
    """Update the session item with `changes` if its `seq` is still the one read (and `condition` holds)."""
    expression, names, expression_values = update_expression(changes)
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": session["pk"], "sk": session["sk"]},
            "UpdateExpression": expression,
            "ConditionExpression": "#seq = :read_seq" + (f" AND {condition}" if condition else ""),
            "ExpressionAttributeNames": {**names, "#seq": "seq"},
            "ExpressionAttributeValues": {**expression_values, ":read_seq": session["seq"], **(values or {})},
        }
    }


def _appended(session: dict[str, Any], messages: list[StoredMessage], updated_at: float) -> Item:
    """The session changes that append `messages`: their numbers, the last id, the time."""
    return {
        "seq": {"N": str(int(session["seq"]["N"]) + len(messages))},
        "last_id": {"S": messages[-1].id},
        "updated_at": number(updated_at),
    }


def _transact(client: DynamoDBClient, ops: list[TransactWriteItemTypeDef], first_put: int) -> list[str] | None:
    """Run the transaction: None when it committed, else the codes of the conditions that failed.

    A `Put` (from index `first_put` on) refused because its item exists is a duplicate message id:
    `DuplicateMessageError`, unless every such item is exactly the one this call writes: then an earlier
    attempt of this very transaction committed and only its answer was lost (botocore retried it after a
    timeout; DynamoDB's idempotency token covers that case, moto does not). Anything but a failed
    condition or a conflict is raised as it is.
    """
    from botocore.exceptions import ClientError

    try:
        client.transact_write_items(TransactItems=ops)
        return None
    except ClientError as exc:
        codes = cancellation_codes(exc)
        if not codes or any(code not in ("None", *_CONFLICTS) for code in codes):
            raise
        refused = [
            op["Put"]["Item"]
            for op, code in zip(ops[first_put:], codes[first_put:], strict=True)
            if code == "ConditionalCheckFailed"
        ]
        if refused and all(_stored_as(client, ops[first_put]["Put"]["TableName"], item) for item in refused):
            return None
        if refused:
            raise DuplicateMessageError(
                "A message with this id is already stored in the session; nothing was written. Send it again "
                "with a new id."
            ) from None
        return codes


def _stored_as(client: DynamoDBClient, table: str, item: Mapping[str, Any]) -> bool:
    """Whether the message item stored under `item`'s key is `item` (numbers compared as numbers)."""
    stored = _read(client, table, {"pk": {"S": item["pk"]["S"]}, "sk": {"S": item["sk"]["S"]}})
    if stored is None or stored.get("owner") != item.get("owner") or stored["seq"]["N"] != item["seq"]["N"]:
        return False
    return message_from(stored) == message_from(item)


def _session_or(client: DynamoDBClient, table: str, session_id: str, error: Callable[[], Exception]) -> dict[str, Any]:
    current = _read(client, table, session_key(session_id))
    if current is None:
        raise error()
    return current


def append_message(client: DynamoDBClient, table: str, message: StoredMessage, replaces: str | None = None) -> None:
    """Store `message` at the end of its session, in place of `replaces` when given (deleted in the same
    transaction; `MessageGoneError` when it no longer exists)."""
    missing_session = LookupError(
        f"Session {message.session_id!r} does not exist, so message {message.id!r} was not stored; create the "
        "session first."
    )
    gone = MessageGoneError(
        f"Message {replaces!r} of session {message.session_id!r} no longer exists, so nothing replaced it; reload "
        "the session to see its messages."
    )
    for _ in range(ATTEMPTS):
        current = _session_or(client, table, message.session_id, lambda: gone if replaces else missing_session)
        updated_at = max(float(current["updated_at"]["N"]), message.created_at)
        ops = [_claim(table, current, _appended(current, [message], updated_at))]
        if replaces is not None:
            ops.append(
                {
                    "Delete": {
                        "TableName": table,
                        "Key": message_key(message.session_id, replaces),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            )
        ops.append(_put(table, message_item(message, int(current["seq"]["N"]) + 1)))
        codes = _transact(client, ops, len(ops) - 1)
        if codes is None:
            return
        if replaces is not None and codes[1] == "ConditionalCheckFailed":
            raise gone
    raise _contended(message.session_id)


def _contended(session_id: str) -> RuntimeError:
    return RuntimeError(f"Session {session_id!r} kept changing under this write ({ATTEMPTS} attempts); try again.")


def begin_turn(
    client: DynamoDBClient,
    table: str,
    session: Session,
    user_message: StoredMessage | None,
    answer: StoredMessage,
    replaces: str | None,
    owner: str,
) -> TurnStart:
    """The start of a turn in one transaction (see `HistoryStore.begin_turn` and this module's docstring)."""
    for _ in range(ATTEMPTS):
        outcome = _try_start(client, table, session, user_message, answer, replaces, owner)
        if outcome is not None:
            return outcome
    return TurnStart.BUSY  # other writers kept winning the session: as good as a turn in progress


def _try_start(
    client: DynamoDBClient,
    table: str,
    session: Session,
    user_message: StoredMessage | None,
    answer: StoredMessage,
    replaces: str | None,
    owner: str,
) -> TurnStart | None:
    """One attempt: the outcome, or None when the session changed meanwhile (read it again)."""
    current = _read(client, table, session_key(session.id))
    if current is None:
        return TurnStart.NO_SESSION
    ops: list[TransactWriteItemTypeDef] = []
    turn_condition, turn_values = "attribute_not_exists(turn)", {}
    if "turn" in current:  # busy while that answer streams; a marker whose answer has ended is stale
        streaming = _read(client, table, message_key(session.id, current["turn"]["S"]))
        if streaming is not None and streaming["status"]["S"] == "streaming":
            return TurnStart.BUSY
        turn_condition, turn_values = "turn = :turn", {":turn": current["turn"]}
    if replaces is not None:
        retried = _read(client, table, message_key(session.id, replaces))
        if retried is None:
            return TurnStart.NO_MESSAGE
        if current.get("last_id", {}).get("S") != replaces or retried["status"]["S"] not in RETRYABLE:
            return TurnStart.NOT_RETRYABLE
        ops.append(
            {
                "Delete": {
                    "TableName": table,
                    "Key": message_key(session.id, replaces),
                    "ConditionExpression": f"#status IN ({', '.join(f':r{i}' for i in range(len(RETRYABLE)))})",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {f":r{i}": {"S": status} for i, status in enumerate(RETRYABLE)},
                }
            }
        )
    new = [m for m in (user_message, answer) if m is not None]
    changes: Item = {
        **_appended(current, new, max([session.updated_at, *(m.created_at for m in new)])),
        "title": {"S": session.title},
        "model_id": {"S": session.model_id},
        "turn": {"S": answer.id},
        "turn_owner": {"S": owner},
    }
    ops.append(_claim(table, current, changes, turn_condition, turn_values))
    first_put = len(ops)
    seq = int(current["seq"]["N"])
    for number_in_turn, message in enumerate(new, start=1):
        ops.append(_put(table, message_item(message, seq + number_in_turn, owner if message is answer else None)))
    return TurnStart.STARTED if _transact(client, ops, first_put) is None else None


def finish_message(client: DynamoDBClient, table: str, message: StoredMessage) -> bool:
    """The one write of an answer's end, freeing its session; False when it is gone or already ended.

    An answer too large for one item is stored `failed` with an error naming the limit instead of its text
    (never a truncated text), so its session is freed and the answer can be retried.
    """
    from botocore.exceptions import ClientError

    values = final_values(message)
    size = item_size({**values, **message_key(message.session_id, message.id)}) + 200  # + role, seq, times
    if size > ITEM_LIMIT_BYTES:
        values = final_values(message)
        values.update(
            content={"S": ""},
            status={"S": "failed"},
            error={
                "S": f"This answer was {size:,} bytes, more than DynamoDB's 400 KB item limit, so it was not "
                "stored (nothing is truncated); retry with a lower max_tokens, or keep history in PostgreSQL."
            },
        )
    removed = tuple(name for name in FINAL_FIELDS if name not in values)
    expression, names, expression_values = update_expression(values, (*removed, "owner"))
    update: Any = {
        "TableName": table,
        "Key": message_key(message.session_id, message.id),
        "UpdateExpression": expression,
        "ConditionExpression": "#status IN (:streaming, :interrupted)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {
            **expression_values,
            ":streaming": {"S": "streaming"},
            ":interrupted": {"S": "interrupted"},
        },
    }
    ops: list[TransactWriteItemTypeDef] = [{"Update": update}, free_session_op(table, message.session_id, message.id)]
    for _ in range(ATTEMPTS):
        codes = _transact(client, ops, len(ops))
        if codes is None:
            return True
        if "TransactionConflict" not in codes:  # a condition failed: decided below
            break
        # another write to the answer or its session was in flight: try again
    else:
        raise _contended(message.session_id)
    if codes[0] != "None":
        return False
    try:  # the session no longer names this answer (it was interrupted, or the session deleted): the answer alone
        client.update_item(**update)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return False
