"""A store's connection to DynamoDB: one boto3 client whose calls run on threads of the store's own.

Why boto3 in threads rather than aioboto3: a DynamoDB call is a network round trip of milliseconds (a
GetItem through moto on this machine: 3-5 ms; DynamoDB in the same region: a few ms), while handing a call
to a thread and back costs 0.05-0.1 ms (measured here with `asyncio.to_thread`): under 3 %. aioboto3 would
bring aiobotocore, which pins botocore to a narrow range of versions and so fights the boto3 that the `aws`
extra already installs for Bedrock, SageMaker and Secrets Manager. boto3 clients are thread-safe: a store
keeps one, with 16 pooled connections and 16 threads of its own, so that its calls never queue behind other
blocking work in the event loop's default executor, and sixteen turns in flight never wait for a socket.

Region, credentials and endpoint come from the standard AWS settings: `AWS_REGION` / `AWS_DEFAULT_REGION` /
`~/.aws/config`, the usual credential chain (variables, profile, ECS task role, instance profile) and
`AWS_ENDPOINT_URL_DYNAMODB` (moto, DynamoDB Local). Errors are translated at one boundary, `run`: a missing
table names `genai-chatbot store init`, a missing region or credentials name what to set, an item over
DynamoDB's 400 KB limit becomes `ItemTooLargeError`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from genai_chatbot.chat.store import ItemTooLargeError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

T = TypeVar("T")
Item = dict[str, "AttributeValueTypeDef"]

#: DynamoDB's limit on one item, names and values included.
ITEM_LIMIT_BYTES = 400 * 1024
CONNECTIONS = 16


class DynamoDBUnavailableError(RuntimeError):
    """DynamoDB cannot be used as configured; the message says what is missing and what to do."""


class TablesMissingError(DynamoDBUnavailableError):
    """A table of the store does not exist (yet): `genai-chatbot store init` creates them."""


def table_names(prefix: str) -> tuple[str, str, str]:
    """The history, users and governance tables of a `dynamodb://PREFIX`."""
    return f"{prefix}-history", f"{prefix}-users", f"{prefix}-governance"


def too_large(what: str, size: int | None = None) -> ItemTooLargeError:
    """The refusal of `what`, of `size` bytes when known (DynamoDB's own refusal does not say)."""
    is_ = f"is {size:,} bytes, more" if size is not None else "is larger"
    return ItemTooLargeError(
        f"{what} {is_} than DynamoDB's 400 KB item limit ({ITEM_LIMIT_BYTES:,} bytes), so it was not stored "
        "(nothing is truncated); shorten it, or keep history in PostgreSQL for items this large."
    )


def item_size(item: Mapping[str, Any]) -> int:
    """An upper bound of DynamoDB's size of `item`: names and strings in UTF-8, 21 bytes per number."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            size += 21
        elif "L" in value:
            size += 3 + sum(1 + len(v["S"].encode()) for v in value["L"])
        else:
            size += 1
    return size


def check_size(what: str, item: Mapping[str, Any]) -> None:
    """`ItemTooLargeError` naming `what` and the limit when `item` may not fit in one DynamoDB item."""
    size = item_size(item)
    if size > ITEM_LIMIT_BYTES:
        raise too_large(what, size)


def number(value: float) -> AttributeValueTypeDef:
    """A number attribute; `repr` of a float round-trips exactly (DynamoDB keeps 38 digits)."""
    return {"N": repr(value)}


def cancellation_codes(error: Exception) -> list[str]:
    """The reason code of each item of a cancelled TransactWriteItems ('None' for the items that passed).

    Raises `ItemTooLargeError` instead when DynamoDB refused an item of the transaction for its size.
    """
    response = getattr(error, "response", {})
    codes = [reason.get("Code", "None") for reason in response.get("CancellationReasons", [])]
    for reason in response.get("CancellationReasons", []):
        if reason.get("Code") == "ValidationError" and "size" in reason.get("Message", "").lower():
            raise too_large("An item of this write") from None
    return codes


def is_code(error: Exception, *codes: str) -> bool:
    """Whether `error` is a botocore `ClientError` with one of these error codes."""
    response = getattr(error, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") in codes


class DynamoDBDatabase:
    """The client of one store (built at its first call) and the threads its calls run on."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.history_table, self.users_table, self.governance_table = table_names(prefix)
        self._client: DynamoDBClient | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(CONNECTIONS, thread_name_prefix=f"dynamodb-{prefix}")

    def __repr__(self) -> str:
        return f"DynamoDBDatabase({self.prefix!r})"

    @property
    def client(self) -> DynamoDBClient:
        """The boto3 client, created once (thread-safe); `DynamoDBUnavailableError` without a region."""
        with self._lock:
            if self._client is None:
                self._client = new_client()
            return self._client

    async def run(self, work: Callable[[DynamoDBClient], T]) -> T:
        """`work(client)` on one of the store's threads, its AWS errors translated into ones with the fix."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.call, work)

    def call(self, work: Callable[[DynamoDBClient], T]) -> T:
        """`work(client)` on the calling thread, with the errors translated (for the store's own threads)."""
        try:
            return work(self.client)
        except Exception as exc:
            translated = self.translate(exc)
            if translated is None:
                raise
            raise translated from None

    def translate(self, exc: Exception) -> Exception | None:
        """The error with the fix that `exc` means, or None to let it through as it is."""
        from botocore.exceptions import EndpointConnectionError, NoCredentialsError

        tables = f"{self.history_table}, {self.users_table} and {self.governance_table}"
        if is_code(exc, "ResourceNotFoundException"):
            return TablesMissingError(
                f"The DynamoDB tables {tables} (database_url dynamodb://{self.prefix}) do not exist in "
                f"{where()}; create them with `genai-chatbot store init`."
            )
        if is_code(exc, "AccessDeniedException", "UnrecognizedClientException"):
            return DynamoDBUnavailableError(
                f"DynamoDB refused the call on {tables} in {where()}: {exc}. Give the server's AWS identity the "
                "IAM actions the README lists under 'DynamoDB'."
            )
        if is_code(exc, "ValidationException") and "size" in str(exc).lower() and "exceed" in str(exc).lower():
            return too_large("An item of this write")
        if isinstance(exc, NoCredentialsError):
            return DynamoDBUnavailableError(
                "DynamoDB needs AWS credentials and found none: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or run with an IAM role (ECS task role, instance profile)."
            )
        if isinstance(exc, EndpointConnectionError):
            return DynamoDBUnavailableError(
                f"Cannot reach DynamoDB at {exc.kwargs.get('endpoint_url')}: check the region and, if set, "
                "AWS_ENDPOINT_URL_DYNAMODB, and that this machine can reach it."
            )
        return None

    def close(self) -> None:
        """Stop the threads (the calls in flight end first) and close the client's connections."""
        self._executor.shutdown(wait=True)
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _region() -> str | None:
    import boto3

    return boto3.session.Session().region_name or os.environ.get("AWS_REGION")


def where() -> str:
    """The region (and endpoint, when one is set) a client talks to, for messages."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    return f"region {_region() or '(none)'}" + (f" at {endpoint}" if endpoint else "")


def new_client() -> DynamoDBClient:
    """A DynamoDB client from the standard AWS settings; `DynamoDBUnavailableError` naming what to set."""
    import boto3
    from botocore.config import Config

    region = _region()
    if not region:
        raise DynamoDBUnavailableError(
            "database_url names DynamoDB, which needs an AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or "
            "region in ~/.aws/config)."
        )
    config = Config(
        max_pool_connections=CONNECTIONS,
        connect_timeout=5,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 5},
    )
    return boto3.session.Session(region_name=region).client("dynamodb", config=config)
