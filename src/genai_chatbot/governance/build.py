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
    """Close what `governor` holds open (the store of group policies); nothing for the open governor."""
    if isinstance(governor, ChainGovernor):
        await governor.aclose()
