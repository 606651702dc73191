"""The one thread pump: a blocking SDK's stream, read on a worker thread and handed to the event loop.

boto3's event streams and llama.cpp's token generator block the thread that iterates them. So the
producer runs on the provider's own executor (not asyncio's default pool, which long streams would
starve) and calls `emit` for each item; `emit` hands it to the loop with `call_soon_threadsafe`. A
consumer that stops reading sets a flag the producer checks between items, and then stops (closing the
HTTP response, or freeing llama.cpp), so generation stops within one item. When the loop itself has
closed (a server stopped mid-stream, a test's loop torn down), `emit` sets the flag too instead of raising
on the worker thread: nobody is listening any more.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TypeVar, cast

from genai_chatbot.models.types import ChatChunk, FinishReason, Usage

T = TypeVar("T")
#: A blocking producer: calls `emit` for each item and returns when done or when the stop flag is set.
Producer = Callable[[Callable[[T], None], threading.Event], None]

_END = object()


class _Failure:
    """An exception raised on the worker thread, carried to the consumer."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def pump(executor: Executor, produce: Producer[T]) -> AsyncIterator[T]:
    """Run `produce` on `executor`, yielding what it emits; its exception is raised here, after its items.

    Closing the returned generator sets the stop flag the producer must check between items. A producer
    still queued when the consumer leaves finds the flag set before it starts, and should return at once.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def emit(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed while the worker ran; nobody is listening any more
            stop.set()

    def run() -> None:
        try:
            if not stop.is_set():  # the consumer left while this waited for a worker
                produce(emit, stop)
        except BaseException as exc:  # carried to the consumer, who maps it
            emit(_Failure(exc))
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


async def whole_reply(
    executor: Executor, call: Callable[[], tuple[str, FinishReason, Usage | None]]
) -> AsyncIterator[ChatChunk]:
    """A blocking call that returns a whole reply (text, finish reason, usage), run on `executor` and
    yielded as a stream: its text as one chunk, then the closing chunk. For models that cannot stream."""
    text, finish, usage = await asyncio.get_running_loop().run_in_executor(executor, call)
    if text:
        yield ChatChunk(text=text)
    yield ChatChunk(finish_reason=finish, usage=usage)
