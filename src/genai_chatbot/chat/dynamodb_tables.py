"""The DynamoDB tables of a `dynamodb://PREFIX` store: what `genai-chatbot store init` creates, what a store checks.

Three tables, both on-demand (PAY_PER_REQUEST), with string keys `pk` (partition) and `sk` (sort):

`PREFIX-history`, one item per session, per message and per running store:
- session  `pk = s#<session id>`, `sk = session`: user_id, title, model_id, system_prompt, created_at,
  updated_at; `seq` (the last message number given out), `last_id` (the session's last message) and,
  while a turn streams, `turn` (its answer's id) and `turn_owner` (the store that streams it);
- message  `pk = s#<session id>`, `sk = m#<message id>`: seq, role, content, status, model_id, params (JSON),
  error, prompt_tokens, completion_tokens, latency_ms, created_at, feedback_rating, feedback_comment,
  feedback_at, `message_id` (the id again, for the index below), and `owner` while `streaming`. A session
  and its messages share a partition: one Query reads a conversation; messages are ordered by `seq`;
- lease    `pk = o#<owner id>`, `sk = owner`: `lease_expires_at` (epoch seconds, the table's TTL attribute),
  host, pid: a running store renews it; when it has expired the store is gone (see `dynamodb_turns.py`).
Indexes: `sessions_by_user` (user_id, updated_at; all attributes): a user's sessions newest first, a page at
a time; `streaming_turns` (turn_owner; keys and `turn`): sparse, only sessions with a turn in flight;
`messages_by_id` (message_id; keys only): which session holds a message id (message ids are unique in the
store, as in SQL; `store import` refuses a session whose message id another session holds).

`PREFIX-users`:
- user     `pk = user`, `sk = <name>`: role, groups (list), disabled, created_at (one partition: the list of
  users is one ordered Query);
- API key  `pk = key#<prefix>`, `sk = key`: user_name, secret_sha256, created_at, expires_at, revoked_at,
  last_used_at.
- user     also `limits`: the user's own budgets and rate limits (JSON of what is set), absent when none.
Index: `keys_by_user` (user_name, created_at; all attributes), sparse, only keys.

`PREFIX-governance` (TTL attribute `expires_at`):
- group    `pk = group`, `sk = <name>`: policy (JSON), updated_at, updated_by: a group policy set at run time
  (one partition: listed by name); `pk = groups`, `sk = count`: `n`, how many there are (bounded);
- audit    `pk = audit`, `sk = <at, 17 characters>#<id, 16 digits>`: at, actor, action, target, detail (JSON);
  one partition sorted by time, ties broken by the random id: a total order, read newest first;
- counter  `pk = c#<scope>`, `sk = <window>` (`day:…`, `month:…`, `minute:…`): requests, tokens, cost_usd,
  `expires_at` (DynamoDB deletes expired counters itself);
- usage    `pk = u#<UTC day>`, `sk = <user>#<group>#<model>` (group empty: the user's own row): the summed
  figures of that day, added to with ADD.

Absent values (None) are absent attributes. Numbers are DynamoDB numbers, params a JSON string.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from genai_chatbot.chat.dynamodb_db import DynamoDBDatabase, TablesMissingError, table_names, where

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

T = TypeVar("T")

SESSIONS_BY_USER = "sessions_by_user"
STREAMING_TURNS = "streaming_turns"
KEYS_BY_USER = "keys_by_user"
MESSAGES_BY_ID = "messages_by_id"
LEASE_TTL_ATTRIBUTE = "lease_expires_at"
GOVERNANCE_TTL_ATTRIBUTE = "expires_at"


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    indexes: dict[str, tuple[tuple[str, str], tuple[str, str] | None, list[str] | None]]
    ttl_attribute: str | None = None

    def create_arguments(self) -> dict[str, Any]:
        """The arguments of CreateTable: on-demand billing, `pk`/`sk` keys, the indexes."""
        attributes = {"pk": "S", "sk": "S"}
        indexes = []
        for index, (hash_key, range_key, included) in self.indexes.items():
            keys = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
            attributes[hash_key[0]] = hash_key[1]
            if range_key is not None:
                keys.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
                attributes[range_key[0]] = range_key[1]
            projection: dict[str, Any] = {"ProjectionType": "ALL"}
            if included == []:
                projection = {"ProjectionType": "KEYS_ONLY"}
            elif included is not None:
                projection = {"ProjectionType": "INCLUDE", "NonKeyAttributes": included}
            indexes.append({"IndexName": index, "KeySchema": keys, "Projection": projection})
        return {
            "TableName": self.name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in attributes.items()],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
        }


def table_specs(prefix: str) -> tuple[TableSpec, TableSpec, TableSpec]:
    """The history, users and governance tables of `prefix`."""
    history, users, governance = table_names(prefix)
    return (
        TableSpec(
            history,
            {
                SESSIONS_BY_USER: (("user_id", "S"), ("updated_at", "N"), None),
                STREAMING_TURNS: (("turn_owner", "S"), None, ["turn"]),
                MESSAGES_BY_ID: (("message_id", "S"), None, []),
            },
            ttl_attribute=LEASE_TTL_ATTRIBUTE,
        ),
        TableSpec(users, {KEYS_BY_USER: (("user_name", "S"), ("created_at", "N"), None)}),
        TableSpec(governance, {}, ttl_attribute=GOVERNANCE_TTL_ATTRIBUTE),
    )


def _indexes(client: DynamoDBClient, spec: TableSpec) -> set[str] | None:
    """The names of the indexes of `spec`'s table, or None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        table = client.describe_table(TableName=spec.name)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        return None
    return {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}


def _refuse_missing_indexes(spec: TableSpec, found: set[str]) -> None:
    missing = sorted(set(spec.indexes) - found)
    if missing:
        raise TablesMissingError(
            f"The DynamoDB table {spec.name} lacks the index(es) {', '.join(missing)}: it was not created by "
            "`genai-chatbot store init`. Point database_url at another prefix, or delete the table and run "
            "`genai-chatbot store init`."
        )


def check_table(client: DynamoDBClient, spec: TableSpec) -> None:
    """`TablesMissingError` with the fix unless `spec`'s table exists with its indexes."""
    found = _indexes(client, spec)
    if found is None:
        raise TablesMissingError(
            f"The DynamoDB table {spec.name} does not exist in {where()}; create the store's tables with "
            "`genai-chatbot store init` (with the same database_url and AWS settings)."
        )
    _refuse_missing_indexes(spec, found)


def ensure_tables(client: DynamoDBClient, prefix: str, report: Callable[[str], None]) -> list[str]:
    """Create the tables of `prefix` that are missing and wait until they are active; idempotent.

    Reports a line per table (created, or found) and returns the names of the tables it created. A table
    that exists without the indexes the store needs is refused (`TablesMissingError`) rather than changed.
    """
    created: list[str] = []
    for spec in table_specs(prefix):
        found = _indexes(client, spec)
        if found is None:
            client.create_table(**spec.create_arguments())
            created.append(spec.name)
        else:
            _refuse_missing_indexes(spec, found)
        client.get_waiter("table_exists").wait(TableName=spec.name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        if spec.ttl_attribute is not None:
            ttl = client.describe_time_to_live(TableName=spec.name)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                client.update_time_to_live(
                    TableName=spec.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )
        if found is None:
            report(f"created table {spec.name} (on-demand, indexes {', '.join(spec.indexes)})")
        else:
            report(f"found table {spec.name}")
    return created


class CheckedTable:
    """One table of a store's prefix, checked at `open()` or at the first call; calls run on the store's threads.

    The users, governance and usage stores use it (each its own client and threads, as every store has).
    """

    def __init__(self, prefix: str, which: int) -> None:
        self.db = DynamoDBDatabase(prefix)
        self.spec = table_specs(prefix)[which]
        self.name = self.spec.name
        self._checked = False
        self._lock = threading.Lock()

    def _check(self, client: DynamoDBClient) -> None:
        with self._lock:
            if not self._checked:
                check_table(client, self.spec)
                self._checked = True

    async def open(self) -> None:
        """Check that the table exists with its indexes (`genai-chatbot store init` creates it)."""
        await self.db.run(self._check)

    async def run(self, work: Callable[[DynamoDBClient], T]) -> T:
        if not self._checked:
            await self.open()
        return await self.db.run(work)

    async def close(self) -> None:
        await asyncio.to_thread(self.db.close)  # waits for the calls in flight
