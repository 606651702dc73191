"""Where group policies come from: the settings' `[groups.NAME]` tables, and what admins set at run time.

Parts of the governor ask a `PolicySource` rather than reading settings, so that a group changed through
the admin API or `genai-chatbot groups set` reaches every replica without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.governance.store import GovernanceStore, StoredGroup

logger = logging.getLogger(__name__)


class PolicySource(Protocol):
    async def group_policies(self) -> Mapping[str, GroupPolicy]:
        """Every group's policy by group name (a group with no policy has no entry)."""
        ...


class SettingsPolicies:
    """The groups of the settings file, fixed for the life of the process."""

    def __init__(self, groups: Mapping[str, GroupPolicy]) -> None:
        self._groups = dict(groups)

    async def group_policies(self) -> Mapping[str, GroupPolicy]:
        return self._groups


#: How long a replica trusts the group policies it read from the store: a group changed on another replica
#: or with the CLI applies here within this long (at once on the replica whose admin API changed it).
POLICY_CACHE_SECONDS = 5.0


def effective_policies(settings: Mapping[str, GroupPolicy], stored: Iterable[StoredGroup]) -> dict[str, GroupPolicy]:
    """Each group's policy in force: the one set at run time replaces the settings' `[groups.NAME]` whole."""
    merged = dict(settings)
    merged.update((group.name, group.policy) for group in stored)
    return merged


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group as `groups list` and `GET /api/admin/groups` show it: its policy in force, and whence."""

    name: str
    policy: GroupPolicy
    source: str  # "settings", "admin" or "admin over settings"
    settings_policy: GroupPolicy | None
    updated_at: float | None
    updated_by: str | None


def group_views(settings: Mapping[str, GroupPolicy], stored: Iterable[StoredGroup]) -> list[GroupView]:
    """Every group of the settings or the store, by name, with its policy in force."""
    by_name = {group.name: group for group in stored}
    views = []
    for name in sorted(set(settings) | set(by_name)):
        group, configured = by_name.get(name), settings.get(name)
        if group is None:
            assert configured is not None
            views.append(GroupView(name, configured, "settings", configured, None, None))
        else:
            source = "admin over settings" if configured is not None else "admin"
            views.append(GroupView(name, group.policy, source, configured, group.updated_at, group.updated_by))
    return views


class StoredPolicies:
    """The settings' groups overlaid by those admins set in the store, read at most once per cache period.

    One read serves every request of the period, however many arrive at once. When the store cannot be
    read, the last policies read stay in force (and the read is tried again next period); with none read
    yet, the error propagates, so a turn is refused rather than let through unchecked.
    """

    def __init__(
        self,
        settings: Mapping[str, GroupPolicy],
        store: GovernanceStore,
        cache_seconds: float = POLICY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = dict(settings)
        self.store = store
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._policies: Mapping[str, GroupPolicy] | None = None
        self._valid_until = 0.0
        self._pending: asyncio.Future[Mapping[str, GroupPolicy]] | None = None
        self._generation = 0

    async def group_policies(self) -> Mapping[str, GroupPolicy]:
        if self._policies is not None and self._clock() < self._valid_until:
            return self._policies
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._read(self._generation))
            self._pending.add_done_callback(self._settle)
        return await asyncio.shield(self._pending)

    async def _read(self, generation: int) -> Mapping[str, GroupPolicy]:
        policies: Mapping[str, GroupPolicy]
        try:
            policies = effective_policies(self._settings, await self.store.list_groups())
        except Exception as exc:
            if self._policies is None:
                raise
            logger.warning("Could not read the group policies; keeping those read before: %s", exc)
            policies = self._policies
        if generation == self._generation:  # else forgotten meanwhile: this read may predate the change
            self._valid_until = self._clock() + self._cache_seconds
        self._policies = policies
        return policies

    def _settle(self, done: asyncio.Future[Mapping[str, GroupPolicy]]) -> None:
        self._pending = None
        if not done.cancelled():
            done.exception()  # retrieved: the awaiting callers got it

    def forget(self) -> None:
        """Read the store again at the next request: this process just changed a group."""
        self._generation += 1
        self._valid_until = 0.0

    async def aclose(self) -> None:
        await self.store.close()
