"""The governor of a deployment, built from its settings: the chain of the parts that are configured."""

from __future__ import annotations

from genai_chatbot.config import Settings
from genai_chatbot.governance.chain import ChainGovernor
from genai_chatbot.governance.gate import OPEN_GOVERNOR, Governor
from genai_chatbot.governance.policies import PolicySource, SettingsPolicies


def build_governor(settings: Settings) -> Governor:
    """The open governor when nothing is configured, else the chain of configured parts.

    Each part of governance appends itself here when its settings ask for it.
    """
    policies: PolicySource = SettingsPolicies(settings.groups)
    parts: list[Governor] = []
    if settings.record_usage:
        from genai_chatbot.governance.prices import PriceTable
        from genai_chatbot.governance.usage import UsageGovernor
        from genai_chatbot.stores import select_store

        store = select_store(settings).usage_store()
        if settings.redis_url:
            from genai_chatbot.governance.redis_limits import RedisRateLimits

            store = RedisRateLimits(store, settings.redis_url)
        parts.append(UsageGovernor(store, policies, PriceTable(settings.prices)))
    if not parts:
        return OPEN_GOVERNOR
    return ChainGovernor(parts)


async def close_governor(governor: Governor) -> None:
    """Close what the governor's parts hold (their stores' connections); the owner of the service calls it."""
    parts = governor.parts if isinstance(governor, ChainGovernor) else (governor,)
    for part in parts:
        close = getattr(part, "aclose", None)
        if close is not None:
            await close()


def forget_user_limits(governor: Governor, user_id: str) -> None:
    """An admin changed the user's own limits on this server: apply them from the user's next turn here."""
    for part in governor.parts if isinstance(governor, ChainGovernor) else (governor,):
        forget = getattr(part, "forget_user", None)
        if forget is not None:
            forget(user_id)


async def open_governor(governor: Governor) -> None:
    """Connect the parts' stores now (the server's start), so an unreachable database stops it at once."""
    from genai_chatbot.stores import open_store

    parts = governor.parts if isinstance(governor, ChainGovernor) else (governor,)
    for part in parts:
        await open_store(getattr(part, "store", None))
