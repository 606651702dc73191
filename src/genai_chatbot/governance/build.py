"""The governor of a deployment, built from its settings: the chain of the parts that are configured."""

from __future__ import annotations

from genai_chatbot.config import Settings
from genai_chatbot.governance.chain import ChainGovernor
from genai_chatbot.governance.gate import OPEN_GOVERNOR, Governor
from genai_chatbot.governance.metrics import Metrics, MetricsGovernor
from genai_chatbot.governance.policies import StoredPolicies


def build_policy_source(settings: Settings) -> StoredPolicies:
    """The group policies in force: the settings' `[groups.NAME]`, replaced by those admins set at run time."""
    from genai_chatbot.stores import select_store

    return StoredPolicies(settings.groups, select_store(settings).governance_store())


def needs_model_access(settings: Settings) -> bool:
    """Whether anyone but the local admin can call: groups are configured, or authentication is on.

    With `auth = "none"` and no `[groups.*]`, every caller of the server is the local admin, whom model
    access never limits; the terminal asks for it explicitly when it acts as a named user (`--user`).
    """
    from genai_chatbot.auth.factory import auth_mode

    return bool(settings.groups) or auth_mode(settings) != "none"


def build_governor(settings: Settings, metrics: Metrics | None = None, *, model_access: bool | None = None) -> Governor:
    """The open governor when nothing is configured, else the chain of configured parts.

    Each part of governance appends itself here when its settings ask for it; parts that read group
    policies share one `StoredPolicies` (one store connection, one cache). `model_access` forces the
    model-access part on or off (default: `needs_model_access`). `metrics` are the server's (the terminal
    has none to serve).
    """
    parts: list[Governor] = []
    policies: StoredPolicies | None = None
    if needs_model_access(settings) if model_access is None else model_access:
        from genai_chatbot.governance.access import ModelAccess

        policies = policies or build_policy_source(settings)
        parts.append(ModelAccess(policies))
    if settings.record_usage:
        from genai_chatbot.governance.prices import PriceTable
        from genai_chatbot.governance.usage import UsageGovernor
        from genai_chatbot.stores import select_store

        policies = policies or build_policy_source(settings)  # group budgets admins set apply at once
        store = select_store(settings).usage_store()
        if settings.redis_url:
            from genai_chatbot.governance.redis_limits import RedisRateLimits

            store = RedisRateLimits(store, settings.redis_url)
        parts.append(UsageGovernor(store, policies, PriceTable(settings.prices)))
    if metrics is not None:  # last: it counts only the turns every other part admitted
        parts.append(MetricsGovernor(metrics))
    if not parts:
        return OPEN_GOVERNOR
    if len(parts) == 1 and policies is None:
        return parts[0]  # one part holding nothing open: no chain to go through
    return ChainGovernor(parts, policies)


def forget_policies(governor: Governor) -> None:
    """Make `governor` read group policies again at its next request: this process just changed one."""
    if isinstance(governor, ChainGovernor):
        governor.forget_policies()


async def close_governor(governor: Governor) -> None:
    """Close what the governor holds open (its parts' stores, the store of group policies)."""
    if isinstance(governor, ChainGovernor):
        await governor.aclose()
        return
    close = getattr(governor, "aclose", None)
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
