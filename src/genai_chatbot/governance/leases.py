"""Requests-per-minute leases: the requests of a minute a process took from the store ahead of its turns.

Taking one request per admission made every admission a store write on the way to the first token. Far
from the limit it need not be: an admission that goes to the store takes a lease of the minute's requests
(`usage_store.lease_size`: 1/64 of what remains, exactly one within 128 of the limit), and this process
admits its next turns from the lease, one request each, until it is used up or the minute ends. The store
counts leased requests as taken, so replicas together never take more than the limit; a replica leaves at
most 1/64 of the remainder unused. Budgets and tokens per minute are still read from the store at every
admission (`UsageStore.admit` with the scopes `holding` a leased request), which is then a read alone.

A turn that never ran gives its request back to the lease (to the store when it was taken alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genai_chatbot.governance.usage_store import Check, Grant, Windows

_MAX_LEASES = 10_000


@dataclass(slots=True)
class _Lease:
    minute: str
    limit: int  # the requests-per-minute limit it was taken under: a changed limit needs a new lease
    requests: int  # taken from the store and not used yet


class Leases:
    """This process's leased requests, by scope; see the module docstring."""

    def __init__(self) -> None:
        self._leases: dict[str, _Lease] = {}

    def take(self, checks: Sequence[Check], windows: Windows) -> list[str]:
        """Take one leased request of each requests-per-minute check that has one: those checks' scopes."""
        holding = []
        for check in checks:
            lease = self._leases.get(check.scope)
            if (
                lease is not None
                and lease.requests > 0
                and lease.minute == windows.minute
                and lease.limit == check.limits.requests_per_minute
            ):
                lease.requests -= 1
                holding.append(check.scope)
        return holding

    def learn(self, checks: Sequence[Check], windows: Windows, grant: Grant) -> None:
        """Keep the requests an admitted store admission took beyond the one it used."""
        for check, taken in zip(checks, grant.taken, strict=True):
            limit = check.limits.requests_per_minute
            if taken <= 1 or limit is None:
                continue
            lease = self._leases.get(check.scope)
            if lease is None or lease.minute != windows.minute or lease.limit != limit:
                if len(self._leases) >= _MAX_LEASES:
                    self._leases.clear()
                lease = self._leases[check.scope] = _Lease(windows.minute, limit, 0)
            lease.requests += taken - 1

    def give_back(self, scope: str, windows: Windows) -> bool:
        """Return a request of `windows`' minute to the scope's lease: True, or False when there is no lease of
        that minute (the request was taken alone, near the limit: the store must have it back)."""
        lease = self._leases.get(scope)
        if lease is None or lease.minute != windows.minute:
            return False
        lease.requests += 1
        return True

    def forget(self, scope: str) -> None:
        """Drop the scope's lease (its limit changed): its requests stay taken until the minute ends."""
        self._leases.pop(scope, None)
