"""The governance store on every database: the bound on run-time groups under concurrent admins, the audit
log's order and filters (SQLite, PostgreSQL, DynamoDB through the `stores` fixture)."""

from __future__ import annotations

import asyncio

import pytest

from genai_chatbot.governance import dynamodb_store
from genai_chatbot.governance import store as governance
from genai_chatbot.governance.settings import GroupPolicy
from genai_chatbot.governance.store import AuditEntry, GovernanceStoreError, UnknownGroupError
from stores import Stores


async def test_two_stores_adding_groups_at_once_never_pass_the_bound_and_a_replaced_group_does_not_count(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (governance, dynamodb_store):
        monkeypatch.setattr(module, "MAX_STORED_GROUPS", 4)
    first, second = stores.choice.governance_store(), stores.choice.governance_store()
    try:
        await first.put_group("g0", GroupPolicy(budget_usd=1.0), "cli:admin")
        tries = [(first, second)[n % 2].put_group(f"g{n}", GroupPolicy(), "cli:admin") for n in range(1, 7)]
        outcomes = await asyncio.gather(*tries, return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, Exception)]
        assert len(refused) == 3 and all(isinstance(o, GovernanceStoreError) for o in refused)
        assert "At most 4 groups" in str(refused[0])
        assert len(await second.list_groups()) == 4
        replaced = await second.put_group("g0", GroupPolicy(models=["local/*"]), "root")  # at the bound: allowed
        assert (await first.list_groups())[0] == replaced and replaced.updated_by == "root"
        assert (await first.delete_group("g0")).policy == GroupPolicy(models=["local/*"])
        with pytest.raises(UnknownGroupError):
            await second.delete_group("g0")
        await second.put_group("another", GroupPolicy(), "root")  # the deleted one's place is free again
        names = [g.name for g in await first.list_groups()]
        assert len(names) == 4 and names[0] == "another"  # by name
    finally:
        await first.close()
        await second.close()


async def test_the_audit_log_lists_newest_first_filtered_and_limited_from_any_store(stores: Stores) -> None:
    first, second = stores.choice.governance_store(), stores.choice.governance_store()
    try:
        for n in range(12):
            writer = (first, second)[n % 2]
            actor = "root" if n % 3 else "cli:ops"
            await writer.append_audit(
                AuditEntry(actor, f"user.{'add' if n % 2 else 'set'}", f"u{n}", {"n": n}, 1000.0 + n)
            )
        everything = await first.list_audit(limit=100)
        assert [e.detail["n"] for e in everything] == list(range(11, -1, -1))
        assert len({e.id for e in everything}) == 12 and None not in {e.id for e in everything}
        assert [e.target for e in await second.list_audit(limit=3)] == ["u11", "u10", "u9"]
        assert [e.detail["n"] for e in await second.list_audit(actor="cli:ops")] == [9, 6, 3, 0]
        assert [e.detail["n"] for e in await first.list_audit(action="user.add", limit=2)] == [11, 9]
        assert [e.detail["n"] for e in await first.list_audit(since=1009.0, actor="root")] == [11, 10]
        assert await first.list_audit(since=2000.0) == []
    finally:
        await first.close()
        await second.close()
