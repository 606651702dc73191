"""Several governors as one: each part (model access, budgets and rate limits, usage, metrics) is a
`Governor` of its own, and the service sees their chain.

A chain admits a turn when every part admits it, in order; when a later part refuses, the parts that
admitted already are told it ended `cancelled` with nothing used, so no counter keeps a turn that never ran.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from genai_chatbot.auth.principal import Principal
from genai_chatbot.governance.gate import NOTHING_TO_RECORD, Admission, Governor, Outcome, Surface
from genai_chatbot.governance.policies import StoredPolicies
from genai_chatbot.models.types import ModelInfo


class _Admissions:
    def __init__(self, admissions: list[Admission]) -> None:
        self._admissions = admissions

    async def finish(self, outcome: Outcome) -> None:
        for admission in self._admissions:
            await admission.finish(outcome)


class ChainGovernor:
    """The parts applied in order: models visible to all of them, turns admitted by all of them."""

    def __init__(self, parts: Sequence[Governor], policies: StoredPolicies | None = None) -> None:
        self.parts = tuple(parts)
        #: The group policies its parts read, when they read the store: forgotten when this process
        #: changes a group, closed with the chain.
        self.policies = policies

    def forget_policies(self) -> None:
        """Read the group policies again at the next request (this process just changed one)."""
        if self.policies is not None:
            self.policies.forget()

    async def aclose(self) -> None:
        """Close what the parts hold (their stores) and share (the store of group policies)."""
        for part in self.parts:
            close = getattr(part, "aclose", None)
            if close is not None:
                await close()
        if self.policies is not None:
            await self.policies.aclose()

    async def visible_models(self, caller: Principal, models: list[ModelInfo]) -> list[ModelInfo]:
        for part in self.parts:
            models = await part.visible_models(caller, models)
        return models

    async def admit(self, caller: Principal, model: ModelInfo, surface: Surface, max_tokens: int) -> Admission:
        admitted: list[Admission] = []
        try:
            for part in self.parts:
                admitted.append(await part.admit(caller, model, surface, max_tokens))
        except BaseException:
            never_ran = Outcome(model.id, "cancelled", None, None, 0.0)
            with anyio.CancelScope(shield=True):
                for admission in admitted:
                    await admission.finish(never_ran)
            raise
        recorded = [admission for admission in admitted if admission is not NOTHING_TO_RECORD]
        if len(recorded) > 1:
            return _Admissions(recorded)
        return recorded[0] if recorded else NOTHING_TO_RECORD
