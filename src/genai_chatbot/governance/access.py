"""Model access per group: which models a caller may list and use, from their groups' `models` patterns.

The rule, for a caller with groups G (their key's user, or their OIDC token's groups claim):

- admins may use every model: they set the policies, so limiting them would protect nothing;
- the groups of G that have a policy (settings `[groups.NAME]` or set at run time) decide; a caller in
  none of them may use every model, so a single-user install, or one with no groups, changes nothing;
- a group policy without `models` allows every model, so a caller in such a group may use them all;
- otherwise the caller may use the models matching any pattern of any of their groups (the union).
  `models = []` allows none through that group.

Patterns are shell globs over the whole model id (`local/*`, `bedrock/amazon.nova-*`), case-sensitive.
A model not allowed is left out of every listing and refused (`ModelNotAllowedError`, 403) on every
surface, since every surface reaches models through the chat service and its governor.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

from genai_chatbot.auth.principal import Principal
from genai_chatbot.governance.errors import ModelNotAllowedError
from genai_chatbot.governance.gate import NOTHING_TO_RECORD, Admission, Surface
from genai_chatbot.governance.policies import PolicySource
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.models.types import ModelInfo

#: Distinct group combinations whose compiled rule is kept; beyond it the cache starts again.
RULE_CACHE_LIMIT = 10_000


class ModelRule:
    """The models one caller may use: ids matching any of `patterns`."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.patterns = patterns
        joined = "|".join(fnmatch.translate(p) for p in patterns)
        self._match = re.compile(joined).match if patterns else None

    def allows(self, model_id: str) -> bool:
        return self._match is not None and self._match(model_id) is not None


def rule_for(groups: tuple[str, ...], policies: Mapping[str, GroupPolicy]) -> ModelRule | None:
    """The rule of a caller in `groups`; None when they may use every model (see the module's rule)."""
    patterns: list[str] = []
    governed = False
    for group in groups:
        policy = policies.get(group)
        if policy is None:
            continue
        if policy.models is None:
            return None
        governed = True
        patterns.extend(policy.models)
    return ModelRule(tuple(dict.fromkeys(patterns))) if governed else None


class ModelAccess:
    """The governor part that hides and refuses the models a caller's groups do not allow."""

    _admitted = NOTHING_TO_RECORD

    def __init__(self, policies: PolicySource) -> None:
        self.policies = policies
        self._seen: Mapping[str, GroupPolicy] | None = None
        self._rules: dict[tuple[str, ...], ModelRule | None] = {}

    async def rule(self, caller: Principal) -> ModelRule | None:
        """What `caller` may use; None for every model. Costs a dictionary lookup while policies are cached."""
        if caller.is_admin or not caller.groups:
            return None
        policies = await self.policies.group_policies()
        if policies is not self._seen:  # new policies were read: every rule may have changed
            self._seen, self._rules = policies, {}
        try:
            return self._rules[caller.groups]
        except KeyError:
            pass
        if len(self._rules) >= RULE_CACHE_LIMIT:
            self._rules = {}
        rule = self._rules[caller.groups] = rule_for(caller.groups, policies)
        return rule

    async def visible_models(self, caller: Principal, models: list[ModelInfo]) -> list[ModelInfo]:
        rule = await self.rule(caller)
        return models if rule is None else [m for m in models if rule.allows(m.id)]

    async def admit(self, caller: Principal, model: ModelInfo, surface: Surface, max_tokens: int) -> Admission:
        rule = await self.rule(caller)
        if rule is not None and not rule.allows(model.id):
            raise ModelNotAllowedError(model.id)
        return self._admitted
