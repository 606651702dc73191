"""The one client cache of the providers: a client per slot, rebuilt when the values it was built from change.

Providers read their key from the keys secret on every call, so a rotated key takes effect at once; but
building a client (an SDK's, with its connection pool and TLS context) per request is too slow. So each
slot (a provider, an endpoint, a deployment) keeps the client of the values it was last built from,
compared by a SHA-256 digest so no key value is ever a dict key or shows in a repr.

The one rotation rule: when the values change, the new client takes the slot and the old one is retired,
closed as soon as the last call that leased it ends. A stream still reading through the old key finishes;
nothing holds on to a client nobody can reach any more.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from genai_chatbot.per_loop import LoopLock

Client = TypeVar("Client")


def fingerprint(*parts: str | None) -> str:
    """A digest of `parts` to key caches by."""
    return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()


async def _nothing_to_close(client: object) -> None:
    return None


@dataclass(slots=True)
class _Entry(Generic[Client]):
    digest: str
    client: Client
    users: int = 0
    retired: bool = False


class ClientCache(Generic[Client]):
    """Clients by slot. `blocking_build`: builds run on a worker thread (SDK imports, TLS contexts)."""

    def __init__(
        self, close: Callable[[Client], Awaitable[None]] = _nothing_to_close, *, blocking_build: bool = True
    ) -> None:
        self._close = close
        self._blocking = blocking_build
        self._slots: dict[str, _Entry[Client]] = {}
        self._lock = LoopLock()  # one build at a time, however many requests wait for it

    @asynccontextmanager
    async def lease(
        self, slot: str, values: Sequence[str | None], build: Callable[[], Client]
    ) -> AsyncIterator[Client]:
        """The slot's client for `values` (built by `build()` when they changed), held until the block ends."""
        entry = await self._entry(slot, fingerprint(*values), build)
        entry.users += 1
        try:
            yield entry.client
        finally:
            entry.users -= 1
            if entry.retired and not entry.users:
                await self._close(entry.client)

    async def _entry(self, slot: str, digest: str, build: Callable[[], Client]) -> _Entry[Client]:
        current = self._slots.get(slot)
        if current is not None and current.digest == digest:
            return current
        async with self._lock:
            current = self._slots.get(slot)
            if current is not None and current.digest == digest:
                return current
            client = await asyncio.to_thread(build) if self._blocking else build()
            entry = self._slots[slot] = _Entry(digest, client)
        if current is not None:
            current.retired = True
            if not current.users:
                await self._close(current.client)
        return entry

    def current(self, slot: str) -> Client | None:
        """The slot's client as last built, without leasing it (for identity checks such as caches)."""
        entry = self._slots.get(slot)
        return entry.client if entry is not None else None

    async def aclose(self) -> None:
        """Close every client, leased or not: the provider is shutting down."""
        entries, self._slots = list(self._slots.values()), {}
        await asyncio.gather(*(self._close(entry.client) for entry in entries))
