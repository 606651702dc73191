"""Objects that belong to one event loop (locks, aiohttp sessions), kept one per running loop.

An `asyncio.Lock` or an aiohttp session binds to the loop it is first used in, and fails when another
loop touches it; the server runs one loop, but tests and CLI commands each run their own. `PerLoop`
makes one object per loop on first use there and forgets those of loops that have closed; `LoopLock`
is the lock every long-lived object (the keys, the providers' caches) takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """`make()` once per running event loop."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._objects: dict[asyncio.AbstractEventLoop, T] = {}

    def get(self) -> T:
        """The running loop's object, made now if this loop has none (or `replace` says so)."""
        loop = asyncio.get_running_loop()
        found = self._objects.get(loop)
        if found is None:
            for gone in [known for known in self._objects if known.is_closed()]:
                del self._objects[gone]
            found = self._objects[loop] = self._make()
        return found

    def replace(self) -> T:
        """A fresh object for the running loop, in place of the one it had (e.g. a closed session)."""
        self._objects.pop(asyncio.get_running_loop(), None)
        return self.get()

    def take_all(self) -> tuple[T | None, list[T]]:
        """Forget every object: the running loop's (None outside a loop or when it has none) and the others."""
        objects, self._objects = self._objects, {}
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        mine = objects.pop(loop, None) if loop is not None else None
        return mine, list(objects.values())


class LoopLock:
    """An `asyncio.Lock` usable from any event loop: `async with lock:` takes the running loop's lock."""

    def __init__(self) -> None:
        self._locks: PerLoop[asyncio.Lock] = PerLoop(asyncio.Lock)

    async def __aenter__(self) -> None:
        await self._locks.get().acquire()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._locks.get().release()  # the same loop's lock: a task does not change loops
