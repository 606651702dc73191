"""Which stores are alive among those that stream turns into one DynamoDB table, and recovery of the others.

The rule: every history store (each replica, each CLI command) has an owner id and a lease item
`o#<owner>` whose `lease_expires_at` it pushes `LEASE_SECONDS` ahead every `RENEW_SECONDS`, from a thread of
its own, and deletes when it closes (after the service has ended its turns). A turn's answer records its
owner (`turn_owner` on the session item, `owner` on the answer). An owner is alive while its lease item
exists and has not expired; a store that was killed stops renewing, so at most `LEASE_SECONDS` later its
lease has expired. The lease is the table's TTL attribute only so that DynamoDB eventually deletes old
lease items: liveness compares the time, never relies on that deletion (which may take days). Replicas'
clocks must agree to well within `LEASE_SECONDS - RENEW_SECONDS` (20 s): NTP, as on every AWS host, does.

The `streaming` answers of owners that are gone are marked `interrupted` (retryable, no text), found by a
Scan of the sparse `streaming_turns` index (only sessions with a turn in flight):
- by a store when it opens: every owner without a live lease (expired, or deleted at close);
- by every running store at each renewal: owners whose lease has expired (a killed or hung replica), so
  its sessions are free again within `LEASE_SECONDS + RENEW_SECONDS` even if no store opens.
Until then a turn on such a session is refused as busy, as on the SQL stores. A store that stalls beyond its
lease (a long pause, a partition) may see its turns interrupted; its own end of such an answer is still
written (an `interrupted` answer may be finished), as in the SQL stores.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Literal

from genai_chatbot.chat.dynamodb_db import DynamoDBDatabase, cancellation_codes, number
from genai_chatbot.chat.dynamodb_items import SESSION_SK, message_key
from genai_chatbot.chat.dynamodb_tables import LEASE_TTL_ATTRIBUTE, STREAMING_TURNS
from genai_chatbot.chat.records import INTERRUPTED_ERROR, new_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
RENEW_SECONDS = 10.0

LeaseState = Literal["live", "expired", "absent"]


def lease_key(owner: str) -> dict[str, Any]:
    return {"pk": {"S": f"o#{owner}"}, "sk": {"S": "owner"}}


def lease_state(client: DynamoDBClient, table: str, owner: str, now: float) -> LeaseState:
    """Whether the store `owner` holds a live lease, one that has expired, or none (a consistent read)."""
    item = client.get_item(TableName=table, Key=lease_key(owner), ConsistentRead=True).get("Item")
    if item is None:
        return "absent"
    return "live" if float(item[LEASE_TTL_ATTRIBUTE]["N"]) > now else "expired"


def _interrupt_ops(table: str, session_id: str, answer_id: str) -> list[TransactWriteItemTypeDef]:
    """Mark the `streaming` answer `answer_id` interrupted and free its session, if both are still so."""
    return [
        {
            "Update": {
                "TableName": table,
                "Key": message_key(session_id, answer_id),
                "UpdateExpression": "SET #status = :interrupted, content = :empty, #error = :error REMOVE #owner",
                "ConditionExpression": "#status = :streaming",
                "ExpressionAttributeNames": {"#status": "status", "#error": "error", "#owner": "owner"},
                "ExpressionAttributeValues": {
                    ":interrupted": {"S": "interrupted"},
                    ":streaming": {"S": "streaming"},
                    ":empty": {"S": ""},
                    ":error": {"S": INTERRUPTED_ERROR},
                },
            }
        },
        free_session_op(table, session_id, answer_id),
    ]


def free_session_op(table: str, session_id: str, answer_id: str) -> TransactWriteItemTypeDef:
    """Clear the session's turn marker, if it still names `answer_id`."""
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": f"s#{session_id}"}, "sk": {"S": SESSION_SK}},
            "UpdateExpression": "REMOVE turn, turn_owner",
            "ConditionExpression": "turn = :answer",
            "ExpressionAttributeValues": {":answer": {"S": answer_id}},
        }
    }


def interrupt(client: DynamoDBClient, table: str, session_id: str, answer_id: str) -> bool:
    """Interrupt a gone owner's answer and free its session; False when another store did it first."""
    from botocore.exceptions import ClientError

    try:
        client.transact_write_items(TransactItems=_interrupt_ops(table, session_id, answer_id))
        return True
    except ClientError as exc:
        codes = cancellation_codes(exc)
        if not codes:
            raise
        if codes[0] == "ConditionalCheckFailed" and codes[1] == "None":  # the answer had ended: a stale marker
            try:
                client.transact_write_items(TransactItems=[free_session_op(table, session_id, answer_id)])
            except ClientError as again:
                if not cancellation_codes(again):
                    raise
        return False


def interrupt_leftover_turns(client: DynamoDBClient, table: str, own: str, opening: bool) -> int:
    """Mark `interrupted` the answers of owners that are gone (see the module's rule: `opening` decides
    whether a lease deleted at close counts as gone); how many."""
    pages = client.get_paginator("scan").paginate(TableName=table, IndexName=STREAMING_TURNS)
    gone_states = ("absent", "expired") if opening else ("expired",)
    states: dict[str, LeaseState] = {own: "live"}
    count = 0
    now = time.time()
    for page in pages:
        for item in page.get("Items", []):
            owner = item["turn_owner"]["S"]
            if owner not in states:
                states[owner] = lease_state(client, table, owner, now)
            if states[owner] in gone_states and interrupt(client, table, item["pk"]["S"][2:], item["turn"]["S"]):
                count += 1
    if count:
        logger.warning("Marked %d answer(s) left unfinished by a stopped server as interrupted.", count)
    return count


class Lease:
    """This store's claim to be alive: an owner id and a lease item renewed by a thread until `release`."""

    def __init__(self, db: DynamoDBDatabase) -> None:
        self.owner = new_id()
        self._db = db
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _put(self, client: DynamoDBClient) -> None:
        client.put_item(
            TableName=self._db.history_table,
            Item={
                **lease_key(self.owner),
                LEASE_TTL_ATTRIBUTE: number(round(time.time() + LEASE_SECONDS, 3)),
                "host": {"S": socket.gethostname()},
                "pid": {"N": str(os.getpid())},
            },
        )

    def take(self) -> None:
        """Write the lease, then renew it (and recover gone owners' turns) every `RENEW_SECONDS`."""
        self._db.call(self._put)
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.owner[:8]}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self._db.call(self._put)
                self._db.call(
                    lambda client: interrupt_leftover_turns(client, self._db.history_table, self.owner, opening=False)
                )
            except Exception as exc:  # a missed renewal is retried at the next; the lease has slack for two
                logger.warning(
                    "Could not renew this server's DynamoDB lease (%s); retrying in %gs.", exc, RENEW_SECONDS
                )

    def release(self) -> None:
        """Stop renewing and delete the lease: this store's turns have all ended by now."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(RENEW_SECONDS)
        self._thread = None
        self._db.call(lambda client: client.delete_item(TableName=self._db.history_table, Key=lease_key(self.owner)))
