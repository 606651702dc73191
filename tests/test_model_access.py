"""Model access per group: who may use which model, where the policies come from, and how they are stored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from genai_chatbot.auth.principal import Principal
from genai_chatbot.governance.access import ModelAccess, rule_for
from genai_chatbot.governance.errors import ModelNotAllowedError
from genai_chatbot.governance.policies import SettingsPolicies, StoredPolicies, group_views
from genai_chatbot.governance.settings import MAX_MODEL_PATTERNS, GroupPolicy
from genai_chatbot.governance.store import (
    MAX_STORED_GROUPS,
    AuditEntry,
    GovernanceStore,
    GovernanceStoreError,
    StoredGroup,
    UnknownGroupError,
)
from genai_chatbot.models.types import ModelInfo
from stores import Stores

IDS = ["local/smollm2", "bedrock/amazon.nova-lite", "bedrock/anthropic.claude", "openai/gpt-4o", "openai/gpt-4o-mini"]
MODELS = [ModelInfo(id=i, provider=i.split("/")[0], name=i.split("/")[1], display_name=i) for i in IDS]
POLICIES = {
    "interns": GroupPolicy(models=["local/*", "bedrock/amazon.nova-*"]),
    "analysts": GroupPolicy(models=["openai/gpt-4o-mini"]),
    "staff": GroupPolicy(requests_per_minute=60),  # limits only: every model
    "locked": GroupPolicy(models=[]),
}


def caller(*groups: str, role: str = "user") -> Principal:
    return Principal("someone", role, groups)  # type: ignore[arg-type]


async def visible(*groups: str, role: str = "user") -> list[str]:
    access = ModelAccess(SettingsPolicies(POLICIES))
    return [m.id for m in await access.visible_models(caller(*groups, role=role), MODELS)]


async def test_a_group_sees_only_the_models_its_patterns_match() -> None:
    assert await visible("interns") == ["local/smollm2", "bedrock/amazon.nova-lite"]


async def test_several_groups_give_the_union_of_their_models() -> None:
    assert await visible("interns", "analysts") == ["local/smollm2", "bedrock/amazon.nova-lite", "openai/gpt-4o-mini"]


async def test_a_group_without_models_a_caller_in_no_configured_group_and_an_admin_see_every_model() -> None:
    assert await visible("interns", "staff") == IDS
    assert await visible("unconfigured", "other") == IDS
    assert await visible() == IDS
    assert await visible("interns", role="admin") == IDS


async def test_an_empty_model_list_allows_nothing_through_that_group() -> None:
    assert await visible("locked") == []
    assert await visible("locked", "analysts") == ["openai/gpt-4o-mini"]


async def test_a_model_not_allowed_is_refused_with_its_id() -> None:
    access = ModelAccess(SettingsPolicies(POLICIES))
    await access.admit(caller("interns"), MODELS[0], "page", 10)
    with pytest.raises(ModelNotAllowedError, match="openai/gpt-4o") as refused:
        await access.admit(caller("interns"), MODELS[3], "v1", 10)
    assert refused.value.model_id == "openai/gpt-4o"


def test_patterns_match_whole_ids_case_sensitively() -> None:
    rule = rule_for(("g",), {"g": GroupPolicy(models=["openai/gpt-4o"])})
    assert rule is not None
    assert rule.allows("openai/gpt-4o")
    assert not rule.allows("openai/gpt-4o-mini") and not rule.allows("OpenAI/gpt-4o")


def test_the_number_and_length_of_patterns_are_bounded() -> None:
    GroupPolicy(models=["m"] * MAX_MODEL_PATTERNS)
    with pytest.raises(ValidationError, match="at most 100 items"):
        GroupPolicy(models=["m"] * (MAX_MODEL_PATTERNS + 1))
    with pytest.raises(ValidationError, match="at most 200 characters"):
        GroupPolicy(models=["m" * 201])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def governance(stores: Stores) -> AsyncIterator[GovernanceStore]:
    store = stores.choice.governance_store()
    yield store
    await store.close()


async def test_a_group_set_at_run_time_replaces_the_settings_one_and_reaches_other_replicas_within_the_cache_period(
    stores: Stores, governance: GovernanceStore
) -> None:
    settings = {"interns": GroupPolicy(models=["local/*"], requests_per_minute=5)}
    clock = Clock()
    other_store = stores.choice.governance_store()
    here = StoredPolicies(settings, governance, cache_seconds=5, clock=clock)
    replica = StoredPolicies(settings, other_store, cache_seconds=5, clock=clock)
    try:
        assert (await replica.group_policies())["interns"].models == ["local/*"]
        await governance.put_group("interns", GroupPolicy(models=["openai/*"]), "root")
        here.forget()  # what the admin API does on the replica that made the change
        assert (await here.group_policies())["interns"] == GroupPolicy(models=["openai/*"])  # whole, no rpm left
        assert (await replica.group_policies())["interns"].models == ["local/*"]  # cached
        clock.now = 5.0
        assert (await replica.group_policies())["interns"].models == ["openai/*"]
        await governance.delete_group("interns")
        clock.now = 10.0
        assert await replica.group_policies() == settings
    finally:
        await other_store.close()


class Outage:
    """The real store, until `down`: then every read fails as an unreachable database does."""

    def __init__(self, store: GovernanceStore) -> None:
        self.store = store
        self.down = False

    async def list_groups(self) -> list[StoredGroup]:
        if self.down:
            raise ConnectionError("database unreachable")
        return await self.store.list_groups()


async def test_policies_read_before_stay_in_force_when_the_store_cannot_be_read(governance: GovernanceStore) -> None:
    clock = Clock()
    outage = Outage(governance)
    policies = StoredPolicies({}, outage, cache_seconds=5, clock=clock)  # type: ignore[arg-type]
    await governance.put_group("interns", GroupPolicy(models=["local/*"]), "root")
    first = await policies.group_policies()
    outage.down = True
    clock.now = 6.0
    assert await policies.group_policies() == first
    never_read = StoredPolicies({}, outage, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):  # nothing known yet: refuse rather than allow every model
        await never_read.group_policies()


async def test_stored_groups_round_trip_with_who_set_them(governance: GovernanceStore) -> None:
    policy = GroupPolicy(models=["local/*"], budget_usd=5.0, budget_period="day", tokens_per_minute=1000)
    await governance.put_group("interns", policy, "root")
    await governance.put_group("/team/a b", GroupPolicy(), "cli:ops")
    [spaced, interns] = await governance.list_groups()
    assert (spaced.name, spaced.policy, spaced.updated_by) == ("/team/a b", GroupPolicy(), "cli:ops")
    assert (interns.policy, interns.updated_by) == (policy, "root")
    await governance.put_group("interns", GroupPolicy(models=[]), "alice")
    assert [g.policy.models for g in await governance.list_groups()] == [None, []]
    assert (await governance.delete_group("interns")).updated_by == "alice"
    with pytest.raises(UnknownGroupError, match="groups list"):
        await governance.delete_group("interns")
    views = group_views({"/team/a b": GroupPolicy(budget_usd=1.0)}, await governance.list_groups())
    assert [(v.name, v.source) for v in views] == [("/team/a b", "admin over settings")]


@pytest.mark.slow  # fills the store to its bound: 30 s of moto requests on DynamoDB
async def test_the_number_of_stored_groups_is_bounded(governance: GovernanceStore, stores: Stores) -> None:
    if stores.kind == "postgres":
        pytest.skip("a thousand writes say the same on PostgreSQL, only slower")
    for n in range(MAX_STORED_GROUPS):
        await governance.put_group(f"g{n}", GroupPolicy(), "root")
    await governance.put_group("g0", GroupPolicy(requests_per_minute=1), "root")  # changing one is fine
    with pytest.raises(GovernanceStoreError, match="At most 1000 groups"):
        await governance.put_group("one-more", GroupPolicy(), "root")


async def test_the_audit_log_lists_newest_first_with_filters(governance: GovernanceStore) -> None:
    for at, actor, action in [(10.0, "root", "user.add"), (20.0, "cli:ops", "key.create"), (30.0, "root", "sign-in")]:
        await governance.append_audit(AuditEntry(actor, action, "alice", {"n": at}, at=at))
    newest = await governance.list_audit()
    assert [(e.action, e.detail) for e in newest] == [
        ("sign-in", {"n": 30.0}),
        ("key.create", {"n": 20.0}),
        ("user.add", {"n": 10.0}),
    ]
    assert [e.at for e in await governance.list_audit(limit=1)] == [30.0]
    assert [e.at for e in await governance.list_audit(since=20.0)] == [30.0, 20.0]
    assert [e.at for e in await governance.list_audit(actor="root")] == [30.0, 10.0]
    assert [e.at for e in await governance.list_audit(action="key.create", actor="cli:ops")] == [20.0]
    assert all(e.id is not None for e in newest)
