"""SDK clients kept per key: built once on a worker thread, found again by a digest of the key.

Providers read their key from the keys secret on every call (so a rotated key takes effect), but building
an SDK client imports the SDK and sets up a connection pool: too slow per request, and blocking. This
cache keys clients by a SHA-256 digest of the values they were built from, so no key value is ever a dict
key or shows in a repr. A rotated key leaves its old client in place until `aclose`: rotations are rare,
and closing a client that a running stream still reads from would break that stream.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Client = TypeVar("Client")


def fingerprint(*parts: str | None) -> str:
    """A digest of `parts` to key caches by."""
    return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()


class ClientsByKey(Generic[Client]):
    """`build(*values)` run once per distinct `values`, off the event loop, one build at a time."""

    def __init__(self, build: Callable[..., Client], close: Callable[[Client], Awaitable[None]]) -> None:
        self._build = build
        self._close = close
        self._clients: dict[str, Client] = {}
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self, *values: str | None) -> Client:
        digest = fingerprint(*values)
        client = self._clients.get(digest)
        if client is not None:
            return client
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # a lock belongs to one event loop
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:
            client = self._clients.get(digest)
            if client is None:
                client = self._clients[digest] = await asyncio.to_thread(self._build, *values)
            return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await self._close(client)
