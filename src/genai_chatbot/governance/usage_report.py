"""Reading usage back for people: the range asked for, bounded, and the rows with their total.

`GET /api/usage` and `genai-chatbot usage` both answer through here, so they agree on defaults and bounds.
"""

from __future__ import annotations

import datetime as dt

from genai_chatbot.governance.usage_store import UsageQuery, UsageRow, UsageStore
from genai_chatbot.models.errors import InvalidRequestError

#: The longest range one request may sum, and the most rows it returns, so an answer stays bounded.
MAX_DAYS = 366
MAX_ROWS = 1000


def total_of(rows: list[UsageRow]) -> UsageRow:
    """The rows summed into one (keyed 'total')."""
    return UsageRow(
        key="total",
        requests=sum(r.requests for r in rows),
        failed=sum(r.failed for r in rows),
        cancelled=sum(r.cancelled for r in rows),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        completion_tokens=sum(r.completion_tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
        unpriced=sum(r.unpriced for r in rows),
        latency_ms=sum(r.latency_ms for r in rows),
    )


def usage_range(since: dt.date | None, until: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The range asked for, by default this UTC month to date; `InvalidRequestError` when unbounded."""
    until = until or today
    since = since or until.replace(day=1)
    if since > until:
        raise InvalidRequestError(f"since ({since}) is after until ({until}); swap them.", param="since")
    if (until - since).days >= MAX_DAYS:
        raise InvalidRequestError(
            f"The range {since} to {until} is longer than {MAX_DAYS} days; ask for a shorter one.", param="since"
        )
    return since, until


async def read_usage(store: UsageStore, query: UsageQuery) -> tuple[list[UsageRow], UsageRow, bool]:
    """The rows of `query` (bounded), their total counting each request once, and whether rows were cut."""
    rows = await store.report(UsageQuery(query.by, query.since, query.until, query.user, MAX_ROWS + 1))
    days = rows if query.by == "day" else await store.report(UsageQuery("day", query.since, query.until, query.user))
    return rows[:MAX_ROWS], total_of(days), len(rows) > MAX_ROWS
