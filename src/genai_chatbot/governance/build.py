"""The governor of a deployment, built from its settings: the chain of the parts that are configured."""

from __future__ import annotations

from genai_chatbot.config import Settings
from genai_chatbot.governance.chain import ChainGovernor
from genai_chatbot.governance.gate import OPEN_GOVERNOR, Governor
from genai_chatbot.governance.metrics import Metrics, MetricsGovernor


def build_governor(settings: Settings, metrics: Metrics | None = None) -> Governor:
    """The open governor when nothing is configured, else the chain of configured parts.

    Each part of governance appends itself here when its settings ask for it. `metrics` are the server's
    (the terminal has none to serve).
    """
    parts: list[Governor] = []
    if metrics is not None:  # last: it counts only the turns every other part admitted
        parts.append(MetricsGovernor(metrics))
    if not parts:
        return OPEN_GOVERNOR
    return parts[0] if len(parts) == 1 else ChainGovernor(parts)  # one part: no chain to go through
