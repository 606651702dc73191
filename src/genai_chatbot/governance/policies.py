"""Where group policies come from: the settings' `[groups.NAME]` tables, and what admins set at run time.

Parts of the governor ask a `PolicySource` rather than reading settings, so that a group changed through
the admin API or `genai-chatbot groups set` reaches every replica without a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from genai_chatbot.governance.settings import GroupPolicy


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
