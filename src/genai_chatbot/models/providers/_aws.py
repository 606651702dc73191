"""What the AWS providers (Bedrock, SageMaker) share: client settings, a thread pump, and error facts.

boto3 blocks, and its event streams are read by iterating in the calling thread. So every AWS call runs on
the provider's own thread pool (not asyncio's default one, which long streams would starve), and a stream
is read on a worker thread that hands items to the event loop. A consumer that stops reading sets a flag
the worker checks after every event; the worker then closes the HTTP response, which ends the stream at
the server and stops generation there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from genai_chatbot.wording import clause

if TYPE_CHECKING:
    from botocore.config import Config

T = TypeVar("T")
#: A blocking producer: calls `emit` for each item and returns when done or when the stop flag is set.
Producer = Callable[[Callable[[T], None], threading.Event], None]

_END = object()


class _Failure(Generic[T]):
    """An exception raised on the worker thread, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def client_config(timeout_seconds: float) -> Config:
    """Timeouts from our settings; a few standard retries so a brief network blip does not fail a chat.

    The read timeout bounds the wait between two chunks of a stream, as `request_timeout_seconds` promises.
    """
    from botocore.config import Config

    return Config(
        connect_timeout=min(timeout_seconds, 10.0),
        read_timeout=timeout_seconds,
        retries={"mode": "standard", "max_attempts": 3},
        user_agent_extra="genai-chatbot",
    )


async def pump(executor: Executor, produce: Producer[T]) -> AsyncIterator[T]:
    """Run `produce` on `executor`, yielding what it emits; its exception is raised here, after its items.

    Closing the returned generator sets the stop flag the producer must check between items.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def emit(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed while the worker finished; nobody is listening any more
            stop.set()

    def run() -> None:
        try:
            produce(emit, stop)
        except BaseException as exc:  # carried to the consumer, who maps it
            emit(_Failure[T](exc))
        finally:
            emit(_END)

    loop.run_in_executor(executor, run)
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield cast(T, item)
    finally:
        stop.set()


def error_code(exc: Any) -> str:
    """The AWS error code of a `ClientError`, with event-stream spellings (`throttlingException`) capitalised."""
    code = str(exc.response.get("Error", {}).get("Code", "") or "")
    return code[:1].upper() + code[1:]


def error_message(exc: Any) -> str:
    """The AWS error message of a `ClientError` (never contains credentials, only ARNs and reasons)."""
    error = exc.response.get("Error", {})
    # Without its full stop: every caller embeds it in a sentence of its own ("...: {message}. Retry ...").
    return clause(str(error.get("Message") or error.get("message") or "no message"))


def retry_after(exc: Any) -> float | None:
    """Seconds to wait, when the service sent a `Retry-After` header with the error."""
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def is_timeout(exc: BaseException) -> bool:
    """Whether botocore gave up waiting for the service (connect or read timeout)."""
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    return isinstance(exc, ConnectTimeoutError | ReadTimeoutError)


def is_missing_credentials(exc: BaseException) -> bool:
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    return isinstance(exc, NoCredentialsError | PartialCredentialsError)


CREDENTIALS_HINT = (
    "configure AWS credentials the standard way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an "
    "instance/task role)"
)
