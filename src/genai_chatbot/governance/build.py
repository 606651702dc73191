"""The governor of a deployment, built from its settings: the chain of the parts that are configured."""

from __future__ import annotations

from genai_chatbot.config import Settings
from genai_chatbot.governance.chain import ChainGovernor
from genai_chatbot.governance.gate import OPEN_GOVERNOR, Governor


def build_governor(settings: Settings) -> Governor:
    """The open governor when nothing is configured, else the chain of configured parts.

    Each part of governance appends itself here when its settings ask for it.
    """
    parts: list[Governor] = []
    if not parts:
        return OPEN_GOVERNOR
    return ChainGovernor(parts)
