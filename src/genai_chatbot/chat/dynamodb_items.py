"""Sessions and messages as DynamoDB items (the layout is drawn in `dynamodb_tables.py`), and back.

Opening a long session spends its time turning items into messages, so the mapping is written out by hand
over the low-level client's attribute values (no TypeDeserializer, no Decimal) and empty params are not
parsed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from genai_chatbot.chat.dynamodb_db import Item, check_size, number
from genai_chatbot.chat.records import Feedback, Session, StoredMessage

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

SESSION_SK = "session"


def session_key(session_id: str) -> Item:
    return {"pk": {"S": f"s#{session_id}"}, "sk": {"S": SESSION_SK}}


def message_key(session_id: str, message_id: str) -> Item:
    return {"pk": {"S": f"s#{session_id}"}, "sk": {"S": f"m#{message_id}"}}


def _optional(item: Item, name: str, value: str | float | None) -> None:
    if value is None:
        return
    item[name] = {"S": value} if isinstance(value, str) else number(value)


def session_item(session: Session) -> Item:
    """A new session's item (no message yet: `seq` 0); `ItemTooLargeError` if it cannot fit."""
    item: Item = {
        **session_key(session.id),
        "user_id": {"S": session.user_id},
        "title": {"S": session.title},
        "model_id": {"S": session.model_id},
        "created_at": number(session.created_at),
        "updated_at": number(session.updated_at),
        "seq": {"N": "0"},
    }
    _optional(item, "system_prompt", session.system_prompt)
    check_size(f"Session {session.id!r}", item)
    return item


def session_from(item: dict[str, Any]) -> Session:
    return Session(
        id=item["pk"]["S"][2:],
        user_id=item["user_id"]["S"],
        title=item["title"]["S"],
        model_id=item["model_id"]["S"],
        system_prompt=item["system_prompt"]["S"] if "system_prompt" in item else None,
        created_at=float(item["created_at"]["N"]),
        updated_at=float(item["updated_at"]["N"]),
    )


def final_values(message: StoredMessage) -> Item:
    """What an answer's end writes: its text, status and figures (absent ones are removed)."""
    values: Item = {
        "content": {"S": message.content},
        "status": {"S": message.status},
        "params": {"S": json.dumps(message.params)},
    }
    _optional(values, "model_id", message.model_id)
    _optional(values, "error", message.error)
    _optional(values, "prompt_tokens", message.prompt_tokens)
    _optional(values, "completion_tokens", message.completion_tokens)
    _optional(values, "latency_ms", message.latency_ms)
    return values


FINAL_FIELDS = ("content", "status", "params", "model_id", "error", "prompt_tokens", "completion_tokens", "latency_ms")


def message_item(message: StoredMessage, seq: int, owner: str | None = None) -> Item:
    """The item of `message`, number `seq` of its session; `owner` streams it. `ItemTooLargeError` if too big."""
    item: Item = {
        **message_key(message.session_id, message.id),
        "seq": {"N": str(seq)},
        "message_id": {"S": message.id},
        "role": {"S": message.role},
        "created_at": number(message.created_at),
        **final_values(message),
    }
    _optional(item, "owner", owner)
    if message.feedback is not None:
        item.update(feedback_values(message.feedback))
    check_size(f"Message {message.id!r}", item)
    return item


def feedback_values(feedback: Feedback) -> Item:
    values: Item = {"feedback_rating": {"S": feedback.rating}, "feedback_at": number(feedback.created_at)}
    _optional(values, "feedback_comment", feedback.comment)
    return values


_NONE: dict[str, str] = {}


def message_from(item: Mapping[str, Any]) -> StoredMessage:
    """The message of an item; positional and without helpers: it runs for every message of a session."""
    get = item.get
    params = item["params"]["S"]
    rating = get("feedback_rating", _NONE).get("S")
    tokens_in, tokens_out, latency = get("prompt_tokens"), get("completion_tokens"), get("latency_ms")
    return StoredMessage(
        item["sk"]["S"][2:],
        item["pk"]["S"][2:],
        item["role"]["S"],
        item["content"]["S"],
        item["status"]["S"],
        get("model_id", _NONE).get("S"),
        {} if params == "{}" else json.loads(params),
        get("error", _NONE).get("S"),
        int(tokens_in["N"]) if tokens_in is not None else None,
        int(tokens_out["N"]) if tokens_out is not None else None,
        float(latency["N"]) if latency is not None else None,
        float(item["created_at"]["N"]),
        Feedback(rating, get("feedback_comment", _NONE).get("S"), float(item["feedback_at"]["N"])) if rating else None,
    )


def update_expression(set_values: Item, remove: tuple[str, ...] = ()) -> tuple[str, dict[str, str], Item]:
    """UpdateExpression, names and values that SET `set_values` and REMOVE `remove` (names are aliased:
    `status`, `role` and others are reserved words)."""
    names = {f"#{name}": name for name in (*set_values, *remove)}
    values: dict[str, AttributeValueTypeDef] = {f":{name}": value for name, value in set_values.items()}
    expression = ""
    if set_values:
        expression += "SET " + ", ".join(f"#{name} = :{name}" for name in set_values)
    if remove:
        expression += " REMOVE " + ", ".join(f"#{name}" for name in remove)
    return expression.strip(), names, values
