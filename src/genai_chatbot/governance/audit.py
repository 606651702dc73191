"""The audit trail: admin actions and sign-ins appended to the store's audit log, never failing the action.

Admin actions (users, keys, groups) are recorded by whoever performs them: the admin API with the admin's
user id, the CLI with `cli:<OS user>`. A sign-in is recorded the first time a user authenticates with a
given method in this server process, then at most once per `SIGN_IN_INTERVAL_SECONDS`: the page keeps its
token and sends it with every request, so there is no sign-in request to record, and one row per request
would drown the log. Entries name keys by prefix; no key, token or secret is ever written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from genai_chatbot.auth.principal import Principal
from genai_chatbot.governance.store import AuditEntry, GovernanceStore

logger = logging.getLogger(__name__)

#: A user signing in again with the same method within this long is not recorded again (per process).
SIGN_IN_INTERVAL_SECONDS = 3600.0
#: Users whose last sign-in time is remembered, at most; beyond it the memory starts again.
SIGN_IN_MEMORY = 10_000


class AuditTrail:
    """Appends entries to `store`'s audit log; an entry that cannot be written is logged, not raised."""

    def __init__(self, store: GovernanceStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._signed_in: dict[tuple[str, str], float] = {}

    async def record(self, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        """Append one entry: `actor` did `action` to `target`; `detail` says what changed (no secrets)."""
        entry = AuditEntry(actor=actor, action=action, target=target, detail=detail or {})
        try:
            await self.store.append_audit(entry)
        except Exception as exc:  # the action is done already: failing its answer would hide that
            logger.error("Could not write the audit entry %s %s %s: %s", actor, action, target, exc)

    async def signed_in(self, caller: Principal) -> None:
        """Record that `caller` authenticated, when it is their first time with this method in the period.

        Called on every authenticated request: it costs a dictionary lookup when there is nothing to write,
        and the one request per user and period that writes waits for it (so the log is in order).
        """
        key = (caller.user_id, caller.method)
        now = self._clock()
        last = self._signed_in.get(key)
        if last is not None and now - last < SIGN_IN_INTERVAL_SECONDS:
            return
        if len(self._signed_in) >= SIGN_IN_MEMORY:
            self._signed_in.clear()
        self._signed_in[key] = now  # before the write: requests arriving meanwhile do not write it again
        detail = {"method": caller.method, "role": caller.role, "groups": list(caller.groups)}
        await self.record(caller.user_id, "sign-in", caller.user_id, detail)
